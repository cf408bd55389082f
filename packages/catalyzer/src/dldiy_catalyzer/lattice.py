"""Spherical Zn lattice codes (Sablayrolles et al., section 4): points of
``{x in Z^d : ||x||^2 = r2}``, normalised to the unit sphere, enumerated by faiss's
``ZnSphereCodec``. The radius is chosen per ``(d, bits)`` as the largest ``r2`` whose points
fit the bits (:func:`lattice_radius`): for d = 24, r2 = 3 / 10 / 79 gives 14 / 32 / 64-bit
codes (the paper's), for d = 32: 3 / 8 / 36, for d = 40: 2 / 7 / 24.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import faiss
import numpy as np
import torch

from dldiy_core import UserError

BUDGETS = (16, 32, 64)
"""The paper's code sizes in bits."""
BITS_TO_R2 = {16: 3, 32: 10, 64: 79}
"""The radii of the paper for d = 24 (r2 = 3 needs only 14 of its 16 bits); any d:
:func:`lattice_radius`."""
MAX_COORD = 127
"""Lattice coordinates are held as int8 by the index (|p_i| <= sqrt(r2) <= 127)."""
MAX_R2 = 512
"""faiss's ``ZnSphereSearch`` refuses larger radii (its enumeration would be too costly)."""
MAX_SHORTFALL = 8
"""A code may use up to this many bits fewer than its budget (d = 24 at 16 bits uses 14);
a ``d`` whose best code falls further short is refused rather than labelled with the budget."""


@functools.cache
def sphere_counts(d: int, r_max: int = MAX_R2) -> tuple[int, ...]:
    """Exact number of integer points of squared norm ``0..r_max`` in ``d`` dims (theta
    series of Z^d, big integers)."""
    counts = np.zeros(r_max + 1, dtype=object)
    counts[0] = 1
    for _ in range(d):
        new = counts.copy()
        for v in range(1, math.isqrt(r_max) + 1):
            new[v * v:] += 2 * counts[:r_max + 1 - v * v]
        counts = new
    return tuple(int(c) for c in counts)


def code_bits(points: int) -> int:
    """Bits of a code enumerating ``points`` values: ``ceil(log2(points))``."""
    return max(1, (points - 1).bit_length())


@functools.cache
def lattice_radius(d: int, bits: int) -> tuple[int, int]:
    """``(r2, bits used)``: the largest radius whose Zn sphere code fits ``bits`` (fewer than
    2^64 points whatever the budget: faiss counts them in a uint64), ``r2 <= MAX_R2``.

    Raises ValueError when no radius gives a code within ``MAX_SHORTFALL`` bits of the budget.
    """
    if d < 1 or bits < 1:
        raise ValueError(f"d={d}, {bits} bits: needs d >= 1 and bits >= 1")
    counts = sphere_counts(d)
    fits = [r2 for r2 in range(1, MAX_R2 + 1)
            if 0 < counts[r2] < 2**64 and code_bits(counts[r2]) <= bits]
    if not fits:
        raise ValueError(f"{d} dims, {bits} bits: even r2=1 has {counts[1]} points")
    r2 = fits[-1]
    used = code_bits(counts[r2])
    if used < bits - MAX_SHORTFALL:
        raise ValueError(f"{d} dims, {bits} bits: the largest Zn sphere faiss codes (r2={r2} "
                         f"<= {MAX_R2}) gives {used}-bit codes, more than {MAX_SHORTFALL} bits "
                         "short of the budget (use more output dimensions)")
    return r2, used


def lattice_problem(d: int) -> str | None:
    """Why ``d``-dim outputs cannot be coded at every budget (None: they can)."""
    for bits in BUDGETS:
        try:
            lattice_radius(d, bits)
        except ValueError as e:
            return str(e)
    return None


def sphere_points(d: int, r2: int) -> int:
    """Number of integer points with ``||x||^2 = r2`` in ``d`` dimensions (exact)."""
    counts = [1] + [0] * r2  # points of Z^k by squared norm, k growing to d
    for _ in range(d):
        counts = [sum(counts[n - v * v] * (1 if v == 0 else 2)
                      for v in range(math.isqrt(n) + 1)) for n in range(r2 + 1)]
    return counts[r2]


