import pytest

from dldiy_catalyzer.data import Splits, exact_knn
from dldiy_catalyzer.vecs import write_vecs
from dldiy_core.testing import clustered_points


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    """Split caches go to a per-test folder."""
    monkeypatch.setenv("DLDIY_DATA", str(tmp_path / "cache"))


def clustered_splits(tmp_path, n_base=1500, n_train=1500, n_query=150, d=16) -> Splits:
    x, _ = clustered_points(n_base + n_train + n_query, d, k=30, spread=0.3, seed=0)
    xq, xt, xb = x[:n_query], x[n_query:n_query + n_train], x[n_query + n_train:]
    return Splits("clusters", xb, xt, xq, exact_knn(xq, xb, 100), tmp_path)


@pytest.fixture
def splits(tmp_path) -> Splits:
    return clustered_splits(tmp_path)


@pytest.fixture
def vectors_file(tmp_path):
    x, _ = clustered_points(3000, 16, k=30, spread=0.3, seed=1)
    return write_vecs(tmp_path / "points.fvecs", x)
