"""Configs and presets: ``paper`` (the paper's settings), ``quick`` (the ~30-minute experiment on
2 cores), ``demo`` (MFSC vs learn-all on the demo corpus), ``tiny`` (tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dldiy_core import TrainConfig

FRONTENDS: tuple[str, ...] = ("mfsc", "tdfb-fixed", "tdfb-learn-all", "tdfb-learn-filterbank",
                              "tdfb-random", "leaf", "sincnet")
"""Front ends by name; ``tdfb-<mode>`` is the TD-filterbank in that mode."""


@dataclass
class DataConfig:
    corpus: str = ""
    """A TIMIT-layout folder; empty: the corpus ``data build`` writes (built if missing)."""
    train_hours: float = 0.0
    """Use at most this many hours of the train split (0: all), the same utterances every run."""
    max_seconds: float = 8.0
    """Skip longer utterances (memory)."""
    resample: bool = False
    """Resample audio at another rate instead of rejecting it."""


@dataclass
class ModelConfig:
    frontend: str = "tdfb-learn-all"
    preemphasis: bool = False
    input_gain: float = 1.0
    """Waveform scale before the front end (``frontend.GAIN``); 32768 reads it in 16-bit units,
    where log(1 + x) acts as a log (use ``impl=fft`` then for an exact fixed front end)."""
    channels: int = 1000
    layers: int = 5
    kernel: int = 5
    first_stride: int = 1
    """Stride of the first conv layer (2 halves the frame rate to 20 ms: faster, coarser)."""
    dropout: float = 0.5
    weight_norm: bool = True
    impl: str = "auto"
    """TD-filterbank implementation: auto (band for fixed filters, else fft), fft, direct, band."""


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lr: float = 3e-4
    frontend_lr: float = 3e-4
    """Learning rate of the front end's parameters (learn modes)."""
    weight_decay: float = 0.0
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=60, batch_size=16, seed=0, log_every=50, checkpoint_every=500, grad_clip=5.0))
    experiment: list[str] = field(default_factory=lambda: list(FRONTENDS))
    """Front ends the ``experiment`` command compares."""


PRESETS: dict[str, dict] = {
    "paper": {},
    "quick": {"data": {"train_hours": 0.5, "max_seconds": 6.0},
              "model": {"channels": 256, "layers": 4, "first_stride": 2, "dropout": 0.1},
              "lr": 2e-3, "frontend_lr": 5e-4,
              "train": {"epochs": 6, "batch_size": 8, "log_every": 10,
                        "checkpoint_every": 100},
              "experiment": ["mfsc", "tdfb-fixed", "tdfb-learn-all", "tdfb-learn-filterbank",
                             "tdfb-random"]},
    "demo": {"data": {"max_seconds": 6.0},
             "model": {"channels": 256, "layers": 4, "first_stride": 2, "dropout": 0.1},
             "lr": 2e-3, "frontend_lr": 5e-4,
             "train": {"epochs": 8, "batch_size": 8, "log_every": 10, "checkpoint_every": 0},
             "experiment": ["mfsc", "tdfb-learn-all"]},
    "tiny": {"data": {"max_seconds": 4.0},
             "model": {"channels": 32, "layers": 2, "first_stride": 2, "dropout": 0.0},
             "lr": 3e-3, "frontend_lr": 3e-3,
             "train": {"epochs": 2, "batch_size": 4, "log_every": 2, "checkpoint_every": 0},
             "experiment": ["mfsc", "tdfb-fixed"]},
}
