"""Orthogonal Procrustes (Conneau et al., eq. 2; Schönemann 1966).

``W* = argmin_{W orthogonal} ||W X - Y||_F = U V^T`` with ``U S V^T = SVD(Y X^T)``; here with
row vectors: ``src [n, d]`` maps to ``src @ W.T``.
"""

from __future__ import annotations

import numpy as np


def procrustes(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """The orthogonal ``W [d, d]`` best mapping rows of ``src [n, d]`` onto ``tgt [n, d]``."""
    if src.shape != tgt.shape or len(src) == 0:
        raise ValueError(f"procrustes needs two [n, d] arrays of one shape, got {src.shape} "
                         f"and {tgt.shape}")
    u, _, vt = np.linalg.svd(tgt.astype(np.float64).T @ src.astype(np.float64))
    return (u @ vt).astype(np.float32)
