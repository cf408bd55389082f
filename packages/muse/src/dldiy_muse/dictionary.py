"""Dictionaries: induction by CSLS, NN or inverted softmax (refinement, section 3.4), the
unsupervised model-selection criterion (section 3.5), identical-strings seeds, and P@k
evaluation (section 4.1)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from .csls import csls_search, f32, ip_search, mean_knn_similarity, unit

BUILDS = {"S2T": "S2T", "T2S": "T2S", "S2T|T2S": "S2T|T2S", "S2T&T2S": "S2T&T2S",
          "union": "S2T|T2S", "intersection": "S2T&T2S"}
"""Dictionary builds (MUSE's ``dico_build``) and their aliases."""
RETRIEVALS = ("csls", "nn", "invsm")
CRITERION_WORDS = 10_000
CRITERION_RANK = 10_000


def log_normalizers(queries: np.ndarray, base: np.ndarray, beta: float,
                     block_elems: int = 1 << 24) -> np.ndarray:
    """``log sum_i exp(beta q_i . b_j)`` over every query ``i``, for each base row ``j``
    ``[m]``: inverted softmax normalises each target over all sources. Blocked over ``j``."""
    q = torch.from_numpy(f32(queries))
    out = np.empty(len(base), np.float32)
    step = max(1, block_elems // max(len(q), 1))
    for j in range(0, len(base), step):
        b = torch.from_numpy(f32(base[j:j + step]))
        out[j:j + step] = torch.logsumexp(beta * (q @ b.T), dim=0).numpy()
    return out


def best_two(src: np.ndarray, tgt: np.ndarray, method: str = "csls", knn: int = 10,
             beta: float = 30.0, r_src: np.ndarray | None = None,
             r_tgt: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The two best targets (over all of ``tgt [m, d]``) of each query row of ``src [n, d]``
    (unit rows): ``(scores [n, 2], ids [n, 2])``. ``csls``: ``r_src [m]`` (``r_S`` of each
    target, over the whole mapped source vocabulary) and ``r_tgt [n]`` can be given; ``invsm``:
    ``r_src`` are the targets' log normalisers over the whole source vocabulary."""
    if method == "nn":
        return ip_search(src, tgt, 2)
    if method == "csls":
        return csls_search(src, tgt, 2, knn, r_src=r_src, r_tgt=r_tgt)
    if method == "invsm":  # log p(i | j) = beta x_i.y_j - log Z_j: one inner-product search
        log_z = log_normalizers(src, tgt, beta) if r_src is None else r_src
        queries = np.hstack([beta * f32(src), -np.ones((len(src), 1), np.float32)])
        return ip_search(queries, np.hstack([f32(tgt), log_z[:, None]]), 2)
    raise ValueError(f"retrieval {method!r}: expected {', '.join(RETRIEVALS)}")


def candidates(src: np.ndarray, tgt: np.ndarray, method: str = "csls", max_rank: int = 15_000,
               knn: int = 10, beta: float = 30.0, r_src: np.ndarray | None = None,
               r_tgt: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MUSE's ``get_candidates``: each of the ``max_rank`` most frequent (mapped, unit) source
    rows and its best target over the WHOLE target vocabulary, then only pairs whose target
    ranks below ``max_rank`` kept: ``(pairs [p, 2], confidence [p])``, confidence = best
    score minus second best. ``r_src``/``r_tgt`` as :func:`best_two`, for all rows."""
    n = min(max_rank, len(src))
    if r_src is None and method == "csls":  # r_S of each target over ALL mapped sources
        r_src = mean_knn_similarity(tgt, src, knn)
    elif r_src is None and method == "invsm":  # each target normalised over ALL sources
        r_src = log_normalizers(src, tgt, beta)
    scores, ids = best_two(src[:n], tgt, method, knn, beta, r_src,
                           None if r_tgt is None else r_tgt[:n])
    pairs = np.stack([np.arange(n), ids[:, 0]], axis=1)
    conf = scores[:, 0] - scores[:, 1] if scores.shape[1] > 1 else scores[:, 0]
    keep = pairs[:, 1] < max_rank
    return pairs[keep], conf[keep]


def induce(src: np.ndarray, tgt: np.ndarray, mode: str = "S2T&T2S", max_rank: int = 15_000,
           threshold: float | None = None, method: str = "csls", knn: int = 10,
           beta: float = 30.0) -> np.ndarray:
    """A dictionary ``[p, 2]`` (source id, target id) for refinement (section 3.4; MUSE's
    ``build_dictionary``): ``S2T`` candidates, ``T2S`` candidates, their union ``S2T|T2S`` or
    their intersection ``S2T&T2S`` (mutual nearest neighbours). ``src`` are mapped source
    vectors, rows in frequency order; neighbourhood terms (CSLS) and normalisers (inverted
    softmax) are computed over both whole vocabularies. ``threshold`` drops pairs whose
    confidence is below it."""
    if mode not in BUILDS:
        raise ValueError(f"dictionary mode {mode!r}: expected one of {', '.join(BUILDS)}")
    if method not in RETRIEVALS:
        raise ValueError(f"retrieval {method!r}: expected {', '.join(RETRIEVALS)}")
    build = BUILDS[mode]
    s, t = unit(src), unit(tgt)
    if method == "csls":
        r_s, r_t = mean_knn_similarity(t, s, knn), mean_knn_similarity(s, t, knn)
    elif method == "invsm":
        r_s, r_t = log_normalizers(s, t, beta), log_normalizers(t, s, beta)
    else:
        r_s = r_t = None
    found = []
    if "S2T" in build:
        found.append(candidates(s, t, method, max_rank, knn, beta, r_s, r_t))
    if "T2S" in build:
        pairs, conf = candidates(t, s, method, max_rank, knn, beta, r_t, r_s)
        found.append((pairs[:, ::-1], conf))
    if threshold is not None:
        found = [(p[c >= threshold], c[c >= threshold]) for p, c in found]
    sets = [set(map(tuple, p.tolist())) for p, _ in found]
    keys = set.intersection(*sets) if build == "S2T&T2S" else set().union(*sets)
    return np.array(sorted(keys), dtype=np.int64).reshape(-1, 2)


def mean_csls_cosine(src: np.ndarray, tgt: np.ndarray, n_words: int = CRITERION_WORDS,
                     max_rank: int = CRITERION_RANK) -> float:
    """The unsupervised criterion (section 3.5; MUSE's ``mean_cosine-csls_knn_10-S2T-10000``):
    the ``n_words`` most frequent mapped source words are translated by CSLS over the whole
    target vocabulary (neighbourhood terms over both whole vocabularies), pairs whose
    translation ranks beyond ``max_rank`` are dropped, and the mean cosine of the others is
    returned (-1 when none is left). Uses no dictionary."""
    s, t = unit(src), unit(tgt)
    r_s = mean_knn_similarity(t, s, 10)
    pairs, _ = candidates(s, t, "csls", min(n_words, len(s)), r_src=r_s)
    pairs = pairs[pairs[:, 1] < max_rank]
    if len(pairs) == 0:
        return -1.0
    return float((s[pairs[:, 0]] * t[pairs[:, 1]]).sum(axis=1).mean())


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
                   method: str = "csls", ks: Sequence[int] = (1, 5, 10), beta: float = 30.0
                   ) -> dict[str, float]:
    """P@k of translating each distinct source word of ``ids`` (any of its reference
    translations counts), by ``nn`` (cosine), ``csls`` or ``invsm`` (inverted softmax over
    the whole mapped source vocabulary) retrieval over the whole target vocabulary. Keys
    ``p@1``… plus ``queries``."""
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
    elif method == "invsm":
        log_z = log_normalizers(unit(mapped_src), t, beta)
        scaled = np.hstack([beta * q, -np.ones((len(q), 1), np.float32)])
        _, top = ip_search(scaled, np.hstack([t, log_z[:, None]]), kmax)
    else:
        raise ValueError(f"retrieval {method!r}: expected {', '.join(RETRIEVALS)}")
    hits = np.array([[int(j) in gold[int(s)] for j in row] for s, row in zip(queries, top,
                                                                               strict=True)])
    return {f"p@{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks} | {
        "queries": int(len(queries))}
