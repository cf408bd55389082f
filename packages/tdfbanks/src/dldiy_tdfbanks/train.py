"""CTC training of a recognizer on a TIMIT-layout corpus, with the core Trainer (checkpoints,
exact resume, DDP under torchrun)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from dldiy_core import Trainer, UserError, rank, seed_everything, to_dict, world_size

from .config import FRONTENDS, Config
from .data import BucketBatches, SpeechSet, default_corpus, load_split
from .filterbank import IMPLS
from .models import Recognizer, make_frontend

log = logging.getLogger(__name__)


def corpus_path(cfg: Config, build: bool = True) -> Path:
    """The configured corpus, or the built one (built now if missing and ``build``, in a
    single process: under torchrun every process would write the same folder)."""
    if cfg.data.corpus:
        return Path(cfg.data.corpus)
    path = default_corpus()
    if not (path / "corpus.json").exists():
        if not build or world_size() > 1:
            raise UserError(f"{path}: no corpus yet; build it first with "
                            "'dldiy-tdfbanks data build'")
        from .corpus import CorpusConfig, build_corpus

        log.info("no corpus at %s yet: building it (dldiy-tdfbanks data build)", path)
        build_corpus(path, CorpusConfig())
    return path


def check_config(cfg: Config) -> None:
    """Settings that would otherwise fail late (after hours of training)."""
    if not cfg.model.input_gain > 0:
        raise UserError(f"model.input_gain must be positive, not {cfg.model.input_gain}")
    if cfg.model.impl not in IMPLS:
        raise UserError(f"model.impl must be one of {', '.join(IMPLS)}, not {cfg.model.impl!r}")
    for name in [cfg.model.frontend, *cfg.experiment]:
        if name not in FRONTENDS:
            raise UserError(f"unknown front end {name!r} (choose from {', '.join(FRONTENDS)})")
        if cfg.model.impl == "band" and name.startswith("tdfb-") and name != "tdfb-fixed":
            raise UserError(f"model.impl=band needs fixed filters, not {name} (use auto)")


def build_model(cfg: Config) -> Recognizer:
    m = cfg.model
    frontend = make_frontend(m.frontend, m.preemphasis, m.impl, m.input_gain)
    return Recognizer(frontend, m.channels, m.layers, m.kernel, m.first_stride, m.dropout,
                      norm=m.weight_norm)


def ctc_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    """CTC loss per target phone, averaged over utterances (so that N DDP processes, each
    averaging its equal share, give the single-process gradient)."""
    waves, lengths, targets, target_lengths = batch
    log_probs, frames = model(waves, lengths)
    return F.ctc_loss(log_probs.transpose(0, 1), targets, frames, target_lengths,
                      reduction="mean", zero_infinity=True)


def train(cfg: Config, out: str | Path | None, resume: bool = False,
          data: SpeechSet | None = None) -> Trainer:
    """Train ``cfg.model`` on the train split; returns the trainer (model in ``.model``)."""
    check_config(cfg)
    seed_everything(cfg.train.seed)
    if data is None:
        d = cfg.data
        data = load_split(corpus_path(cfg), "train", d.max_seconds, d.train_hours, d.resample)
    model = build_model(cfg)
    front = [p for p in model.frontend.parameters() if p.requires_grad]
    rest = [*model.blocks.parameters(), *model.head.parameters()]
    groups = [{"params": rest, "lr": cfg.lr}]
    if front:
        groups.append({"params": front, "lr": cfg.frontend_lr})
    opt = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
    t = cfg.train
    source = BucketBatches(data, t.batch_size, seed=t.seed, drop_last=t.drop_last, rank=rank(),
                           world=world_size())
    trainer = Trainer(model, opt, ctc_loss, t, out, run_config=to_dict(cfg))
    log.info("training %s on %d utterances (%.2f h)", cfg.model.frontend, len(data),
             data.seconds() / 3600)
    trainer.fit(source, resume=resume)
    return trainer
