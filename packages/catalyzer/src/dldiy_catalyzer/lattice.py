"""Spherical Zn lattice codes (Sablayrolles et al., section 4): points of
``{x in Z^d : ||x||^2 = r2}``, normalised to the unit sphere, enumerated by faiss's
``ZnSphereCodec``. For d = 24, r2 = 3 / 10 / 79 gives 14 / 32 / 64-bit codes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import faiss
import numpy as np
import torch

from dldiy_core import UserError

BITS_TO_R2 = {16: 3, 32: 10, 64: 79}
"""Bit budgets of the paper for d = 24 (r2 = 3 needs only 14 of its 16 bits)."""
MAX_COORD = 127
"""Lattice coordinates are held as int8 by the index (|p_i| <= sqrt(r2) <= 127)."""


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
    if r2 > MAX_COORD ** 2:
        return (f"Zn sphere d={d} r2={r2}: coordinates up to {math.isqrt(r2)} do not fit int8 "
                f"(r2 <= {MAX_COORD ** 2})")
    points = sphere_points(d, r2)
    if points == 0:
        return f"Zn sphere d={d} r2={r2}: no integer point has squared norm {r2} in {d} dims"
    if points >= 2**64:
        # faiss counts the points in a uint64 that silently wraps past 2^64
        return (f"Zn sphere d={d} r2={r2}: {points.bit_length()}-bit codes, needs fewer than "
                "2^64 points (r2 <= 79 for d=24)")
    return None


class ZnCodec:
    """Encode unit vectors ``[n, d]`` to ``uint64`` codes and back (to unit vectors)."""

    def __init__(self, d: int = 24, r2: int = 79):
        why = sphere_problem(d, r2)
        if why:
            raise UserError(why)
        self.d, self.r2 = d, r2
        self.codec = faiss.ZnSphereCodec(d, r2)
        self.bits = max(1, math.ceil(math.log2(self.codec.nv)))

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
