"""Self in the triplets (removed by id, included among positives as the original code does),
appending to an index without re-concatenation, re-ranking without a [nq, R, d] gather."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dldiy_catalyzer.config import PRESETS, CatalyzerConfig
from dldiy_catalyzer.data import Splits, exact_knn
from dldiy_catalyzer.index import CatalyzerIndex, GrowingRows
from dldiy_catalyzer.models import Catalyzer
from dldiy_catalyzer.train import (
    TripletBatches,
    input_neighbors,
    positive_pool,
    without_self,
)
from dldiy_core import resolve


def test_self_is_removed_by_id_even_behind_a_duplicate():
    # point 0 and 1 are duplicates: the search may return 1 before 0 for point 0
    ids = np.array([[1, 0, 2, 3], [0, 1, 2, 3], [2, 3, 0, 1], [0, 1, 2, 4]])
    got = without_self(ids, 3)
    assert got.tolist() == [[1, 2, 3], [0, 2, 3], [3, 0, 1], [0, 1, 2]]  # row 3: self absent


def test_neighbours_of_duplicated_training_points(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    x[100:150] = x[:50]  # 50 exact duplicates
    splits = Splits("dups", x, x, x[:5], exact_knn(x[:5], x, 10), tmp_path)
    nb = input_neighbors(splits, 5)
    assert nb.shape == (200, 5)
    assert not (nb == np.arange(200)[:, None]).any()  # never self
    assert (nb[:50, 0] == np.arange(100, 150)).all()  # the duplicate is the nearest other
    assert (nb[100:150, 0] == np.arange(50)).all()


def test_positives_include_self_as_the_original(tmp_path):
    """The original draws positives among the rank_positive results of the training set
    searched in itself, which include the point: so do we (self + rank_positive - 1)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    splits = Splits("p", x, x, x[:5], exact_knn(x[:5], x, 10), tmp_path)
    cfg = resolve(CatalyzerConfig, PRESETS, "tiny", sets=[
        "data.n_train=300", "loss.rank_positive=4", "loss.rank_negative=10",
        "model.hidden=16"])
    nb = input_neighbors(splits, cfg.loss.rank_positive - 1)
    pool = positive_pool(nb)
    assert pool.shape == (300, 4) and (pool[:, 0] == np.arange(300)).all()
    assert np.array_equal(pool[:, 1:], exact_knn(x, x, 4)[:, 1:])  # distinct points
    torch.manual_seed(0)
    source = TripletBatches(x, nb, Catalyzer(8, 24, 16), cfg, None)
    source.mine(0)
    assert np.isin(source.positives, pool).all()
    for i in range(300):
        assert source.positives[i] in pool[i]
    share_self = (source.positives == np.arange(300)).mean()
    assert 0.1 < share_self < 0.45  # about 1 in 4
    assert not (source.negatives == np.arange(300)).any()


def test_add_alternating_with_search_copies_each_row_a_bounded_number_of_times(monkeypatch):
    torch.manual_seed(0)
    net = Catalyzer(6, 24, 16)
    x = np.random.default_rng(2).normal(size=(3000, 6)).astype(np.float32)
    copies = []
    real = GrowingRows.reserve

    def counting(self, total):
        copies.append(self.n)
        return real(self, total)

    monkeypatch.setattr(GrowingRows, "reserve", counting)
    index = CatalyzerIndex(net, keep_vectors=True)
    for i in range(0, 3000, 10):
        index.add(x[i:i + 10])
        index.search(x[:2], 1)
    assert sum(copies) < 4 * 3000 * 2  # rows copied: geometric growth, not 3000^2 / 20
    assert len(copies) < 40
    whole = CatalyzerIndex(net, keep_vectors=True)
    whole.add(x)
    assert np.array_equal(index.points, whole.points)
    assert np.array_equal(index.vectors, whole.vectors)
    copies.clear()
    reserved = CatalyzerIndex(net)
    reserved.reserve(3000)
    for i in range(0, 3000, 100):
        reserved.add(x[i:i + 100])
    assert copies == [0]  # one buffer, never copied again


@pytest.mark.parametrize("mmap", [False, True])
def test_rerank_is_exact_from_the_rows_where_they_lie(tmp_path, mmap, monkeypatch):
    torch.manual_seed(0)
    net = Catalyzer(6, 24, 16)
    rng = np.random.default_rng(3)
    xb, xq = rng.normal(size=(2000, 6)).astype(np.float32), rng.normal(size=(7, 6)).astype(
        np.float32)
    index = CatalyzerIndex(net, keep_vectors=True)
    index.add(xb)
    index = CatalyzerIndex.load(index.save(tmp_path / "i.safetensors"), mmap=mmap)
    d, ids = index.search(xq, 5, rerank=2000)  # every vector a candidate: exact search
    want = exact_knn(xq, xb, 5)
    assert np.array_equal(ids, want)
    assert np.allclose(d, ((xb[ids] - xq[:, None]) ** 2).sum(-1), rtol=1e-5, atol=1e-5)
