"""The three-stage schedule of SING (paper section 3.3), each stage a core Trainer run in its
own folder under the run (``ae/``, ``seq/``, ``sing/``), each resumable:

1. ``ae``: the convolutional autoencoder on waveforms, spectral loss: pretrains the decoder.
2. ``seq``: the LSTM regresses the (frozen) encoder's embeddings ``[B, 128, 265]`` (MSE), with
   truncated backpropagation: one optimizer step per ``truncated`` steps, the LSTM state carried
   (detached) from one chunk to the next, as the released code did.
3. ``sing``: LSTM + decoder fine-tuned end to end on the spectral loss of the waveform.

Adam with lr 3e-4 in every stage.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from dldiy_core import (
    CheckpointError,
    DatasetBatches,
    Trainer,
    UserError,
    load_checkpoint,
    load_module_state,
    rank,
    seed_everything,
    to_dict,
    world_size,
)

from .config import SingConfig
from .models import SING, Autoencoder, SequenceGenerator, num_steps
from .nsynth import NSynth, notes_dataset
from .render import build_corpus
from .spectral import note_loss, spectral_loss

log = logging.getLogger(__name__)
STAGES = ("ae", "seq", "sing")
CHECKPOINT = "checkpoint.safetensors"


@dataclasses.dataclass
class Data:
    corpus: NSynth
    split: dict[str, np.ndarray]

    def dataset(self, name: str, limit: int = 0) -> Dataset:
        index = self.split[name]
        if limit:
            index = index[np.random.default_rng(0).permutation(len(index))[:limit]]
        return notes_dataset(self.corpus, np.sort(index))


def load_data(cfg: SingConfig) -> Data:
    corpus = NSynth(build_corpus(cfg.data))
    split = corpus.split(cfg.data.split_seed, cfg.data.valid_ratio, cfg.data.test_ratio)
    log.info("%s: %d notes, %d instruments; train %d, valid %d, test %d", corpus.folder,
             len(corpus), len(corpus.instruments), *(len(split[k]) for k in split))
    return Data(corpus, split)


def run_config(cfg: SingConfig, corpus: NSynth) -> dict[str, Any]:
    """What a run folder records: the config and the corpus vocabulary (for ``generate``)."""
    return {**to_dict(cfg), "corpus": {"instruments": corpus.instruments,
                                       "velocities": corpus.velocities}}


def stage_epochs(cfg: SingConfig, stage: str) -> int:
    return {"ae": cfg.stages.ae_epochs, "seq": cfg.stages.seq_epochs,
            "sing": cfg.stages.sing_epochs}[stage]


def stage_config(cfg: SingConfig, stage: str):
    """The train section of ``stage`` (its epochs; call only when it trains at all)."""
    epochs = stage_epochs(cfg, stage)
    # train.max_steps > 0 caps every stage (a short trial, or a stage stopped and resumed)
    return dataclasses.replace(cfg.train, epochs=epochs)


def _batch(batch):
    inst, pitch, vel, wav = batch
    return inst, pitch, vel, wav


def validation(score, notes: Dataset):
    """A core Trainer ``valid`` callable: ``{"loss": score(model)}`` on held-out notes (the
    spectral loss of eq. 2 whatever the stage trains on, so stages compare), in eval mode."""

    if len(notes) == 0:  # type: ignore[arg-type]
        return None

    def valid(trainer: Trainer) -> dict[str, float]:
        model = trainer.model
        was = model.training
        model.eval()
        with torch.no_grad():
            loss = score(model)
        model.train(was)
        log.info("%s step %d: valid spectral loss %.4f",
                 trainer.out_dir.name if trainer.out_dir else "", trainer.state.step, loss)
        return {"loss": loss}
    return valid


def batched(dataset: Dataset, batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """Ordered batches of a notes dataset (evaluation)."""
    source = DatasetBatches(dataset, batch_size, shuffle=False)
    yield from source.batches(0, 0)


def spectral_score(generate, dataset: Dataset, cfg: SingConfig, batch_size: int = 16) -> float:
    """Mean spectral loss (eq. 2) of ``generate(inst, pitch, vel, wav) -> wav`` over notes."""
    total, n = 0.0, 0
    lc = cfg.loss
    for inst, pitch, vel, wav in batched(dataset, batch_size):
        out = generate(inst, pitch, vel, wav)
        total += float(spectral_loss(out, wav, lc.n_fft, lc.hop, lc.epsilon, reduce=False).sum())
        n += len(wav)
    return total / max(n, 1)


# ---- stage 1: autoencoder ---------------------------------------------------------------------
def train_autoencoder(cfg: SingConfig, run: Path, data: Data, resume: bool) -> Autoencoder:
    seed_everything(cfg.train.seed)
    model = Autoencoder(cfg.model)

    def loss_fn(m: nn.Module, batch):
        *_, wav = _batch(batch)
        return note_loss(m(wav), wav, cfg.loss)

    valid = data.dataset("valid", cfg.stages.eval_notes)
    score = validation(lambda m: spectral_score(lambda i, p, v, w: m(w), valid, cfg), valid)
    _fit(cfg, run, "ae", model, loss_fn, data.dataset("train"), score, data, resume)
    return model


# ---- stage 2: LSTM regression with truncated backprop -----------------------------------------
class EmbeddedNotes(Dataset):
    """``(instrument, pitch, velocity, embeddings [D, steps])`` from a ``.npy`` (memory-mapped)."""

    def __init__(self, labels: tuple[torch.Tensor, ...], path: Path):
        self.labels = labels
        self.emb = np.load(path, mmap_mode="r")

    def __len__(self) -> int:
        return len(self.labels[0])

    def __getitem__(self, i: int):
        return (*(x[i] for x in self.labels), torch.from_numpy(np.array(self.emb[i])))

    def get_batch(self, idx):
        idx = np.sort(np.asarray(idx))
        t = torch.as_tensor(idx)
        return (*(x[t] for x in self.labels), torch.from_numpy(np.ascontiguousarray(
            self.emb[idx])))


def encode_dataset(encoder: nn.Module, dataset: Dataset, path: Path, batch_size: int) -> Path:
    """The encoder's embeddings of every note, ``[N, D, steps]`` float32, saved to ``path``
    (written under a temporary name, then renamed; reused when present)."""
    if path.exists():
        return path
    encoder.eval()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
    out = None
    with torch.no_grad():
        i = 0
        for *_, wav in batched(dataset, batch_size):
            z = encoder(wav).numpy()
            if out is None:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                shape=(len(dataset), *z.shape[1:]))
            out[i:i + len(z)] = z
            i += len(z)
    out.flush()
    del out
    os.replace(tmp, path)
    return path


class Chunks:
    """A core BatchSource: every batch of ``inner`` repeated once per truncated chunk, as
    ``(batch, chunk index)``; the position inside a sequence is part of the resume state.
    Under ``torchrun`` each process gets its own share of every batch (``inner`` is sharded),
    and keeps the LSTM state of that share from chunk to chunk."""

    def __init__(self, inner: DatasetBatches, n_chunks: int):
        self.inner, self.n_chunks = inner, n_chunks

    def num_batches(self, epoch: int) -> int:
        return self.inner.num_batches(epoch) * self.n_chunks

    def batches(self, epoch: int, start: int):
        first, chunk = divmod(start, self.n_chunks)
        for batch in self.inner.batches(epoch, first):
            for c in range(chunk, self.n_chunks):
                yield batch, c
            chunk = 0


def sequence_batches(notes: EmbeddedNotes, batch_size: int, n_chunks: int, *, seed: int,
                     shuffle: bool = True, drop_last: bool = False) -> Chunks:
    """The LSTM stage's batches, each repeated for its ``n_chunks`` truncated chunks; this
    process's share of every batch under ``torchrun``."""
    return Chunks(DatasetBatches(notes, batch_size, seed=seed, shuffle=shuffle,
                                 drop_last=drop_last, rank=rank(), world=world_size()), n_chunks)