def sphere_problem(d: int, r2: int) -> str | None:
    """Why the Zn sphere ``(d, r2)`` cannot give 64-bit codes (None: it can)."""
    if d < 1 or r2 < 1:
        return f"Zn sphere d={d} r2={r2}: needs d >= 1 and r2 >= 1"
    if r2 > MAX_R2:
        return f"Zn sphere d={d} r2={r2}: faiss codes radii r2 <= {MAX_R2}"
    points = sphere_counts(d)[r2]
    if points == 0:
        return f"Zn sphere d={d} r2={r2}: no integer point has squared norm {r2} in {d} dims"
    if points >= 2**64:
        # faiss counts the points in a uint64 that silently wraps past 2^64
        r64 = lattice_radius(d, 64)[0] if lattice_problem(d) is None else None
        return (f"Zn sphere d={d} r2={r2}: {code_bits(points)}-bit codes, needs fewer than "
                "2^64 points" + (f" (r2 <= {r64} for d={d})" if r64 else ""))
    return None


class ZnCodec:
    """Encode unit vectors ``[n, d]`` to ``uint64`` codes and back (to unit vectors).

    ``r2=None``: the largest radius of a 64-bit code for ``d`` (:func:`lattice_radius`)."""

    def __init__(self, d: int = 24, r2: int | None = None):
        if r2 is None:
            why = lattice_problem(d)
            if why:
                raise UserError(f"Zn sphere codes for d={d}: {why}")
            r2 = lattice_radius(d, 64)[0]
        why = sphere_problem(d, r2)
        if why:
            raise UserError(why)
        self.d, self.r2 = d, r2
        self.codec = faiss.ZnSphereCodec(d, r2)
        self.bits = code_bits(sphere_counts(d)[r2])

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``x: [n, d]`` float -> ``[n]`` uint64 (the nearest lattice point's index)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        codes = np.empty(len(x), dtype=np.uint64)
        self.codec.encode_multi(len(x), faiss.swig_ptr(x), faiss.swig_ptr(codes))
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``[n]`` uint64 -> ``[n, d]`` float32 unit vectors."""
        return self.unit(self.points(codes))

    def points(self, codes: np.ndarray) -> np.ndarray:
        """``[n]`` uint64 -> ``[n, d]`` int8 integer coordinates ``p`` (``||p||^2 = r2``)."""
        codes = np.ascontiguousarray(codes, dtype=np.uint64)
        out = np.empty((len(codes), self.d), dtype=np.float32)
        self.codec.decode_multi(len(codes), faiss.swig_ptr(codes), faiss.swig_ptr(out))
        return np.rint(out).astype(np.int8)

    def unit(self, points: np.ndarray) -> np.ndarray:
        """``[n, d]`` integer coordinates -> float32 unit vectors ``p / sqrt(r2)``."""
        return np.asarray(points, dtype=np.float32) / np.float32(math.sqrt(self.r2))

    def codes(self, points: np.ndarray) -> np.ndarray:
        """``[n, d]`` integer coordinates (points of this sphere) -> ``[n]`` uint64 codes."""
        return self.encode(self.unit(points))

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Nearest normalised lattice point of each row."""
        return self.decode(self.encode(x))


def sign_quantize(y: np.ndarray) -> np.ndarray:
    """Binary codes as unit vectors: ``sign(y) / sqrt(d)`` (Hamming order = L2 order)."""
    return (np.where(y > 0, 1.0, -1.0) / math.sqrt(y.shape[1])).astype(np.float32)


def make_quantizer(name: str, d: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """``""`` -> None, ``"zn<r2>"`` -> Zn sphere quantizer, ``"sign"`` -> sign codes."""
    if not name:
        return None
    if name == "sign":
        return sign_quantize
    why = quantizer_problem(name, d)
    if why:
        raise UserError(f"config key 'loss.quantizer': {why}")
    return ZnCodec(d, int(name[2:])).quantize


def quantizer_problem(name: str, d: int) -> str | None:
    """Why ``loss.quantizer=name`` cannot quantize ``d``-dim outputs (None: it can)."""
    if name in ("", "sign"):
        return None
    if not (name.startswith("zn") and name[2:].isdigit()):
        return f"unknown quantizer {name!r} (expected '', 'sign' or 'zn<r2>' such as 'zn79')"
    return sphere_problem(d, int(name[2:]))


def straight_through(y: torch.Tensor, quantize: Callable[[np.ndarray], np.ndarray]
                     ) -> torch.Tensor:
    """Quantize ``y: [B, d]`` in the forward pass, identity gradient in the backward pass
    (the quantizer-aware training of section 5.3)."""
    q = torch.from_numpy(quantize(y.detach().cpu().numpy())).to(y.device, y.dtype)
    return y + (q - y).detach()
