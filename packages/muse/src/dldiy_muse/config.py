"""Configs and presets: ``paper`` (the paper's refinement settings), ``quick`` (minutes here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DataConfig:
    pair: Literal["en-fr"] = "en-fr"
    max_src: int = 200_000
    """Source (English) words kept, most frequent first."""
    max_tgt: int = 20_000
    normalize: str = "unit,center,unit"


@dataclass
class RefineConfig:
    iterations: int = 5
    mode: Literal["S2T", "T2S", "union", "intersection"] = "union"
    max_rank: int = 15_000
    """Induce dictionaries among this many most frequent words on each side."""
    threshold: float | None = None


@dataclass
class UnsupervisedConfig:
    """The similarity-distribution seed and stochastic self-learning (``init=similarity``)."""

    size: int = 4000
    """Words whose similarity profiles seed the dictionary."""
    vocab: int = 20_000
    keep: float = 0.1
    """Initial probability of keeping a similarity entry in stochastic induction."""
    patience: int = 10
    """Iterations without progress before ``keep`` doubles."""
    max_iter: int = 300


@dataclass
class MuseConfig:
    data: DataConfig = field(default_factory=DataConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    unsupervised: UnsupervisedConfig = field(default_factory=UnsupervisedConfig)
    mode: Literal["supervised", "identical", "unsupervised"] = "supervised"
    """Seed of the map: Procrustes on the training dictionary, on identical strings, or no
    dictionary at all (``init``)."""
    init: Literal["similarity"] = "similarity"
    seed: int = 0


PRESETS: dict[str, dict] = {
    "paper": {},
    "quick": {"data": {"max_src": 50_000}, "refine": {"iterations": 3}},
}
