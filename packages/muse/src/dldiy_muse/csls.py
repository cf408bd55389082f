"""Cross-domain similarity local scaling (Conneau et al., section 2.3, eq. 6), memory bounded.

``CSLS(Wx, y) = 2 cos(Wx, y) - r_T(Wx) - r_S(y)``, where ``r_T(Wx)`` is the mean cosine of
``Wx`` to its ``k`` nearest targets and ``r_S(y)`` the mean cosine of ``y`` to its ``k`` nearest
mapped sources. Every search runs in faiss over blocks of queries; the ``n x m`` similarity
matrix is never built: the top-k of ``2 x.y - r_S(y)`` is an inner-product search of
``[2x, -1]`` against ``[y, r_S(y)]``.
"""

from __future__ import annotations

import faiss
import numpy as np

BLOCK = 8192


def f32(x: np.ndarray) -> np.ndarray:
    """A contiguous float32 array (what faiss takes)."""
    return np.ascontiguousarray(x, dtype=np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine = inner product)."""
    x = f32(x)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def ip_search(queries: np.ndarray, base: np.ndarray, k: int,
              block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k``: ``(scores [n, k], ids [n, k])``, queries in blocks."""
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(f32(base))
    k = min(k, len(base))
    scores = np.empty((len(queries), k), dtype=np.float32)
    ids = np.empty((len(queries), k), dtype=np.int64)
    for i in range(0, len(queries), block):
        scores[i:i + block], ids[i:i + block] = index.search(f32(queries[i:i + block]), k)
    return scores, ids


def mean_knn_similarity(queries: np.ndarray, base: np.ndarray, k: int = 10) -> np.ndarray:
    """``r(q)``: mean cosine of each (unit) query to its ``k`` nearest (unit) base rows, ``[n]``."""
    return ip_search(queries, base, k)[0].mean(axis=1)


def csls_search(src: np.ndarray, tgt: np.ndarray, k: int = 1, knn: int = 10,
                r_src: np.ndarray | None = None, r_tgt: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` targets of each mapped source row by CSLS: ``(scores [n, k], ids [n, k])``.

    ``src``, ``tgt`` must be unit rows. ``r_src`` (``r_S [m]`` of every target, from all of
    ``src``) can be passed in when ``src`` is a subset of the mapped vocabulary, or when it
    is already known; so can ``r_tgt`` (``r_T [n]`` of every source row), e.g. when both
    directions are searched.
    """
    r_s = mean_knn_similarity(tgt, src, knn) if r_src is None else r_src
    r_t = mean_knn_similarity(src, tgt, knn) if r_tgt is None else r_tgt
    queries = np.hstack([2 * f32(src), -np.ones((len(src), 1), np.float32)])
    base = np.hstack([f32(tgt), r_s[:, None].astype(np.float32)])
    scores, ids = ip_search(queries, base, k)
    return scores - r_t[:, None], ids


def csls_full(src: np.ndarray, tgt: np.ndarray, k: int = 1, knn: int = 10
              ) -> tuple[np.ndarray, np.ndarray]:
    """The naive version, with the whole ``[n, m]`` matrix in memory (reference, benchmark);
    top-k by ``np.argpartition``, the fastest full-matrix way in numpy."""
    sim = f32(src) @ f32(tgt).T
    r_t = np.partition(sim, -knn, axis=1)[:, -knn:].mean(axis=1)
    r_s = np.partition(sim, -knn, axis=0)[-knn:, :].mean(axis=0)
    sim *= 2
    sim -= r_t[:, None]
    sim -= r_s[None, :]
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < sim.shape[1] else \
        np.tile(np.arange(sim.shape[1]), (len(sim), 1))
    scores = np.take_along_axis(sim, top, axis=1)
    order = np.argsort(-scores, axis=1)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(top, order, 1)
