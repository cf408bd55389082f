"""Configs and presets: ``paper`` (the paper's settings), ``quick`` (the ~30-minute experiment on
2 cores), ``long`` (MFSC vs learn-all with quick's data and model, up to 30 epochs, about 2 hours
on one thread), ``demo`` (MFSC vs learn-all on the demo corpus), ``tiny`` (tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dldiy_core import TrainConfig, bounded

FRONTENDS: tuple[str, ...] = ("mfsc", "tdfb-fixed", "tdfb-learn-all", "tdfb-learn-filterbank",
                              "tdfb-random", "leaf", "sincnet")
"""Front ends by name; ``tdfb-<mode>`` is the TD-filterbank in that mode."""
IMPLS: tuple[str, ...] = ("auto", "fft", "direct", "band")
"""TD-filterbank implementations (:data:`.filterbank.IMPLS`)."""


@dataclass
class DataConfig:
    corpus: str = ""
    """A TIMIT-layout folder; empty: the corpus ``data build`` writes (built if missing)."""
    train_hours: float = bounded(0.0, ge=0)
    """Use at most this many hours of the train split (0: all), the same utterances every run."""
    max_seconds: float = bounded(8.0, gt=0)
    """Skip longer utterances (memory)."""
    dev_hours: float = bounded(0.0, ge=0)
    """Dev audio that ``experiment`` selects checkpoints and learning rates on and reports the
    dev PER of: the first utterances of a round robin over the dev speakers (0: all)."""
    resample: bool = False
    """Resample audio at another rate instead of rejecting it."""


@dataclass
class ModelConfig:
    frontend: str = "tdfb-learn-all"
    preemphasis: bool = False
    input_gain: float = bounded(32768.0, gt=0)
    """Waveform scale before the front end (``frontend.GAIN``): 32768 reads it in 16-bit units
    (TIMIT's samples), where log(1 + x) acts as the paper's log; 1 leaves it in [-1, 1], where
    log(1 + x) of most speech energies is nearly linear."""
    channels: int = bounded(1000, ge=1)
    layers: int = bounded(5, ge=1)
    kernel: int = bounded(5, ge=1)
    """Odd, so that every convolution keeps the frame count."""
    first_stride: int = bounded(1, ge=1)
    """Stride of the first conv layer (2 halves the frame rate to 20 ms: faster, coarser)."""
    dropout: float = bounded(0.5, ge=0, lt=1)
    weight_norm: bool = True
    impl: str = "auto"
    """TD-filterbank implementation: auto (band for fixed filters, else fft), fft, direct, band."""

    def check(self) -> None:
        if self.kernel % 2 == 0:
            raise ValueError(f"model.kernel={self.kernel} must be odd (the convolutions keep "
                             "the frame count)")
        _check_frontend(self.frontend, "model.frontend")
        if self.impl not in IMPLS:
            raise ValueError(f"model.impl={self.impl!r} is not one of {', '.join(IMPLS)}")
        _check_impl(self.impl, self.frontend, "model.frontend")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lr: float = bounded(3e-4, gt=0)
    frontend_lr: float = bounded(3e-4, gt=0)
    """Learning rate of the front end's parameters (learn modes)."""
    weight_decay: float = bounded(0.0, ge=0)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=60, batch_size=16, seed=0, log_every=50, checkpoint_every=500, grad_clip=5.0))
    experiment: list[str] = field(default_factory=lambda: list(FRONTENDS))
    """Front ends the ``experiment`` command compares."""
    seeds: int = bounded(3, ge=1)
    """Training seeds per front end in ``experiment`` (``train.seed``, +1, ...): mean ± std."""
    frontend_lr_grid: list[float] = bounded([], gt=0)
    """Front-end learning rates tried besides ``frontend_lr`` by ``experiment`` for each learned
    front end, on the first seed; the one of lowest dev PER is used for the other seeds."""

    def check(self) -> None:
        if not self.experiment:
            raise ValueError("experiment=[] names no front end to compare")
        for name in self.experiment:
            _check_frontend(name, "experiment")
            _check_impl(self.model.impl, name, "experiment")
        if len(set(self.experiment)) < len(self.experiment):
            raise ValueError(f"experiment={self.experiment} names a front end twice")


def _check_frontend(name: str, key: str) -> None:
    if name not in FRONTENDS:
        raise ValueError(f"{key}: unknown front end {name!r} (choose from {', '.join(FRONTENDS)})")


def _check_impl(impl: str, name: str, key: str) -> None:
    if impl == "band" and name.startswith("tdfb-") and name != "tdfb-fixed":
        raise ValueError(f"model.impl=band needs fixed filters, not {key} {name} (use auto)")


PRESETS: dict[str, dict] = {
    "paper": {},
    "quick": {"data": {"train_hours": 0.5, "max_seconds": 6.0, "dev_hours": 0.15},
              "model": {"channels": 256, "layers": 4, "first_stride": 2, "dropout": 0.1},
              "lr": 2e-3, "frontend_lr": 5e-4, "frontend_lr_grid": [2e-3],
              "train": {"epochs": 4, "batch_size": 8, "log_every": 10,
                        "checkpoint_every": 100},
              "experiment": list(FRONTENDS)},
    "long": {"data": {"train_hours": 0.5, "max_seconds": 6.0, "dev_hours": 0.15},
             "model": {"channels": 256, "layers": 4, "first_stride": 2, "dropout": 0.1},
             "lr": 2e-3, "frontend_lr": 5e-4, "frontend_lr_grid": [],
             "train": {"epochs": 30, "patience": 5, "batch_size": 8, "log_every": 10,
                       "checkpoint_every": 100},
             "experiment": ["mfsc", "tdfb-learn-all"], "seeds": 1},
    "demo": {"data": {"max_seconds": 6.0},
             "model": {"channels": 256, "layers": 4, "first_stride": 2, "dropout": 0.1},
             "lr": 2e-3, "frontend_lr": 5e-4,
             "train": {"epochs": 8, "batch_size": 8, "log_every": 10, "checkpoint_every": 0},
             "experiment": ["mfsc", "tdfb-learn-all"], "seeds": 1},
    "tiny": {"data": {"max_seconds": 4.0},
             "model": {"channels": 32, "layers": 2, "first_stride": 2, "dropout": 0.0},
             "lr": 3e-3, "frontend_lr": 3e-3,
             "train": {"epochs": 2, "batch_size": 4, "log_every": 2, "checkpoint_every": 0},
             "experiment": ["mfsc", "tdfb-fixed"], "seeds": 1},
}
