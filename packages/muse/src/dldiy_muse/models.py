"""The adversarial stage's discriminator (Conneau et al., section 3.1 and 3.3)."""

from __future__ import annotations

import torch
from torch import nn


class Discriminator(nn.Module):
    """Tells mapped source vectors from target vectors: ``x [B, d] -> logits [B]``.

    Paper (section 3.3): two hidden layers of 2048 units, Leaky-ReLU (0.2), dropout 0.1 on
    the input. The output is a logit (``sigmoid`` = probability that ``x`` is a mapped source
    vector), so the loss can be the numerically stable ``BCEWithLogits``.
    """

    def __init__(self, dim: int, hidden: int = 2048, layers: int = 2,
                 input_dropout: float = 0.1, slope: float = 0.2):
        super().__init__()
        blocks: list[nn.Module] = [nn.Dropout(input_dropout)]
        width = dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(slope)]
            width = hidden
        blocks.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)
