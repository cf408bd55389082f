"""Model criticism with MMD-critic (Kim, Khanna & Koyejo 2016), as Stock & Cissé sec. 5 use it:
per class, *prototypes* (images that together represent the class in the network's
penultimate feature space) and *criticisms* (images the prototypes explain worst).

With an RBF kernel ``k`` on features ``X: [n, d]``, the prototypes ``S`` greedily maximise

    J(S) = 2/(n|S|) sum_{i in [n], j in S} k(x_i, x_j) - 1/|S|^2 sum_{i, j in S} k(x_i, x_j)

(the negative MMD^2 between data and prototypes, up to a constant; eq. 4 of Kim et al.), and
the criticisms ``C`` greedily maximise the witness ``|1/n sum_i k(x, x_i) - 1/|S| sum_{j in S}
k(x, x_j)|`` with a log-determinant diversity term (their eq. 6, the "regularised" variant).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch

from dldiy_core import UserError


def rbf_kernel(x: torch.Tensor, gamma: float | None = None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``K[i, j] = exp(-gamma ||x_i - x_j||^2)`` for ``x: [n, d]``; ``gamma`` defaults to
    ``1 / median(squared distance)`` (the usual bandwidth heuristic, on at most 2,000 points)."""
    x = x.to(dtype)
    sq = (x * x).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0)
    if gamma is None:
        sub = d2[:2000, :2000]
        off = sub[~torch.eye(len(sub), dtype=torch.bool)]
        med = off.median().item() if off.numel() else 1.0
        gamma = 1.0 / med if med > 0 else 1.0
    return d2.mul_(-gamma).exp_()


def objective(K: torch.Tensor, S: Sequence[int]) -> float:
    """``J(S)`` above (higher is better) for kernel ``K: [n, n]``."""
    if not S:
        return 0.0
    n, m = K.shape[0], len(S)
    s = list(S)
    return float(2.0 / (n * m) * K[:, s].sum() - K[s][:, s].sum() / m ** 2)


def select_prototypes(K: torch.Tensor, m: int) -> list[int]:
    """Greedy prototypes: add the point that raises :func:`objective` most, ``m`` times.

    Each step scores every candidate in ``O(n)`` from running column sums, so the whole
    selection costs ``O(n^2 + m n)`` after the kernel."""
    n = K.shape[0]
    if not 1 <= m <= n:
        raise UserError(f"prototypes: {m} asked from {n} images (need 1..{n})")
    col = K.sum(0) / n  # mean similarity of each candidate to the data
    diag = torch.diagonal(K)
    chosen: list[int] = []
    s_sum = torch.zeros(n, dtype=K.dtype)  # sum_{j in S} K[c, j] for every c
    ss = 0.0  # sum_{i, j in S} K[i, j]
    taken = torch.zeros(n, dtype=torch.bool)
    col_s = 0.0  # sum_{j in S} col[j]
    for step in range(m):
        k = step + 1
        gain = 2.0 / k * (col_s + col) - (ss + 2 * s_sum + diag) / k ** 2
        gain[taken] = -math.inf
        c = int(gain.argmax())
        chosen.append(c)
        taken[c] = True
        ss += float(2 * s_sum[c] + diag[c])
        col_s += float(col[c])
        s_sum += K[:, c]
    return chosen


def brute_force_prototypes(K: torch.Tensor, m: int) -> list[int]:
    """The exact maximiser of :func:`objective` over all ``m``-subsets (tests, tiny ``n``)."""
    n = K.shape[0]
    best = max(itertools.combinations(range(n), m), key=lambda s: objective(K, s))
    return list(best)


def witness(K: torch.Tensor, prototypes: Sequence[int]) -> torch.Tensor:
    """``|mean_i k(x, x_i) - mean_{j in S} k(x, x_j)|`` for every point ``[n]``."""
    return (K.mean(1) - K[:, list(prototypes)].mean(1)).abs()


def select_criticisms(K: torch.Tensor, prototypes: Sequence[int], c: int,
                      regularise: bool = True) -> list[int]:
    """Greedy criticisms: the points of largest witness, with (``regularise``) the log-det
    diversity term ``log det K[C, C]`` so criticisms do not all come from one corner.

    The log-det gain of adding ``i`` is ``log(K_ii - k_iC K_CC^-1 k_Ci)`` (a Schur complement),
    computed for every candidate at once."""
    n = K.shape[0]
    taken = torch.zeros(n, dtype=torch.bool)
    taken[list(prototypes)] = True
    if not 0 <= c <= int((~taken).sum()):
        raise UserError(f"criticisms: {c} asked from {int((~taken).sum())} non-prototype images")
    w = witness(K, prototypes)
    diag = torch.diagonal(K)
    chosen: list[int] = []
    for _ in range(c):
        score = w.clone()
        if regularise:
            if chosen:
                kc = K[:, chosen]  # [n, |C|]
                inv = torch.linalg.inv(K[chosen][:, chosen] + 1e-9 * torch.eye(
                    len(chosen), dtype=K.dtype))
                schur = diag - ((kc @ inv) * kc).sum(1)
            else:
                schur = diag.clone()
            score = score + torch.log(schur.clamp_min(1e-12))
        score[taken] = -math.inf
        i = int(score.argmax())
        chosen.append(i)
        taken[i] = True
    return chosen


