"""The catalyzer network (Sablayrolles et al., section 3.1)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Catalyzer(nn.Sequential):
    """MLP ``d_in -> hidden -> hidden -> d_out`` with BatchNorm + ReLU, L2-normalised output.

    ``x: [B, d_in] -> [B, d_out]`` on the unit sphere.
    """

    def __init__(self, d_in: int, d_out: int = 24, hidden: int = 1024):
        super().__init__(
            nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, d_out))
        self.d_in, self.d_out = d_in, d_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(super().forward(x), dim=-1)


@torch.no_grad()
def embed(net: nn.Module, x, batch: int = 4096) -> torch.Tensor:
    """Eval-mode forward of ``x: [n, d_in]`` (numpy or memmap), in blocks -> ``[n, d_out]``."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    out = [net(torch.from_numpy(np.array(x[i:i + batch], dtype=np.float32)).to(device)).cpu()
           for i in range(0, len(x), batch)]
    net.train(was_training)
    return torch.cat(out) if out else torch.empty(0, net.d_out)
