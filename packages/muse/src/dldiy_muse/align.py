"""Aligning two embedding spaces with an orthogonal map ``W``: Procrustes on a seed dictionary
(supervised, or identical strings), then iterative refinement (Conneau et al., section 3.4):
induce a dictionary with CSLS, solve Procrustes on it, repeat; the map kept is the one with the
best unsupervised criterion (never a test dictionary)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from dldiy_core import UserError, progress

from .dictionary import induce, mean_csls_cosine
from .procrustes import procrustes

log = logging.getLogger(__name__)


@dataclass
class Alignment:
    """``W [d, d]`` maps source rows: ``src @ W.T``; ``history`` has one record per step."""

    W: np.ndarray
    history: list[dict] = field(default_factory=list)
    dictionary: np.ndarray = field(default_factory=lambda: np.empty((0, 2), np.int64))

    def map(self, src: np.ndarray) -> np.ndarray:
        return src @ self.W.T


def check_same_dim(src: np.ndarray, tgt: np.ndarray) -> None:
    """One clear error when the two spaces cannot be aligned by a square map."""
    if src.shape[1] != tgt.shape[1]:
        raise UserError(f"the two spaces differ in dimension ({src.shape[1]} vs "
                        f"{tgt.shape[1]}); reduce one first (e.g. PCA, as data.reduce_dim)")


def fit_seed(src: np.ndarray, tgt: np.ndarray, ids: np.ndarray) -> Alignment:
    """Procrustes on the seed pairs ``ids [p, 2]`` (source id, target id)."""
    check_same_dim(src, tgt)
    if len(ids) < src.shape[1]:
        raise UserError(f"the seed dictionary has {len(ids)} pairs in the vocabularies; "
                        f"an orthogonal map in {src.shape[1]} dimensions needs at least that many")
    W = procrustes(src[ids[:, 0]], tgt[ids[:, 1]])
    align = Alignment(W, dictionary=ids)
    align.history.append({"step": "seed", "pairs": int(len(ids)),
                          "criterion": mean_csls_cosine(align.map(src), tgt)})
    return align


def refine(src: np.ndarray, tgt: np.ndarray, align: Alignment, iterations: int = 5,
           mode: str = "S2T&T2S", max_rank: int = 15_000, threshold: float | None = None,
           show_progress: bool = True, *, method: str = "csls", knn: int = 10,
           beta: float = 30.0) -> Alignment:
    """Iterative Procrustes on induced dictionaries (:func:`induce`: ``mode``, ``method``...);
    keeps the best-criterion map, the initial one included (its criterion recomputed here, on
    the same words), as MUSE, whose best criterion carries over from the adversarial stage."""
    best, best_crit = align, mean_csls_cosine(src @ align.W.T, tgt)
    current = align.W
    for it in progress(range(iterations), desc="refine", enabled=show_progress):
        ids = induce(src @ current.T, tgt, mode, max_rank, threshold, method, knn, beta)
        if len(ids) < src.shape[1]:
            log.warning("refinement %d: only %d induced pairs; stopping", it + 1, len(ids))
            break
        current = procrustes(src[ids[:, 0]], tgt[ids[:, 1]])
        crit = mean_csls_cosine(src @ current.T, tgt)
        align.history.append({"step": f"refine {it + 1}", "pairs": int(len(ids)),
                              "criterion": crit})
        log.info("refinement %d: %d pairs, criterion %.4f", it + 1, len(ids), crit)
        if crit > best_crit:
            best, best_crit = Alignment(current, dictionary=ids), crit
    best.history = align.history
    return best
