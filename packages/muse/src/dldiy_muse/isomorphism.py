"""How alike are the two spaces? A diagnosis of whether unsupervised alignment can work.

Unsupervised methods (adversarial, similarity seeds, Gromov-Wasserstein) all assume the two
spaces are nearly isomorphic: that words which are close in one language have translations
close in the other (Søgaard et al., ACL 2018, show that alignment fails where this breaks).
On gold translation pairs among the most frequent words of each side, this measures

- ``cosine_correlation``: Pearson correlation between the two within-language cosine
  matrices ``X Xᵀ`` and ``Y Yᵀ`` (upper triangles), and
- ``knn_overlap``: the mean fraction of a word's ``k`` nearest neighbours whose translations
  are among its translation's ``k`` nearest neighbours (``knn_chance`` if unrelated).

It reads a dictionary, so it is a diagnosis only: nothing is ever selected by it.
"""

from __future__ import annotations

import numpy as np

from .csls import unit


def gold_pairs(ids: np.ndarray, top: int) -> np.ndarray:
    """One-to-one pairs ``[p, 2]`` of ``ids`` with both words among the ``top`` most frequent
    (rows are in frequency order); the first translation of each word is kept."""
    seen_s, seen_t, out = set(), set(), []
    for s, t in ids.tolist():
        if s < top and t < top and s not in seen_s and t not in seen_t:
            seen_s.add(s)
            seen_t.add(t)
            out.append((s, t))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def isomorphism(src: np.ndarray, tgt: np.ndarray, ids: np.ndarray, top: int = 4000,
                k: int = 10) -> dict[str, float]:
    """``src [n, d]``, ``tgt [m, d']`` (any dimensions: no map is involved), ``ids [p, 2]``
    dictionary pairs; the figures above on the one-to-one pairs among the ``top`` words."""
    pairs = gold_pairs(ids, top)
    if len(pairs) <= k + 1:
        raise ValueError(f"only {len(pairs)} dictionary pairs among the {top} most frequent "
                         f"words of each side; at least {k + 2} are needed")
    a, b = unit(src[pairs[:, 0]]), unit(tgt[pairs[:, 1]])
    ca, cb = a @ a.T, b @ b.T
    upper = np.triu_indices(len(pairs), 1)
    corr = float(np.corrcoef(ca[upper], cb[upper])[0, 1])
    np.fill_diagonal(ca, -np.inf)
    np.fill_diagonal(cb, -np.inf)
    na = np.argpartition(-ca, k, axis=1)[:, :k]
    nb = np.argpartition(-cb, k, axis=1)[:, :k]
    hits = (na[:, :, None] == nb[:, None, :]).any(axis=2).sum(axis=1)
    return {"pairs": int(len(pairs)), "top": top, "k": k, "cosine_correlation": corr,
            "knn_overlap": float(hits.mean() / k), "knn_chance": k / (len(pairs) - 1)}
