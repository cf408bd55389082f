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


def discriminator_accuracy(src: np.ndarray, tgt: np.ndarray, W: np.ndarray, words: int = 10_000,
                           hidden: int = 256, steps: int = 3000, held_out: int = 4000,
                           seed: int = 0) -> float:
    """How well a discriminator (the adversarial stage's, ``hidden`` units, trained ``steps``
    SGD steps at batch 32 + 32 with W fixed) tells mapped source rows ``src @ W.T`` from
    target rows, among the ``words`` most frequent of each side: its accuracy on fresh draws.
    Near 0.5 at the supervised map and near 1 at the identity: the adversarial objective
    points at the right map, and a failed run is the game's, not the pair's."""
    import torch
    from torch import nn

    from .models import Discriminator

    words = min(words, len(src), len(tgt))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        x = torch.from_numpy(np.ascontiguousarray(src[:words] @ W.T, np.float32))
        y = torch.from_numpy(np.ascontiguousarray(tgt[:words], np.float32))
        dis = Discriminator(src.shape[1], hidden, 2, 0.1)
        opt = torch.optim.SGD(dis.parameters(), lr=0.1)
        labels = torch.cat([torch.full((32,), 0.8), torch.full((32,), 0.2)])
        for _ in range(steps):
            i = torch.randint(words, (32,), generator=gen)
            j = torch.randint(words, (32,), generator=gen)
            loss = nn.functional.binary_cross_entropy_with_logits(
                dis(torch.cat([x[i], y[j]])), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        dis.eval()
        i = torch.randint(words, (held_out,), generator=gen)
        j = torch.randint(words, (held_out,), generator=gen)
        with torch.no_grad():
            right = (dis(x[i]) > 0).float().mean() + (dis(y[j]) <= 0).float().mean()
    return float(right / 2)
