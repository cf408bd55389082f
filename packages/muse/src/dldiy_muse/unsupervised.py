"""A robust unsupervised initialisation for hard pairs, in the spirit of vecmap (Artetxe et al.,
ACL 2018): a seed dictionary from similarity distributions, then self-learning with stochastic
dictionary induction. Selected with ``--init similarity``.

Seed: for the ``size`` most frequent words of each language, the sorted rows of
``sqrt(X X^T)`` (``= U S U^T`` from the SVD of ``X``) are nearly language-independent
"similarity profiles"; words whose profiles are CSLS nearest neighbours seed the dictionary.
Self-learning: Procrustes on the dictionary, then a new dictionary from CSLS similarities where
each entry is kept with probability ``p`` (others dropped), both directions; ``p`` doubles
whenever the objective (mean best CSLS score) stops improving, until ``p = 1`` converges.
"""

from __future__ import annotations

import logging

import numpy as np

from dldiy_core import progress

from .align import Alignment
from .csls import csls_search, mean_knn_similarity, unit
from .embeddings import normalize
from .procrustes import procrustes

log = logging.getLogger(__name__)
CANDIDATES = 64


def _profiles(x: np.ndarray) -> np.ndarray:
    """Sorted rows of ``sqrt(X X^T)`` for the rows of ``x [n, d]``, normalised: ``[n, n]``."""
    u, s, _ = np.linalg.svd(x.astype(np.float64), full_matrices=False)
    sim = np.sort((u * s) @ u.T, axis=1)
    return normalize(sim, "unit,center,unit")


def _csls_argmax(src: np.ndarray, tgt: np.ndarray, r_src: np.ndarray, r_tgt: np.ndarray,
                 keep: float, rng: np.random.Generator | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For each source row, the target maximising CSLS over a random ``keep`` fraction of the
    entries: ``(ids [n], scores [n])``, ``-1`` where nothing was kept. The maximum over kept
    entries lies among the top 64 unless none of them is kept (probability ``(1-keep)^64``,
    under 0.2 % for ``keep >= 0.1``), so only those are drawn: faiss searches, no matrix."""
    k = 1 if keep >= 1 else min(CANDIDATES, len(tgt))
    scores, ids = csls_search(src, tgt, k, r_src=r_src, r_tgt=r_tgt)
    if keep >= 1:
        return ids[:, 0], scores[:, 0]
    kept = rng.random(ids.shape, dtype=np.float32) < keep
    first = kept.argmax(axis=1)  # candidates are sorted: the first kept is the best kept
    rows = np.arange(len(ids))
    found = kept[rows, first]
    return np.where(found, ids[rows, first], -1), np.where(found, scores[rows, first], np.nan)


def _both_ways(src: np.ndarray, tgt: np.ndarray, keep: float, rng) -> tuple[np.ndarray, float]:
    """Union of the source->target and target->source stochastic CSLS dictionaries, and the
    objective (mean best CSLS score)."""
    r_src = mean_knn_similarity(tgt, src, 10)  # r_S of each target; r_T of each source below
    r_tgt = mean_knn_similarity(src, tgt, 10)
    s2t, s_scores = _csls_argmax(src, tgt, r_src, r_tgt, keep, rng)
    t2s, t_scores = _csls_argmax(tgt, src, r_tgt, r_src, keep, rng)
    pairs = np.vstack([np.stack([np.arange(len(src)), s2t], 1),
                       np.stack([t2s, np.arange(len(tgt))], 1)])
    pairs = np.unique(pairs[(pairs >= 0).all(axis=1)], axis=0)
    return pairs, float((np.nanmean(s_scores) + np.nanmean(t_scores)) / 2)


def similarity_seed(src: np.ndarray, tgt: np.ndarray, size: int = 4000) -> np.ndarray:
    """Seed pairs ``[p, 2]`` from the similarity profiles of the ``size`` top words."""
    n = min(size, len(src), len(tgt))
    pairs, _ = _both_ways(unit(_profiles(src[:n])), unit(_profiles(tgt[:n])), 1.0, None)
    return pairs


def self_learning(src: np.ndarray, tgt: np.ndarray, seed: np.ndarray, vocab: int = 20_000,
                  keep: float = 0.1, patience: int = 10, max_iter: int = 300, seed_rng: int = 0,
                  show_progress: bool = True) -> Alignment:
    """Procrustes + stochastic CSLS induction among the ``vocab`` top words until converged."""
    s, t = unit(src[:vocab]), unit(tgt[:vocab])
    rng = np.random.default_rng(seed_rng)
    pairs, best, stale = seed, -np.inf, 0
    history = []
    bar = progress(range(max_iter), desc="self-learning", enabled=show_progress)
    for it in bar:
        W = procrustes(src[pairs[:, 0]], tgt[pairs[:, 1]])
        pairs, objective = _both_ways(s @ W.T, t, keep, rng)
        history.append({"step": f"self-learning {it + 1}", "pairs": int(len(pairs)),
                        "objective": objective, "keep": keep})
        if objective > best + 1e-6:
            best, stale = objective, 0
        else:
            stale += 1
        if stale >= patience:
            if keep >= 1:
                break
            keep, stale = min(1.0, 2 * keep), 0
            log.info("self-learning %d: objective %.4f, keep %.2f", it + 1, objective, keep)
    W = procrustes(src[pairs[:, 0]], tgt[pairs[:, 1]])
    return Alignment(W, history, pairs)
