"""Lattice points scanned by faiss's PQ fast-scan: 4 bits a coordinate (12 B/vector at 64 bits).

A point ``p`` of the Zn sphere ``||p||^2 = r2`` has small integer coordinates (within ±8 at
d = 24, r2 = 79, and almost all within ±6 on trained outputs). Each coordinate is one 4-bit
code of a product quantizer with ``d`` one-dimensional sub-quantizers whose 16 centroids are
the integers :func:`codebook` returns, divided by ``sqrt(r2)``; so the code of a point decodes
to its unit vector ``p / sqrt(r2)`` without loss. faiss's fast-scan kernel ranks such codes
with 8-bit look-up tables held in SIMD registers, several times faster than a float scan of
the int8 points, at the price of quantized distances: it draws a shortlist of
``shortlist x k`` candidates, which are decoded and re-scored exactly (so every distance
returned is exact). A point with a coordinate the codebook lacks (with -7..8: a coordinate of
-8, 64 of the 79) is also held aside as int8 and scanned exactly; in the fast-scan codes it
stands clamped to the nearest value and is never returned from there.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from .lattice import ZnCodec

NBITS = 4
"""Bits a coordinate: the code fast-scan's SIMD look-ups are built for."""
QUERY_BLOCK = 4096
"""Queries re-scored at a time (bounds the ``[nq, shortlist, d]`` decoded candidates)."""
DECODE_ROWS = 64 * 1024
"""Rows decoded at a time by :meth:`LatticeFastScan.points` (bounded temporaries)."""


def codebook(r2: int) -> np.ndarray:
    """The 16 integer coordinate values of the codes: ``-m..m`` for ``m = isqrt(r2) <= 7``
    (every value a point can have, padded with ``m``), else ``-7..8``."""
    m = math.isqrt(r2)
    values = np.arange(-m, m + 1) if 2 * m + 1 <= 2**NBITS else np.arange(-7, 9)
    return np.pad(values, (0, 2**NBITS - len(values)), mode="edge")


