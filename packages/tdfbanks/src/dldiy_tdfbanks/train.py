"""CTC training of a recognizer on a TIMIT-layout corpus, with the core Trainer (checkpoints,
exact resume, DDP under torchrun)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from dldiy_core import (
    Trainer,
    UserError,
    check_outputs,
    rank,
    seed_everything,
    to_dict,
    world_size,
)
from dldiy_core import check_config as check_settings

from .config import Config
from .data import BucketBatches, SpeechSet, default_corpus, load_split
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
    """Every setting in range (:func:`dldiy_core.check_config`: bounds and the sections'
    ``check()``), for a config built in Python; one :class:`UserError` line naming the key."""
    check_settings(cfg)


def check_alignable(model: Recognizer, data: SpeechSet, cfg: Config, what: str = "train",
                    max_share: float = 0.01) -> None:
    """CTC needs at least one output frame per phone (two between repeated phones); the loss of
    an utterance with fewer is infinite and zeroed, so it would be skipped without a word.
    More than ``max_share`` of such utterances is refused naming the settings; fewer are
    counted in a warning."""
    lengths = torch.tensor([len(w) for w in data.waves])
    frames = model.output_frames(model.frontend.frames(lengths))
    need = torch.tensor([len(lab) + int((lab[1:] == lab[:-1]).sum()) for lab in data.labels])
    bad = int((frames < need).sum())
    if not bad:
        return
    text = (f"{bad} of {len(data)} {what} utterances have fewer output frames than CTC needs "
            f"for their phones (model.first_stride={cfg.model.first_stride}, one frame every "
            f"{10 * cfg.model.first_stride} ms)")
    if bad > max_share * len(data):
        raise UserError(f"model.first_stride: {text}; lower model.first_stride")
    log.warning("%s: they are left out of the loss", text)


def build_model(cfg: Config) -> Recognizer:
    m = cfg.model
    frontend = make_frontend(m.frontend, m.preemphasis, m.impl, m.input_gain)
    return Recognizer(frontend, m.channels, m.layers, m.kernel, m.first_stride, m.dropout,
                      norm=m.weight_norm)


def ctc_frames_needed(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Output frames CTC needs for each target ``[B]`` (targets concatenated ``[sum L]``): one
    per phone plus a blank between two equal neighbours."""
    seg = torch.repeat_interleave(torch.arange(len(target_lengths)), target_lengths.cpu())
    same = (targets[1:] == targets[:-1]).cpu() & (seg[1:] == seg[:-1])
    repeats = torch.zeros(len(target_lengths), dtype=torch.long).index_add_(
        0, seg[1:][same], torch.ones(int(same.sum()), dtype=torch.long))
    return target_lengths.cpu() + repeats


class CTCLoss:
    """The Trainer's loss: CTC per target phone, averaged over utterances (so that N DDP
    processes, each averaging its equal share, give the single-process gradient).

    An utterance with fewer output frames than its phones need has an infinite loss, which
    ``zero_infinity`` zeroes: it is counted, in the logged figure ``ctc_dropped`` (utterances
    per step, averaged over the log window) and in :attr:`dropped` (this process's total, kept
    in the checkpoint so a resumed run goes on counting)."""

    def __init__(self) -> None:
        self.dropped = 0
        self.seen = 0

    def __call__(self, model: torch.nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        waves, lengths, targets, target_lengths = batch
        log_probs, frames = model(waves, lengths)
        dropped = int((frames.cpu() < ctc_frames_needed(targets, target_lengths)).sum())
        self.dropped += dropped
        self.seen += len(waves)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, frames, target_lengths,
                          reduction="mean", zero_infinity=True)
        return loss, {"ctc_dropped": float(dropped)}

    def state_dict(self) -> dict[str, int]:
        return {"dropped": self.dropped, "seen": self.seen}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.dropped, self.seen = int(state["dropped"]), int(state["seen"])


def ctc_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    """CTC loss per target phone, averaged over utterances (:class:`CTCLoss` without counting)."""
    return CTCLoss()(model, batch)[0]


def check_run_folder(out: str | Path | None, inputs: list[Path], resume: bool = False,
                     force: bool = False) -> None:
    """Refuse, before any work, a run folder that would replace an input or an existing run
    (unless ``resume`` / ``force``), and ``resume`` without a run there."""
    if out is None:
        return
    check_outputs([out], inputs, force=force, resume=resume)
    if resume and not (Path(out) / "checkpoint.safetensors").is_file():
        raise UserError(f"{out}: no run to resume there (no checkpoint.safetensors)")


def train(cfg: Config, out: str | Path | None, resume: bool = False,
          data: SpeechSet | None = None, force: bool = False,
          valid: SpeechSet | None = None) -> Trainer:
    """Train ``cfg.model`` on the train split; returns the trainer (model in ``.model``).

    ``out`` is refused before the data are read if it would replace an input or a run (unless
    ``resume``: continue it, or ``force``: replace it). With ``valid`` (the dev split), the
    phone error rate on it is measured at each epoch end (``valid_per``) and the weights of the
    best one are kept in ``best.safetensors`` (model selection on dev)."""
    check_config(cfg)
    if data is None:
        corpus = corpus_path(cfg, build=False) if cfg.data.corpus or \
            (default_corpus() / "corpus.json").exists() else None
        check_run_folder(out, [corpus] if corpus else [], resume, force)
        d = cfg.data
        data = load_split(corpus_path(cfg), "train", d.max_seconds, d.train_hours, d.resample)
    else:
        check_run_folder(out, [], resume, force)
    seed_everything(cfg.train.seed)
    model = build_model(cfg)
    check_alignable(model, data, cfg)
    front = [p for p in model.frontend.parameters() if p.requires_grad]
    rest = [*model.blocks.parameters(), *model.head.parameters()]
    groups = [{"params": rest, "lr": cfg.lr}]
    if front:
        groups.append({"params": front, "lr": cfg.frontend_lr})
    opt = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
    t = cfg.train
    source = BucketBatches(data, t.batch_size, seed=t.seed, drop_last=t.drop_last, rank=rank(),
                           world=world_size())
    loss = CTCLoss()
    score = None
    if valid is not None:
        from .evaluate import evaluate

        t = dataclasses.replace(t, monitor="valid_per", monitor_mode="min")

        def score(trainer: Trainer) -> dict[str, float]:
            return {"per": evaluate(trainer.model, valid)["per"]}

    trainer = Trainer(model, opt, loss, t, out, run_config=to_dict(cfg),
                      stateful={"ctc": loss})
    log.info("training %s on %d utterances (%.2f h)", cfg.model.frontend, len(data),
             data.seconds() / 3600)
    trainer.fit(source, valid=score, resume=resume, force=force)
    if loss.dropped:
        log.warning("%s: %d of %d training utterance passes had fewer output frames than CTC "
                    "needs; their loss was zeroed (zero_infinity)", out or "run", loss.dropped,
                    loss.seen)
    return trainer
