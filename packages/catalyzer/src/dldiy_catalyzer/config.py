"""Configs and presets: ``paper`` (the paper's settings, section 5), ``quick`` (minutes here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dldiy_core import TrainConfig


@dataclass
class DataConfig:
    source: str = "glove50"
    """glove50, fashion-mnist, or a .fvecs/.bvecs file."""
    n_base: int = 290_000
    n_train: int = 100_000
    n_query: int = 10_000
    seed: int = 0


@dataclass
class ModelConfig:
    hidden: int = 1024
    d_out: int = 24
    """24 for the Zn lattice; the number of bits for binary codes."""


@dataclass
class LossConfig:
    lambda_koleo: float = 0.05
    rank_positive: int = 10
    """Positives are drawn from this many true input-space neighbours."""
    rank_negative: int = 50
    """The negative is this-ranked neighbour in the current output space."""
    margin: float = 0.0
    quantizer: str = ""
    """Train end to end through a quantizer (section 5.3): "" off, "zn79" (Zn sphere with
    r2=79; any r2), or "sign" (binary codes). Positives, negatives and mining see codes."""


@dataclass
class CatalyzerConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    codes: Literal["lattice", "binary"] = "lattice"
    lr_schedule: list[float] = field(default_factory=lambda: [0.1, 0.1, 0.05, 0.01])
    """Learning rates for equal parts of the epochs."""
    momentum: float = 0.9
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=160, batch_size=64, seed=1234, log_every=100, checkpoint_every=2000,
        drop_last=True))


PRESETS: dict[str, dict] = {
    "paper": {},
    "quick": {"data": {"n_base": 100_000, "n_train": 50_000, "n_query": 2_000},
              "train": {"epochs": 8, "batch_size": 128, "log_every": 50,
                        "checkpoint_every": 500}},
    "tiny": {"data": {"n_base": 2_000, "n_train": 2_000, "n_query": 200},
             "model": {"hidden": 64},
             "train": {"epochs": 4, "batch_size": 64, "log_every": 10, "checkpoint_every": 0}},
}