class LatticeFastScan:
    """``add(points)``, ``search(yq, k, shortlist) -> (distances, ids)``, ``points(i0, i1)``.

    Holds ``ceil(d / 2)`` bytes per vector in faiss ``IndexPQFastScan`` plus, for each point
    outside the codebook, its id and int8 row (exceptions).
    """

    def __init__(self, codec: ZnCodec):
        self.codec, self.d = codec, codec.d
        self.values = codebook(codec.r2)
        self.centroids = codec.unit(self.values)
        """The 16 values a code decodes to (the same for every coordinate)."""
        pq = faiss.IndexPQ(self.d, self.d, NBITS)
        faiss.copy_array_to_vector(np.tile(self.centroids, self.d), pq.pq.centroids)
        pq.is_trained = True
        self.index = faiss.IndexPQFastScan(pq)
        packer = self.index.get_CodePacker()
        self._nvec, self._block_bytes = packer.nvec, packer.block_size
        self._offsets, self._shifts = nibble_layout(packer, self.index.M)
        self.exception_ids = np.empty(0, dtype=np.int64)
        self.exception_points = np.empty((0, self.d), dtype=np.int8)

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    @property
    def bytes_per_vector(self) -> float:
        """Fast-scan code bytes + the exceptions' (8 B id + d B point) shared over all."""
        extra = len(self.exception_ids) * (8 + self.d)
        return self.index.code_size + (extra / self.ntotal if self.ntotal else 0.0)

    def add(self, points: np.ndarray) -> None:
        """Append ``points: [n, d]`` integer coordinates (int8, on the sphere)."""
        points = np.asarray(points, dtype=np.int8)
        outside = ~np.isin(points, self.values).all(1)
        if outside.any():
            ids = np.flatnonzero(outside) + self.ntotal
            self.exception_ids = np.concatenate([self.exception_ids, ids])
            self.exception_points = np.concatenate([self.exception_points, points[outside]])
        self.index.add(self.codec.unit(points))  # exact: the centroids are these values

    def points(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` decoded to ``[n, d]`` int8 coordinates (exceptions exact)."""
        stop = self.ntotal if stop is None else stop
        out = np.empty((stop - start, self.d), dtype=np.int8)
        for i in range(start, stop, DECODE_ROWS):
            j = min(i + DECODE_ROWS, stop)
            out[i - start:j - start] = self.values[self._codes(np.arange(i, j))]
        lo, hi = np.searchsorted(self.exception_ids, (start, stop))
        out[self.exception_ids[lo:hi] - start] = self.exception_points[lo:hi]
        return out

    def _codes(self, ids: np.ndarray) -> np.ndarray:
        """``ids: [...]`` -> their 4-bit codes ``[..., d]`` (indices into :attr:`values`), read
        straight from the packed codes (decoded, about twice as fast here as faiss's
        ``reconstruct_batch``, one id at a time)."""
        codes = faiss.rev_swig_ptr(self.index.codes.get(), self.index.codes.size())
        block, slot = np.divmod(ids, self._nvec)
        nibble = codes[block[..., None] * self._block_bytes + self._offsets[slot]]
        return (nibble >> self._shifts[slot]) & (2**NBITS - 1)

    def search(self, yq: np.ndarray, k: int, shortlist: int = 2
               ) -> tuple[np.ndarray, np.ndarray]:
        """``yq: [nq, d]`` -> exact ``(squared L2 [nq, k], ids [nq, k])`` of the best of the
        fast scan's ``shortlist * k`` candidates and of the exceptions (ties by id)."""
        yq = np.ascontiguousarray(yq, dtype=np.float32)
        parts = [self._search(yq[i:i + QUERY_BLOCK], k, shortlist)
                 for i in range(0, len(yq), QUERY_BLOCK)]
        if not parts:
            return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _search(self, yq: np.ndarray, k: int, shortlist: int) -> tuple[np.ndarray, np.ndarray]:
        _, ids = self.index.search(yq, min(max(shortlist, 1) * k, self.ntotal))
        rows = self.centroids[self._codes(ids)]
        diff = rows - yq[:, None, :]
        dist = np.einsum("qkd,qkd->qk", diff, diff)
        if len(self.exception_ids):
            # the clamped copies are never returned; the exact rows compete instead
            dist[np.isin(ids, self.exception_ids)] = np.inf
            exact = self.codec.unit(self.exception_points)
            e_dist, e_idx = faiss.knn(yq, exact, min(k, len(exact)))
            dist = np.concatenate([dist, e_dist], 1)
            ids = np.concatenate([ids, self.exception_ids[e_idx]], 1)
        order = np.lexsort((ids, dist), axis=1)[:, :k]
        return np.take_along_axis(dist, order, 1), np.take_along_axis(ids, order, 1)


def nibble_layout(packer: faiss.CodePacker, m_total: int) -> tuple[np.ndarray, np.ndarray]:
    """Where fast-scan keeps each 4-bit code: ``(byte offsets, bit shifts)``, both
    ``[nvec, M]``, for slot ``j`` of a block and sub-quantizer ``m``, found by packing one
    code at a time with faiss's own ``CodePacker`` (its layout interleaves vectors for SIMD)."""
    offsets = np.empty((packer.nvec, m_total), dtype=np.int64)
    shifts = np.empty((packer.nvec, m_total), dtype=np.uint8)
    for m in range(m_total):
        code = np.zeros(packer.code_size, dtype=np.uint8)
        code[m // 2] = 1 << (4 * (m % 2))  # value 1 at sub-quantizer m (faiss's bit order)
        for j in range(packer.nvec):
            block = np.zeros((1, packer.block_size), dtype=np.uint8)
            packer.pack_1(code, j, block)
            (byte,) = np.flatnonzero(block[0])
            offsets[j, m], shifts[j, m] = byte, 4 if block[0, byte] == 16 else 0
    return offsets, shifts
