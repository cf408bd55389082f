"""Binary codes: the sign of each catalyzer output dimension, searched by Hamming distance."""

from __future__ import annotations

import faiss
import numpy as np


def sign_codes(y: np.ndarray) -> np.ndarray:
    """``y: [n, bits]`` float -> ``[n, bits / 8]`` uint8 packed sign bits."""
    return np.packbits(np.asarray(y) > 0, axis=1)


def hamming_search(codes_db: np.ndarray, codes_q: np.ndarray, k: int) -> np.ndarray:
    """Exact Hamming ``k``-NN ids ``[nq, k]`` with faiss ``IndexBinaryFlat``."""
    index = faiss.IndexBinaryFlat(codes_db.shape[1] * 8)
    index.add(np.ascontiguousarray(codes_db))
    _, ids = index.search(np.ascontiguousarray(codes_q), k)
    return ids
