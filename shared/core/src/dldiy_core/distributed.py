"""Distributed data parallel under ``torchrun``: process group, rank and reductions.

Launch any dldiy training command with ``torchrun --nproc_per_node N -m PACKAGE train ...``;
the Trainer finds the environment torchrun sets and wraps the model in
``DistributedDataParallel`` (gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", 0))


def is_main() -> bool:
    return rank() == 0


def init_distributed(device: torch.device) -> bool:
    """Join the process group torchrun describes (even of one process: the nccl/gloo path is
    the same); False, and nothing done, outside torchrun."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
        return False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        # gloo for CPU tensors (metric reductions, RNG states), nccl for CUDA gradients
        backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        atexit.register(close)
        log.info("joined the process group: rank %d of %d, backend %s", dist.get_rank(),
                 dist.get_world_size(), backend)
    return True


def close() -> None:
    """Leave the process group (registered at exit when the Trainer joined it)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Process ``src``'s copy of ``t`` on every process (in place; identity for one)."""
    if dist.is_initialized():
        dist.broadcast(t, src)
    return t


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over all processes (identity for one process)."""
    if not dist.is_initialized():
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()


def all_gather_tensor(t: torch.Tensor) -> list[torch.Tensor]:
    """Every process's copy of a same-shaped tensor, in rank order."""
    if not dist.is_initialized():
        return [t]
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return out


def all_gather_object(obj: Any) -> list[Any]:
    """Every process's ``obj`` (small python objects such as RNG states), in rank order."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
