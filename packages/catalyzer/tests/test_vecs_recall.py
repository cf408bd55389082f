import numpy as np
import pytest

from dldiy_catalyzer.evaluate import recall_at
from dldiy_catalyzer.vecs import read_vecs, read_vectors, write_vecs
from dldiy_core import UserError


@pytest.mark.parametrize("suffix, dtype", [(".fvecs", np.float32), (".bvecs", np.uint8),
                                           (".ivecs", np.int32)])
def test_vecs_round_trip(tmp_path, suffix, dtype):
    x = (np.random.default_rng(0).random((7, 5)) * 100).astype(dtype)
    path = write_vecs(tmp_path / f"x{suffix}", x)
    assert path.stat().st_size == 7 * (4 + 5 * x.itemsize)
    back = read_vecs(path)
    assert back.dtype == dtype and np.array_equal(back, x)
    assert np.array_equal(read_vecs(path, count=3), x[:3])


def test_bad_vector_files(tmp_path):
    path = write_vecs(tmp_path / "x.fvecs", np.ones((4, 3), dtype=np.float32))
    data = path.read_bytes()
    (tmp_path / "cut.fvecs").write_bytes(data[:-2])
    with pytest.raises(UserError, match=r"cut.fvecs: truncated or corrupt"):
        read_vecs(tmp_path / "cut.fvecs")
    (tmp_path / "empty.fvecs").write_bytes(b"")
    with pytest.raises(UserError, match="empty.fvecs: empty vector file"):
        read_vecs(tmp_path / "empty.fvecs")
    mixed = bytearray(data)
    mixed[16:20] = np.int32(2).tobytes()  # row 1 claims dimension 2
    (tmp_path / "mixed.fvecs").write_bytes(bytes(mixed))
    assert read_vecs(tmp_path / "mixed.fvecs").shape == (4, 3)  # opening: first + last only
    with pytest.raises(UserError, match="row 1 has dimension 2, expected 3"):
        read_vectors(tmp_path / "mixed.fvecs")  # the checked reader reads every header
    with pytest.raises(UserError, match="unknown vector format"):
        read_vecs(tmp_path / "x.txt")


def test_recall_on_a_planted_result_list():
    gt = np.array([[5, 1], [6, 2], [7, 3], [8, 4]])
    ids = np.array([[5, 0, 0], [0, 6, 0], [0, 0, 7], [0, 0, 0]])
    assert recall_at(ids, gt, ranks=(1, 2, 3)) == {1: 0.25, 2: 0.5, 3: 0.75}


def test_bad_rows_are_numbered_as_in_the_file(tmp_path):
    """Checked in chunks (a memory-mapped file is never loaded whole), numbered in the file."""
    import torch

    from dldiy_catalyzer.index import CatalyzerIndex
    from dldiy_catalyzer.models import Catalyzer
    from dldiy_catalyzer.vecs import CHUNK, read_vectors

    x = np.zeros((CHUNK + 4000, 2), np.float32)
    x[CHUNK + 500, 1], x[CHUNK + 3000, 0] = np.inf, np.nan
    path = write_vecs(tmp_path / "big.fvecs", x)
    with pytest.raises(UserError, match=f"big.fvecs: row {CHUNK + 500} has NaN or inf values "
                                        r"\(2 bad rows\)"):
        read_vectors(path)
    torch.manual_seed(0)
    index = CatalyzerIndex(Catalyzer(2, 24, 8))
    bad = np.ones((5, 2), np.float32)
    bad[3, 0] = np.nan
    with pytest.raises(UserError, match="f.fvecs: row 100003 has NaN"):
        index.add(bad, what="f.fvecs", offset=100_000)
