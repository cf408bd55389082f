import math

import numpy as np
import pytest
import torch

from dldiy_catalyzer.koleo import koleo_loss, nearest_neighbor_distances
from dldiy_catalyzer.lattice import BITS_TO_R2, ZnCodec, straight_through


def test_koleo_value_on_a_known_point_set():
    y = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    # nearest-neighbour distances 1, 1, 2; n = 3
    expected = -(2 * math.log(3 * 1) + math.log(3 * 2)) / 3
    assert koleo_loss(y).item() == pytest.approx(expected, abs=1e-6)


def test_koleo_gradient_pushes_nearest_points_apart():
    y = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], requires_grad=True)
    koleo_loss(y).backward()
    # point 0 moves away from point 1 (left), point 2 away from point 1 (right)
    assert y.grad[0, 0] > 0 and y.grad[2, 0] < 0
    assert torch.all(y.grad[:, 1] == 0)


def test_koleo_duplicates_stay_finite():
    y = torch.tensor([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]], requires_grad=True)
    loss = koleo_loss(y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(y.grad).all()
    assert nearest_neighbor_distances(y.detach())[0] == pytest.approx(1e-4, rel=1e-3)


@pytest.mark.parametrize("bits", [16, 32, 64])
def test_lattice_codes_fit_their_bits_and_decode_to_lattice_points(bits):
    codec = ZnCodec(24, BITS_TO_R2[bits])
    assert codec.bits <= bits
    x = np.random.default_rng(0).normal(size=(500, 24)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    codes = codec.encode(x)
    if codec.bits < 64:
        assert codes.max() < 2 ** codec.bits
    points = codec.decode(codes) * math.sqrt(codec.r2)
    assert np.allclose(points, points.round(), atol=1e-4)
    assert np.allclose((points.round() ** 2).sum(1), codec.r2)
    assert np.array_equal(codec.encode(codec.decode(codes)), codes)


def test_encoding_finds_the_nearest_lattice_point():
    codec = ZnCodec(24, 3)  # 16,192 points: small enough to enumerate
    every = codec.decode(np.arange(codec.codec.nv, dtype=np.uint64))
    assert len(np.unique(every.round(4), axis=0)) == codec.codec.nv
    x = np.random.default_rng(1).normal(size=(200, 24)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    best = (x @ every.T).max(axis=1)
    assert np.allclose((x * codec.quantize(x)).sum(1), best, atol=1e-5)


def test_straight_through_quantizes_forward_and_passes_gradient():
    codec = ZnCodec(24, 10)
    y = torch.nn.functional.normalize(torch.randn(5, 24), dim=1).requires_grad_()
    q = straight_through(y, codec.quantize)
    assert torch.allclose(q, torch.from_numpy(codec.quantize(y.detach().numpy())))
    (q * torch.arange(24.0)).sum().backward()
    assert torch.equal(y.grad, torch.arange(24.0).expand(5, 24))


@pytest.mark.parametrize("r2", [0, 80, 120])
def test_radii_without_a_64_bit_code_are_refused(r2):
    from dldiy_core import UserError
    with pytest.raises(UserError, match=f"r2={r2}"):
        ZnCodec(24, r2)


@pytest.mark.parametrize("d", [16, 20, 24, 32, 40, 64])
def test_radius_is_the_largest_whose_code_fits_the_bits(d):
    import faiss

    from dldiy_catalyzer.lattice import BUDGETS, MAX_R2, code_bits, lattice_radius, sphere_counts
    counts = sphere_counts(d)
    for bits in BUDGETS:
        r2, used = lattice_radius(d, bits)
        assert bits - 8 <= used <= bits
        assert faiss.ZnSphereCodec(d, r2).nv == counts[r2]  # faiss counts the same points
        assert used == code_bits(counts[r2]) == ZnCodec(d, r2).bits
        assert all(code_bits(counts[r]) > bits or counts[r] == 0 for r in range(r2 + 1, MAX_R2 + 1))


def test_radii_of_the_paper_and_of_other_outputs():
    from dldiy_catalyzer.lattice import BUDGETS, lattice_radius
    assert [lattice_radius(24, b) for b in BUDGETS] == [(3, 14), (10, 32), (79, 64)]
    assert [lattice_radius(32, b)[0] for b in BUDGETS] == [3, 8, 36]
    assert [lattice_radius(40, b)[0] for b in BUDGETS] == [2, 7, 24]
    assert lattice_radius(16, 64) == (512, 64)  # not r2 = 79, a 45-bit code
    assert ZnCodec(16).r2 == 512 and ZnCodec(24).r2 == 79 and ZnCodec(40).bits == 64


@pytest.mark.parametrize("d_out", [2, 8, 12])
def test_outputs_too_narrow_for_64_bits_are_refused(d_out):
    from dldiy_catalyzer.config import CatalyzerConfig
    from dldiy_core import resolve
    with pytest.raises(Exception, match=f"model.d_out={d_out} with codes=lattice: .*bit"):
        resolve(CatalyzerConfig, {"q": {}}, "q", None, [f"model.d_out={d_out}"])
