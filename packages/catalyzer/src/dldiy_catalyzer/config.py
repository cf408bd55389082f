"""Configs and presets: ``paper`` (the paper's settings, section 5), ``quick`` (minutes here).

Every numeric setting declares its range (``bounded``) and each section checks the rules that
tie settings together (``check()``), so no out-of-range setting starts a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dldiy_core import TrainConfig, bounded

from .lattice import lattice_problem, quantizer_problem


@dataclass
class DataConfig:
    source: str = "glove50"
    """glove50, fashion-mnist, a .fvecs/.bvecs file (database, training set and queries drawn
    from it), or an ann-benchmarks .hdf5 file (train/test/neighbors/distances)."""
    base: str = ""
    """BigANN / Deep1M official files: the database (.fvecs/.bvecs). Setting ``base``,
    ``learn`` and ``query`` (and optionally ``gt``) replaces ``source``."""
    learn: str = ""
    """The official training set (.fvecs/.bvecs); its first ``n_train`` rows are trained on."""
    query: str = ""
    """The official queries (.fvecs/.bvecs); the first ``n_query`` are searched."""
    gt: str = ""
    """The official ground truth (.ivecs, one row of database ids per query); empty: computed
    exactly over the database."""
    n_base: int = bounded(290_000, ge=0)
    """Database size; 0: every row of a file database (``base`` or an .hdf5 source)."""
    n_train: int = bounded(100_000, ge=2)
    n_query: int = bounded(10_000, ge=1)
    seed: int = bounded(0, ge=0)

    @property
    def official(self) -> bool:
        """The four-file BigANN / Deep1M layout (``base``, ``learn``, ``query``, ``gt``)."""
        return bool(self.base or self.learn or self.query or self.gt)

    def check(self) -> None:
        if not self.source:
            raise ValueError("source is empty (glove50, fashion-mnist, a .fvecs/.bvecs or an "
                             ".hdf5 file)")
        if self.official:
            missing = [k for k in ("base", "learn", "query") if not getattr(self, k)]
            if missing:
                raise ValueError(f"{missing[0]} is empty: the official files need data.base, "
                                 "data.learn and data.query (data.gt optional)")
            for key in ("base", "learn", "query"):
                if Path(getattr(self, key)).suffix not in (".fvecs", ".bvecs"):
                    raise ValueError(f"{key}={getattr(self, key)}: expected a .fvecs or "
                                     ".bvecs file")
            if self.gt and Path(self.gt).suffix != ".ivecs":
                raise ValueError(f"gt={self.gt}: expected an .ivecs file of database ids")
        elif self.n_base == 0 and Path(self.source).suffix not in (".hdf5", ".h5"):
            raise ValueError("n_base=0 (every row) is for a file database: data.base or an "
                             ".hdf5 source")


@dataclass
class ModelConfig:
    hidden: int = bounded(1024, ge=1)
    d_out: int = bounded(24, ge=1)
    """Zn lattice: 24 (the paper), or any d >= 14 (the radius is chosen per bit budget); binary
    codes: the number of bits."""


@dataclass
class LossConfig:
    lambda_koleo: float = bounded(0.05, ge=0)
    rank_positive: int = bounded(10, ge=1)
    """Positives are drawn from this many true input-space neighbours."""
    rank_negative: int = bounded(50, ge=1)
    """The negative is this-ranked neighbour in the current output space."""
    margin: float = bounded(0.0, ge=0)
    quantizer: str = ""
    """Train end to end through a quantizer (section 5.3): "" off, "zn79" (Zn sphere with
    r2=79; any r2), or "sign" (binary codes). Positives, negatives and mining see codes."""


@dataclass
class CatalyzerConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    codes: Literal["lattice", "binary"] = "lattice"
    lr_schedule: list[float] = bounded([0.1, 0.1, 0.05, 0.01], gt=0)
    """Learning rates for equal parts of the epochs."""
    momentum: float = bounded(0.9, ge=0, lt=1)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=160, batch_size=64, seed=1234, log_every=100, checkpoint_every=2000,
        drop_last=True))

    def check(self) -> None:
        if not self.lr_schedule:
            raise ValueError("lr_schedule is empty (give at least one learning rate)")
        check_training_size(self, self.data.n_train)
        d_out = self.model.d_out
        if self.codes == "lattice":  # eval and the index code at 16, 32 and 64 bits
            why = lattice_problem(d_out)
            if why:
                raise ValueError(f"model.d_out={d_out} with codes=lattice: {why}")
        elif d_out % 8:
            raise ValueError(f"model.d_out={d_out} with codes=binary: the number of bits must "
                             "be a multiple of 8")
        why = quantizer_problem(self.loss.quantizer, d_out)
        if why:
            raise ValueError(f"loss.quantizer={self.loss.quantizer!r}: {why}")


def check_training_size(cfg: CatalyzerConfig, n_train: int, what: str = "data.n_train") -> None:
    """The rules that tie settings to the training set size ``n_train`` (raises ValueError)."""
    rp, rn, batch = cfg.loss.rank_positive, cfg.loss.rank_negative, cfg.train.batch_size
    if rp >= n_train:
        raise ValueError(f"loss.rank_positive={rp} needs more training vectors ({what}="
                         f"{n_train}: at most {n_train - 1} other points)")
    if rn >= n_train:
        raise ValueError(f"loss.rank_negative={rn} needs more training vectors ({what}="
                         f"{n_train}: at most {n_train - 1} other points)")
    if batch < 2:
        raise ValueError(f"train.batch_size={batch}: KoLeo needs at least 2 samples a batch")
    if batch > n_train:
        raise ValueError(f"train.batch_size={batch} is larger than the training set ({what}="
                         f"{n_train}): no full batch to train on")


PRESETS: dict[str, dict] = {
    "paper": {},
    "quick": {"data": {"n_base": 100_000, "n_train": 50_000, "n_query": 2_000},
              "train": {"epochs": 8, "batch_size": 128, "log_every": 50,
                        "checkpoint_every": 500}},
    "tiny": {"data": {"n_base": 2_000, "n_train": 2_000, "n_query": 200},
             "model": {"hidden": 64},
             "train": {"epochs": 4, "batch_size": 64, "log_every": 10, "checkpoint_every": 0}},
}