def brute_force_criticisms(K: torch.Tensor, prototypes: Sequence[int], c: int) -> list[int]:
    """Exact greedy reference: each step scores ``w_i + log det K[C+i, C+i]`` directly."""
    w = witness(K, prototypes)
    chosen: list[int] = []
    for _ in range(c):
        best, best_val = -1, -math.inf
        for i in range(K.shape[0]):
            if i in chosen or i in prototypes:
                continue
            sub = K[chosen + [i]][:, chosen + [i]]
            val = float(w[i]) + float(torch.linalg.slogdet(sub)[1])
            if val > best_val:
                best, best_val = i, val
        chosen.append(best)
    return chosen


def criticize(features: torch.Tensor, m: int, c: int,
              gamma: float | None = None) -> tuple[list[int], list[int]]:
    """Prototypes and criticisms of one class's features ``[n, d]`` (indices into it)."""
    if len(features) < 2:
        raise UserError(f"criticism needs at least 2 images of a class, got {len(features)}")
    K = rbf_kernel(features, gamma)
    m = min(m, len(features))
    protos = select_prototypes(K, m)
    crits = select_criticisms(K, protos, min(c, len(features) - m))
    return protos, crits


def attribute_bias(attributes: np.ndarray, prototypes: Sequence[int],
                   names: Sequence[str], draws: int = 5000, seed: int = 0) -> list[dict]:
    """The bias probe: each attribute's mean among prototypes vs the whole class
    (``attributes: [n, A]`` 0/1 or numbers). A large gap says the model's idea of the class
    leans on that attribute (the paper's sec. 5 reading of prototypes). ``p_random``: the
    share of ``draws`` random subsets of the same size whose gap is at least as large (how
    often chance alone would show it)."""
    a = np.asarray(attributes, dtype=float)
    idx = list(prototypes)
    p = a[idx]
    rng = np.random.default_rng(seed)
    subsets = np.stack([rng.choice(len(a), size=len(idx), replace=False) for _ in range(draws)])
    out = []
    for j, name in enumerate(names):
        gap = p[:, j].mean() - a[:, j].mean()
        random_gaps = np.abs(a[subsets, j].mean(1) - a[:, j].mean())
        out.append({"attribute": name, "class_mean": float(a[:, j].mean()),
                    "prototype_mean": float(p[:, j].mean()), "gap": float(gap),
                    "p_random": float((random_gaps >= abs(gap) - 1e-12).mean())})
    return out


def image_attributes(pixels: torch.Tensor) -> tuple[np.ndarray, list[str]]:
    """Simple measured attributes of ``uint8 [n, 3, H, W]`` images, for the bias probe when no
    attribute labels are given: the share of near-white background, the mean saturation and
    brightness of the foreground (the other pixels), and whether the foreground is (almost)
    grey-scale (line art, silhouettes, black-and-white photos)."""
    x = pixels.float() / 255
    mx, mn = x.max(1).values, x.min(1).values  # [n, H, W]
    sat = torch.where(mx > 0, (mx - mn) / mx.clamp_min(1e-6), torch.zeros_like(mx))
    background = mn > 0.94
    fg = (~background).float()
    n_fg = fg.sum((1, 2)).clamp_min(1)
    fg_sat = (sat * fg).sum((1, 2)) / n_fg
    fg_bright = (x.mean(1) * fg).sum((1, 2)) / n_fg
    attrs = torch.stack([background.float().mean((1, 2)), fg_sat, fg_bright,
                         (fg_sat < 0.1).float()], 1)
    return attrs.numpy(), ["white background share", "foreground saturation",
                           "foreground brightness", "grey-scale foreground"]


def contact_sheet(pixels: torch.Tensor, rows: Sequence[Sequence[int]],
                  row_names: Sequence[str], size: int = 96):
    """A matplotlib figure with one row of thumbnails per ``rows[r]`` (indices into
    ``pixels: uint8 [n, 3, H, W]``)."""
    from dldiy_core import new_figure

    cols = max((len(r) for r in rows), default=1) or 1
    fig, axes = new_figure(1.3 * cols, 1.5 * len(rows), rows=len(rows), cols=cols,
                           squeeze=False)
    for r, (idx, name) in enumerate(zip(rows, row_names, strict=True)):
        for j in range(cols):
            ax = axes[r][j]
            ax.axis("off")
            if j < len(idx):
                img = torch.nn.functional.interpolate(pixels[idx[j]:idx[j] + 1].float(),
                                                      size=(size, size), mode="area")
                ax.imshow(img[0].permute(1, 2, 0).clamp(0, 255).byte().numpy())
            if j == 0:
                ax.set_title(name, fontsize=8, loc="left")
    return fig
