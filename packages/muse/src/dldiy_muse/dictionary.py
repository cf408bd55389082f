"""Dictionaries: induction with CSLS (refinement, section 3.4), the unsupervised model-selection
criterion (section 3.5), identical-strings seeds, and P@k evaluation (section 4.1)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from .csls import csls_search, ip_search, mean_knn_similarity, unit


def induce(src: np.ndarray, tgt: np.ndarray, mode: str = "union", max_rank: int = 15_000,
           threshold: float | None = None) -> np.ndarray:
    """Pairs ``[p, 2]`` (source id, target id) of mutual-ish CSLS nearest neighbours among the
    ``max_rank`` most frequent words: ``S2T``, ``T2S``, ``union`` or ``intersection``.
    ``src`` are mapped source vectors, both unit rows; ``threshold`` drops low-score pairs."""
    s, t = unit(src[:max_rank]), unit(tgt[:max_rank])
    r_s, r_t = mean_knn_similarity(t, s), mean_knn_similarity(s, t)  # r_S [m], r_T [n]
    s2t_scores, s2t = csls_search(s, t, 1, r_src=r_s, r_tgt=r_t)
    t2s_scores, t2s = csls_search(t, s, 1, r_src=r_t, r_tgt=r_s)
    pairs = {}
    if mode in ("S2T", "union", "intersection"):
        pairs["S2T"] = {(i, int(j)): float(c) for i, (j, c) in
                        enumerate(zip(s2t[:, 0], s2t_scores[:, 0], strict=True))}
    if mode in ("T2S", "union", "intersection"):
        pairs["T2S"] = {(int(i), j): float(c) for j, (i, c) in
                        enumerate(zip(t2s[:, 0], t2s_scores[:, 0], strict=True))}
    if not pairs:
        raise ValueError(f"dictionary mode {mode!r}: expected S2T, T2S, union or intersection")
    sets = list(pairs.values())
    keys = set.intersection(*map(set, sets)) if mode == "intersection" else set().union(*sets)
    scores = {k: max(p.get(k, -np.inf) for p in sets) for k in keys}
    kept = sorted(k for k, c in scores.items() if threshold is None or c >= threshold)
    return np.array(kept, dtype=np.int64).reshape(-1, 2)


def mean_csls_cosine(src: np.ndarray, tgt: np.ndarray, n_words: int = 10_000,
                     max_rank: int = 200_000) -> float:
    """Unsupervised criterion: mean cosine between the ``n_words`` most frequent mapped source
    words and their CSLS translations (section 3.5). Uses no dictionary."""
    s, t = unit(src[:n_words]), unit(tgt[:max_rank])
    r_src = mean_knn_similarity(t, unit(src[:max_rank]), 10)
    _, ids = csls_search(s, t, 1, r_src=r_src)
    return float((s * t[ids[:, 0]]).sum(axis=1).mean())


def identical_pairs(src_words: Sequence[str], tgt_words: Sequence[str]) -> np.ndarray:
    """Seed dictionary of words spelled the same in both vocabularies: ``[p, 2]`` ids."""
    tgt_index = {w: i for i, w in enumerate(tgt_words)}
    return np.array([(i, tgt_index[w]) for i, w in enumerate(src_words) if w in tgt_index],
                    dtype=np.int64).reshape(-1, 2)


def pairs_to_ids(pairs: Sequence[tuple[str, str]], src_words: Sequence[str],
                 tgt_words: Sequence[str]) -> tuple[np.ndarray, float]:
    """Word pairs -> id pairs ``[p, 2]`` of those in both vocabularies, and that coverage."""
    si = {w: i for i, w in enumerate(src_words)}
    ti = {w: i for i, w in enumerate(tgt_words)}
    ids = [(si[s], ti[t]) for s, t in pairs if s in si and t in ti]
    return np.array(ids, dtype=np.int64).reshape(-1, 2), len(ids) / max(len(pairs), 1)


def precision_at_k(mapped_src: np.ndarray, tgt: np.ndarray, ids: np.ndarray,
                   method: str = "csls", ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """P@k of translating each distinct source word of ``ids`` (any of its reference
    translations counts), by ``nn`` (cosine) or ``csls`` retrieval over the whole target
    vocabulary. Keys ``p@1``… plus ``queries``."""
    gold = defaultdict(set)
    for s, t in ids:
        gold[int(s)].add(int(t))
    queries = np.array(sorted(gold), dtype=np.int64)
    if len(queries) == 0:
        return {f"p@{k}": 0.0 for k in ks} | {"queries": 0}
    q, t = unit(mapped_src[queries]), unit(tgt)
    kmax = max(ks)
    if method == "nn":
        _, top = ip_search(q, t, kmax)
    elif method == "csls":
        _, top = csls_search(q, t, kmax, r_src=mean_knn_similarity(t, unit(mapped_src), 10))
    else:
        raise ValueError(f"retrieval {method!r}: expected nn or csls")
    hits = np.array([[int(j) in gold[int(s)] for j in row] for s, row in zip(queries, top,
                                                                               strict=True)])
    return {f"p@{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks} | {
        "queries": int(len(queries))}
