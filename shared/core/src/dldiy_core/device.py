"""Device selection and seeding."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .errors import UserError


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA (the local rank's GPU under torchrun), then MPS, then CPU.

    An explicit device that is not available is a :class:`UserError`.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise UserError(f"device '{name}': {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}': CUDA is not available on this machine")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device '{name}': MPS is not available on this machine")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; ``deterministic`` also forces deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
