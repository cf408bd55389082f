"""The catalyzer network (Sablayrolles et al., section 3.1)."""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn


def distributed() -> bool:
    """True inside a process group of more than one process (torchrun)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_rows(y: torch.Tensor) -> torch.Tensor:
    """``[B, d]`` of this process -> ``[world * B, d]`` of all processes, in rank order, with
    gradients flowing back to each process's rows (identity for one process)."""
    if not distributed():
        return y
    return torch.cat(dist_fn.all_gather(y))


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over the whole batch of every process (identity to ``nn.BatchNorm1d`` for
    one process, same state dict).

    Under DDP each process holds ``B / world`` rows of a batch; plain BatchNorm would
    normalise them with their own statistics, so two processes would not train the network
    one process trains. ``torch.nn.SyncBatchNorm`` does the same but only on GPUs; here the
    sums go through differentiable all-reduces (gloo on CPU). ``x: [b, C] -> [b, C]``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and distributed()):
            return super().forward(x)
        n = dist_fn.all_reduce(x.new_tensor([float(len(x))]))
        mean = dist_fn.all_reduce(x.sum(0)) / n
        var = dist_fn.all_reduce((x - mean).pow(2).sum(0)) / n
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class Catalyzer(nn.Sequential):
    """MLP ``d_in -> hidden -> hidden -> d_out`` with BatchNorm + ReLU, L2-normalised output.

    ``x: [B, d_in] -> [B, d_out]`` on the unit sphere. BatchNorm statistics are those of the
    whole batch when it is split over processes (:class:`GlobalBatchNorm1d`).
    """

    def __init__(self, d_in: int, d_out: int = 24, hidden: int = 1024):
        super().__init__(
            nn.Linear(d_in, hidden), GlobalBatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), GlobalBatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, d_out))
        self.d_in, self.d_out = d_in, d_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(super().forward(x), dim=-1)


@torch.no_grad()
def embed(net: nn.Module, x, batch: int = 4096, bf16: bool = False) -> torch.Tensor:
    """Eval-mode forward of ``x: [n, d_in]`` (numpy or memmap), in blocks -> ``[n, d_out]``
    float32; ``bf16``: the matmuls under bfloat16 autocast (the fast path of CPUs with bf16
    instructions)."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        out = [net(torch.from_numpy(np.array(x[i:i + batch], dtype=np.float32)).to(device))
               .float().cpu() for i in range(0, len(x), batch)]
    net.train(was_training)
    return torch.cat(out) if out else torch.empty(0, net.d_out)
