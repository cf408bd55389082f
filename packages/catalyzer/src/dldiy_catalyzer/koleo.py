"""The KoLeo entropy regulariser (Sablayrolles et al., eq. 4; Kozachenko & Leonenko 1987).

``L_koleo = -1/n * sum_i log(n * rho_i)`` with ``rho_i = min_{j != i} ||f(x_i) - f(x_j)||``:
the differential-entropy estimate of the batch, up to constants; minimising it spreads points.
"""

from __future__ import annotations

import torch


def nearest_neighbor_distances(y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``y: [n, d]`` -> ``[n]`` distance of each row to its nearest other row.

    The neighbour is chosen without gradient (as in the paper); the distance carries it.
    ``eps`` keeps the gradient finite for duplicate points (the original code gives NaN).
    """
    with torch.no_grad():
        d2 = torch.cdist(y, y).fill_diagonal_(float("inf"))
        nn_idx = d2.argmin(dim=1)
    return ((y - y[nn_idx]).pow(2).sum(dim=1) + eps).sqrt()


def koleo_loss(y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Kozachenko-Leonenko loss of a batch ``y: [n, d]`` (n >= 2); a scalar."""
    n = y.shape[0]
    if n < 2:
        raise ValueError("KoLeo needs at least two points")
    return -torch.log(n * nearest_neighbor_distances(y, eps)).mean()
