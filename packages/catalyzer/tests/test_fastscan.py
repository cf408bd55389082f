"""The fast-scan index: 4-bit codes of the lattice points (12 B/vector at 64 bits), a shortlist
re-scored exactly, exceptions (coordinates outside the codebook) scanned exactly."""

import math

import numpy as np
import pytest
import torch

from dldiy_catalyzer.fastscan import LatticeFastScan, codebook
from dldiy_catalyzer.index import CatalyzerIndex
from dldiy_catalyzer.lattice import ZnCodec
from dldiy_catalyzer.models import Catalyzer
from dldiy_core.testing import clustered_points

EXCEPTIONS = np.array([[-8, 3, 2, 1, 1] + [0] * 19,  # 64 + 9 + 4 + 1 + 1 = 79
                       [0] * 10 + [-8, -3, -1, -2, -1] + [0] * 9], dtype=np.int8)


def sphere_points(n: int, seed: int) -> np.ndarray:
    """``n`` points of the Zn sphere d = 24, r2 = 79 near random clustered directions."""
    x, _ = clustered_points(n, 24, k=20, spread=0.4, seed=seed)
    return ZnCodec(24, 79).points(ZnCodec(24, 79).encode(x / np.linalg.norm(x, axis=1,
                                                                           keepdims=True)))


def brute_force(points: np.ndarray, yq: np.ndarray, k: int):
    """Exact squared L2 to every unit point, ties by id."""
    unit = points.astype(np.float32) / np.float32(math.sqrt(79))
    dist = ((unit[None] - yq[:, None]) ** 2).sum(-1)
    order = np.lexsort((np.broadcast_to(np.arange(len(unit)), dist.shape), dist), axis=1)
    return np.take_along_axis(dist, order, 1)[:, :k], order[:, :k]


def test_codebook_holds_every_small_coordinate():
    assert list(codebook(79)) == list(range(-7, 9))
    assert sorted(set(codebook(10))) == [-3, -2, -1, 0, 1, 2, 3] and len(codebook(10)) == 16
    assert sorted(set(codebook(49))) == list(range(-7, 8))


def test_codes_decode_to_the_points_and_exceptions_are_exact():
    points = sphere_points(1000, seed=1)
    points[[37, 900]] = EXCEPTIONS
    fast = LatticeFastScan(ZnCodec(24, 79))
    for i0, i1 in ((0, 13), (13, 500), (500, 1000)):  # adds of odd sizes: partial blocks
        fast.add(points[i0:i1])
    assert fast.ntotal == 1000 and list(fast.exception_ids) == [37, 900]
    assert np.array_equal(fast.points(), points)
    assert np.array_equal(fast.points(30, 40), points[30:40])
    assert fast.bytes_per_vector == pytest.approx(12 + 2 * (8 + 24) / 1000)
    # a shortlist of every point: the exact ranking (random queries: no ties)
    yq = np.random.default_rng(0).normal(size=(30, 24)).astype(np.float32)
    yq[:2] = EXCEPTIONS + 0.1 * yq[:2]  # nearest to the exceptions
    yq /= np.linalg.norm(yq, axis=1, keepdims=True)
    got_d, got_i = fast.search(yq, 10, shortlist=100)
    want_d, want_i = brute_force(points, yq, 10)
    assert np.array_equal(got_i, want_i)
    np.testing.assert_allclose(got_d, want_d, atol=1e-5)
    assert got_i[0, 0] == 37 and got_i[1, 0] == 900  # found although clamped in the codes
    assert all(len(set(row)) == 10 for row in got_i)  # no id twice


def test_index_fast_scan_matches_the_exact_search(tmp_path):
    torch.manual_seed(0)
    net = Catalyzer(16, 24, 32).eval()
    x, _ = clustered_points(6000, 16, k=30, spread=0.3, seed=3)
    xb, xq = x[:5500], x[5500:]
    exact = CatalyzerIndex(net)
    exact.add(xb)
    want_d, want_i = exact.search(xq, 10)
    fast = CatalyzerIndex(net, fast_scan=True)
    fast.add(xb[:2000])
    fast.add(xb[2000:])
    assert fast.bytes_per_vector <= 12.1 and np.array_equal(fast.points, exact.points)
    # an untrained network packs the outputs tightly: the 8-bit look-up tables blur more of
    # the near ties than on trained outputs, and a longer shortlist recovers them
    agree = {}
    for fast.shortlist in (1, 2, 8):
        got_d, got_i = fast.search(xq, 10)
        agree[fast.shortlist] = (got_i == want_i).mean()
        np.testing.assert_allclose(got_d[got_i == want_i], want_d[got_i == want_i], atol=1e-5)
    assert agree[1] < agree[2] < agree[8] and agree[8] > 0.99
    fast.bf16 = True  # queries embedded under bf16: rankings move a little, not much
    assert (fast.search(xq, 10)[1] == want_i).mean() > 0.8
    # saved from the fast index, loaded (memory-mapped) for the fast scan: the same index
    path = fast.save(tmp_path / "i.safetensors")
    assert np.array_equal(CatalyzerIndex.load(path).points, exact.points)
    mapped = CatalyzerIndex.load(path, mmap=True, fast_scan=True)
    mapped.shortlist = 8  # the settings of got_i (a search's settings are not saved)
    assert mapped.fast_scan and np.array_equal(mapped.search(xq, 10)[1], got_i)


def test_bad_shortlist_is_one_line():
    from dldiy_core import UserError
    with pytest.raises(UserError, match="shortlist=0"):
        CatalyzerIndex(Catalyzer(16, 24, 32), fast_scan=True, shortlist=0)
