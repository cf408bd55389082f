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
    """``W [d, d]`` maps source rows: ``src @ W.T``; ``history`` has one record per step.
    ``T [d, d]``: a map of the target rows too (``tgt @ T.T``; vecmap's two-sided steps,
    :mod:`vecmap`), None when the target space is left as it is."""

    W: np.ndarray
    history: list[dict] = field(default_factory=list)
    dictionary: np.ndarray = field(default_factory=lambda: np.empty((0, 2), np.int64))
    T: np.ndarray | None = None

    def map(self, src: np.ndarray) -> np.ndarray:
        return src @ self.W.T

    def map_tgt(self, tgt: np.ndarray) -> np.ndarray:
        return tgt if self.T is None else tgt @ self.T.T


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
    best, best_crit = align, mean_csls_cosine(align.map(src), align.map_tgt(tgt))
    current, target = align.W, align.map_tgt(tgt)  # a two-sided start: its own target map
    for it in progress(range(iterations), desc="refine", enabled=show_progress):
        ids = induce(src @ current.T, target, mode, max_rank, threshold, method, knn, beta)
        target = tgt  # Procrustes maps the source onto the target as it is
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


def vecmap_final(src: np.ndarray, tgt: np.ndarray, align: Alignment, steps) -> Alignment:
    """vecmap's whitening / re-weighting / de-whitening (:mod:`vecmap`, ``steps``) fitted on
    ``align``'s dictionary: a two-sided alignment (``W`` and ``T``), its criterion recorded."""
    from .vecmap import vecmap_maps

    ids = align.dictionary
    if len(ids) < src.shape[1]:  # e.g. an adversarial map with no refinement: induce one
        ids = induce(align.map(src), align.map_tgt(tgt))
    if len(ids) < src.shape[1]:
        raise UserError(f"vecmap steps: only {len(ids)} dictionary pairs for {src.shape[1]} "
                        "dimensions")
    A, B = vecmap_maps(src[ids[:, 0]], tgt[ids[:, 1]], steps)
    out = Alignment(A, list(align.history), ids, B)
    crit = mean_csls_cosine(out.map(src), out.map_tgt(tgt))
    out.history.append({"step": "vecmap", "pairs": int(len(ids)), "criterion": crit,
                        "whiten": steps.whiten, "src_reweight": steps.src_reweight,
                        "trg_reweight": steps.trg_reweight,
                        "src_dewhiten": steps.src_dewhiten, "trg_dewhiten": steps.trg_dewhiten})
    log.info("vecmap steps on %d pairs: criterion %.4f", len(ids), crit)
    return out