class Carry:
    """The LSTM state between chunks of one sequence (checkpointed with the run)."""

    def __init__(self):
        self.hidden: tuple[torch.Tensor, torch.Tensor] | None = None

    def state_dict(self) -> dict:
        return {"hidden": list(self.hidden) if self.hidden is not None else None}

    def load_state_dict(self, state: dict) -> None:
        h = state["hidden"]
        self.hidden = (h[0], h[1]) if h is not None else None


def train_sequence(cfg: SingConfig, run: Path, data: Data, ae: Autoencoder,
                   resume: bool) -> SequenceGenerator:
    seed_everything(cfg.train.seed)
    steps = num_steps(cfg.model)
    model = SequenceGenerator(cfg.model, len(data.corpus.instruments),
                              len(data.corpus.velocities), steps)
    folder = run / "seq"
    folder.mkdir(parents=True, exist_ok=True)
    train_index = np.sort(data.split["train"])
    emb = encode_dataset(ae.encoder, notes_dataset(data.corpus, train_index),
                         folder / "embeddings.npy", cfg.train.batch_size)
    dataset = EmbeddedNotes(data.corpus.labels(train_index), emb)
    t = cfg.stages.truncated or steps
    n_chunks = -(-steps // t)
    carry = Carry()

    def loss_fn(m: nn.Module, item):
        (inst, pitch, vel, target), c = item
        start = c * t
        length = min(t, steps - start)
        hidden = carry.hidden if c > 0 else None
        out, hidden = m(inst, pitch, vel, start=start, length=length, hidden=hidden)
        carry.hidden = (hidden[0].detach(), hidden[1].detach())
        return F.mse_loss(out, target[..., start:start + length])

    tc = cfg.train
    source = sequence_batches(dataset, tc.batch_size, n_chunks, seed=tc.seed, shuffle=tc.shuffle,
                              drop_last=tc.drop_last)
    valid = data.dataset("valid", cfg.stages.eval_notes)
    decoder = ae.decoder.eval()

    score = validation(lambda m: spectral_score(lambda i, p, v, w: decoder(m(i, p, v)[0]),
                                                valid, cfg), valid)
    _fit(cfg, run, "seq", model, loss_fn, source, score, data, resume,
         stateful={"carry": carry})
    return model


# ---- stage 3: end-to-end fine tuning ----------------------------------------------------------
def train_sing(cfg: SingConfig, run: Path, data: Data, ae: Autoencoder,
               seq: SequenceGenerator, resume: bool) -> SING:
    seed_everything(cfg.train.seed)
    model = SING(cfg.model, len(data.corpus.instruments), len(data.corpus.velocities))
    model.generator.load_state_dict(seq.state_dict())
    model.decoder.load_state_dict(ae.decoder.state_dict())

    def loss_fn(m: nn.Module, batch):
        inst, pitch, vel, wav = _batch(batch)
        return note_loss(m(inst, pitch, vel), wav, cfg.loss)

    valid = data.dataset("valid", cfg.stages.eval_notes)
    score = validation(lambda m: spectral_score(lambda i, p, v, w: m(i, p, v), valid, cfg), valid)
    _fit(cfg, run, "sing", model, loss_fn, data.dataset("train"), score, data, resume)
    return model


# ---- plumbing ---------------------------------------------------------------------------------
def _fit(cfg: SingConfig, run: Path, stage: str, model: nn.Module, loss_fn, source, valid,
         data: Data, resume: bool, stateful=None) -> Trainer | None:
    if stage_epochs(cfg, stage) == 0:
        log.info("stage %s: 0 epochs, skipped", stage)
        return None
    tc = stage_config(cfg, stage)
    folder = run / stage
    opt = torch.optim.Adam(model.parameters(), lr=cfg.stages.lr)
    trainer = Trainer(model, opt, loss_fn, tc, folder,
                      run_config=run_config(cfg, data.corpus), stateful=stateful,
                      # --resume may extend a stage by more epochs, as it may train.epochs
                      resumable={f"stages.{s}_epochs" for s in STAGES})
    has_run = (folder / CHECKPOINT).exists()
    log.info("stage %s: %s", stage, "resuming" if resume and has_run else "training")
    trainer.fit(source, valid=valid, resume=resume and has_run)
    return trainer


def stage_weights(run: str | Path, stage: str) -> tuple[dict, dict]:
    """(model state, run config) of a finished or interrupted stage of ``run``."""
    path = Path(run) / stage / CHECKPOINT
    ck = load_checkpoint(path)
    try:
        return ck["model"], ck["config"]
    except KeyError:
        raise CheckpointError(f"{path}: not a SING stage checkpoint") from None


def load_into(model: nn.Module, run: str | Path, stage: str, prefix: str = "") -> nn.Module:
    state, _ = stage_weights(run, stage)
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    load_module_state(model, state, Path(run) / stage / CHECKPOINT)
    return model


def train(cfg: SingConfig, run: str | Path, stage: str = "all", resume: bool = False,
          data: Data | None = None) -> SING | nn.Module:
    """Run ``stage`` (or all three in order) in the run folder ``run``; returns the model of the
    last stage run."""
    run = Path(run)
    if stage not in (*STAGES, "all"):
        raise UserError(f"--stage {stage}: expected one of all, {', '.join(STAGES)}")
    todo = STAGES if stage == "all" else (stage,)
    if not resume:
        held = [s for s in todo if (run / s / CHECKPOINT).exists()]
        if held:
            raise UserError(f"{run / held[0]}: already holds a run ({CHECKPOINT}); use --resume "
                            "or another run folder")
    data = data or load_data(cfg)
    ae = seq = model = None
    for s in STAGES:
        if s == "ae":
            ae = train_autoencoder(cfg, run, data, resume) if s in todo else load_into(
                Autoencoder(cfg.model), run, "ae")
            model = ae
        elif s == "seq" and ("seq" in todo or "sing" in todo):
            seq = (train_sequence(cfg, run, data, ae, resume) if s in todo else load_into(
                SequenceGenerator(cfg.model, len(data.corpus.instruments),
                                  len(data.corpus.velocities)), run, "seq"))
            model = seq
        elif s == "sing" and s in todo:
            model = train_sing(cfg, run, data, ae, seq, resume)
        if s == todo[-1]:
            break
    return model
