"""A tiny real training task (an MLP on a planted regression) used by the bench, the tests and
as the smallest example of a package CLI: ``python -m dldiy_core toy-train --out runs/toy``.

Scale it out with ``torchrun --standalone --nproc_per_node 2 -m dldiy_core toy-train ...``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from .config import add_config_args, bounded, config_from_args, to_dict
from .data import TensorData
from .device import seed_everything
from .progress import setup_logging
from .trainer import Hook, TrainConfig, Trainer


@dataclass
class ToyConfig:
    n: int = bounded(4096, ge=1)
    n_valid: int = bounded(0, ge=0)
    """Held-out points of the same regression, scored by validation (0: none)."""
    d_in: int = bounded(32, ge=1)
    hidden: int = bounded(64, ge=1)
    d_out: int = bounded(4, ge=1)
    noise: float = bounded(0.05, ge=0)
    lr: float = bounded(1e-2, gt=0)
    dropout: float = bounded(0.0, ge=0, lt=1)
    schedule: Literal["step", "epoch", "plateau"] = "step"
    """LR decay: x0.9 every 50 steps, x0.5 every epoch, or x0.5 on a validation plateau."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=64, epochs=2))


PRESETS = {"default": {}, "tiny": {"n": 512, "hidden": 16, "train": {"epochs": 1}}}


def planted_regression(n: int, d_in: int, d_out: int, noise: float = 0.05,
                       seed: int = 0) -> TensorData:
    """``y = tanh(x A) B + noise``: ``x: [n, d_in]``, ``y: [n, d_out]``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g)
    a = torch.randn(d_in, 2 * d_out, generator=g) / d_in**0.5
    b = torch.randn(2 * d_out, d_out, generator=g)
    y = torch.tanh(x @ a) @ b + noise * torch.randn(n, d_out, generator=g)
    return TensorData(x, y)


def mlp(d_in: int, hidden: int, d_out: int, dropout: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


def mse_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


class Delay(Hook):
    """Sleep after each step (lets tests interrupt a run at a chosen moment)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_step_end(self, trainer: Trainer, logged: dict | None) -> None:
        time.sleep(self.seconds)


def build(cfg: ToyConfig, out: str | None) -> tuple[Trainer, TensorData, TensorData | None]:
    """The trainer, the training set and the validation set (None when ``n_valid`` is 0)."""
    seed_everything(cfg.train.seed)
    full = planted_regression(cfg.n + cfg.n_valid, cfg.d_in, cfg.d_out, cfg.noise, seed=1234)
    data = TensorData(*(t[:cfg.n] for t in full.tensors)) if cfg.n_valid else full
    valid = TensorData(*(t[cfg.n:] for t in full.tensors)) if cfg.n_valid else None
    model = mlp(cfg.d_in, cfg.hidden, cfg.d_out, cfg.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    lr = torch.optim.lr_scheduler
    sched = {"step": lambda: lr.StepLR(opt, step_size=50, gamma=0.9),
             "epoch": lambda: lr.StepLR(opt, step_size=1, gamma=0.5),
             "plateau": lambda: lr.ReduceLROnPlateau(opt, factor=0.5, patience=0)}[cfg.schedule]()
    trainer = Trainer(model, opt, mse_loss, cfg.train, out, scheduler=sched,
                      scheduler_every="epoch" if cfg.schedule == "epoch" else None,
                      run_config=to_dict(cfg))
    return trainer, data, valid


def main(argv: Sequence[str] | None = None) -> int:
    from .errors import ArgumentParser

    p = ArgumentParser(prog="python -m dldiy_core toy-train", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--force", action="store_true", help="replace a run that --out holds")
    p.add_argument("--step-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    add_config_args(p, PRESETS, "default")
    args = p.parse_args(argv)
    setup_logging()
    cfg = config_from_args(ToyConfig, PRESETS, args)
    trainer, data, valid = build(cfg, args.out)
    if args.step_delay:
        trainer.hooks.append(Delay(args.step_delay))
    history = trainer.fit(data, valid, resume=args.resume, force=args.force)
    if trainer.rank == 0:
        losses = [h["loss"] for h in history if h["kind"] == "train"] or [float("nan")]
        print(f"trained {trainer.state.step} steps; last loss {losses[-1]:.5f}; "
              f"checkpoint {trainer.checkpoint_path}")
    return 0
