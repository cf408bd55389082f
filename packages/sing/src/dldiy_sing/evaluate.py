"""Scores of a trained run: the spectral loss (eq. 2) of SING's generations on train, valid and
test notes (valid/test: instrument-pitch pairs never seen in training), against

- the autoencoder's reconstruction (stage 1; it sees the target, so it bounds what the decoder
  can do), and
- a nearest-neighbour baseline: the same instrument's training note at the same velocity and
  the nearest other pitch, pitch-shifted to the target pitch by resampling, and
- silence (an all-zero output): the floor any useful model must beat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dldiy_core import CheckpointError, UserError, from_dict, load_checkpoint, load_module_state

from .config import SingConfig
from .models import NOTE_SAMPLES, SING, Autoencoder
from .nsynth import NSynth, notes_dataset
from .render import build_corpus
from .spectral import spectral_loss
from .train import CHECKPOINT, batched

log = logging.getLogger(__name__)


@dataclass
class Run:
    folder: Path
    cfg: SingConfig
    instruments: list[str]
    velocities: list[int]
    sing: SING
    autoencoder: Autoencoder | None


def _weights(path: Path) -> tuple[dict, dict]:
    ck = load_checkpoint(path)
    try:
        return ck["model"], ck["config"]
    except KeyError:
        raise CheckpointError(f"{path}: not a SING run checkpoint") from None


def load_run(folder: str | Path, best: bool = True) -> Run:
    """The config, corpus vocabulary and trained models of a ``train`` run folder (the best
    validation weights of the end-to-end stage when kept, else its last weights)."""
    folder = Path(folder)
    stage = folder / "sing"
    path = stage / "best.safetensors" if best and (stage / "best.safetensors").is_file() \
        else stage / CHECKPOINT
    if not path.is_file():
        raise UserError(f"{folder}: no trained SING model ({path.relative_to(folder)} missing; "
                        "run all stages with 'dldiy-sing train')")
    state, raw = _weights(path)
    try:
        corpus = raw["corpus"]
        cfg = from_dict(SingConfig, {k: v for k, v in raw.items() if k != "corpus"})
        instruments, velocities = list(corpus["instruments"]), list(corpus["velocities"])
    except (KeyError, TypeError, UserError) as e:
        raise CheckpointError(f"{path}: not a SING run checkpoint ({e})") from None
    sing = SING(cfg.model, len(instruments), len(velocities))
    load_module_state(sing, state, path)
    ae = None
    ae_path = folder / "ae" / CHECKPOINT
    if ae_path.is_file():
        ae = Autoencoder(cfg.model)
        load_module_state(ae, _weights(ae_path)[0], ae_path)
        ae.eval()
    return Run(folder, cfg, instruments, velocities, sing.eval(), ae)


def pitch_shift(wav: np.ndarray, semitones: float) -> np.ndarray:
    """Resample ``wav [T]`` so its pitch moves by ``semitones`` (duration scales by the inverse
    ratio; cut or zero padded to the same length)."""
    ratio = 2.0 ** (semitones / 12.0)
    t = np.arange(len(wav)) * ratio
    return np.interp(t, np.arange(len(wav)), wav, right=0.0).astype(np.float32)


def nearest_neighbour(corpus: NSynth, train: np.ndarray, index: np.ndarray,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """For each note of ``index``: the training note (same instrument and velocity, nearest other
    pitch; -1 if none) and the semitones to shift it by."""
    by_key: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i in train:
        n = corpus.notes[i]
        by_key.setdefault((n.instrument, n.velocity), []).append((n.pitch, int(i)))
    src, shift = np.full(len(index), -1), np.zeros(len(index))
    for k, i in enumerate(index):
        n = corpus.notes[i]
        cands = [(abs(p - n.pitch), p, j) for p, j in by_key.get((n.instrument, n.velocity), [])
                 if p != n.pitch]
        if cands:
            _, p, j = min(cands)
            src[k], shift[k] = j, n.pitch - p
    return src, shift


def score_split(run: Run, corpus: NSynth, train: np.ndarray, index: np.ndarray,
                batch_size: int = 16) -> dict[str, float]:
    """Mean spectral loss per note of SING, the autoencoder and the baseline on ``index``."""
    lc = run.cfg.loss
    src, shift = nearest_neighbour(corpus, train, index)
    cache: dict[int, np.ndarray] = {}
    sums = {"sing": 0.0, "autoencoder": 0.0, "nearest_neighbour": 0.0, "silence": 0.0}
    n_nn = 0
    offset = 0
    with torch.no_grad():
        for inst, pitch, vel, wav in batched(notes_dataset(corpus, index), batch_size):
            b = len(wav)

            def loss(out: torch.Tensor, target: torch.Tensor = wav) -> torch.Tensor:
                return spectral_loss(out, target, lc.n_fft, lc.hop, lc.epsilon, reduce=False)

            sums["sing"] += float(loss(run.sing(inst, pitch, vel)).sum())
            sums["silence"] += float(loss(torch.zeros_like(wav)).sum())
            if run.autoencoder is not None:
                sums["autoencoder"] += float(loss(run.autoencoder(wav)).sum())
            ok = src[offset:offset + b] >= 0
            if ok.any():
                base = np.zeros((b, NOTE_SAMPLES), np.float32)
                for r in np.flatnonzero(ok):
                    j = int(src[offset + r])
                    if j not in cache:
                        cache[j] = corpus.audio(j)
                    base[r] = pitch_shift(cache[j], shift[offset + r])
                per_note = loss(torch.from_numpy(base))
                sums["nearest_neighbour"] += float(per_note[torch.from_numpy(ok)].sum())
                n_nn += int(ok.sum())
            offset += b
    out = {"notes": len(index), "sing": sums["sing"] / max(len(index), 1)}
    if run.autoencoder is not None:
        out["autoencoder"] = sums["autoencoder"] / max(len(index), 1)
    out["nearest_neighbour"] = sums["nearest_neighbour"] / max(n_nn, 1)
    out["nearest_neighbour_notes"] = n_nn
    out["silence"] = sums["silence"] / max(len(index), 1)
    return out


def evaluate_run(folder: str | Path, splits: str = "train,valid,test", limit: int = 0
                 ) -> dict:
    """Scores of one run on its own corpus and split (``limit``: at most that many notes per
    split, a fixed random subset)."""
    run = load_run(folder)
    corpus = NSynth(build_corpus(run.cfg.data))
    if corpus.instruments != run.instruments:
        raise UserError(f"{corpus.folder}: not the corpus {folder} was trained on (other "
                        "instruments)")
    d = run.cfg.data
    split = corpus.split(d.split_seed, d.valid_ratio, d.test_ratio)
    names = [s.strip() for s in splits.split(",") if s.strip()]
    bad = [s for s in names if s not in split]
    if bad or not names:
        raise UserError(f"--splits {splits}: choose among train, valid, test")
    result: dict = {"run": str(folder), "corpus": str(corpus.folder),
                    "instruments": len(corpus.instruments)}
    for name in names:
        index = split[name]
        if limit and len(index) > limit:
            index = np.sort(np.random.default_rng(0).permutation(index)[:limit])
        log.info("scoring %s (%d notes)", name, len(index))
        result[name] = score_split(run, corpus, split["train"], index)
    return result


def evaluate_runs(folders: list[str], splits: str = "train,valid,test", limit: int = 0) -> dict:
    """:func:`evaluate_run` of each run (e.g. one per seed); with several, the mean and the
    standard deviation over runs of every figure too."""
    runs = [evaluate_run(f, splits, limit) for f in folders]
    if len(runs) == 1:
        return runs[0]
    out: dict = {"runs": runs}
    for name in [s for s in runs[0] if isinstance(runs[0][s], dict)]:
        out[name] = {}
        for key in runs[0][name]:
            values = np.array([r[name][key] for r in runs], dtype=float)
            out[name][key] = float(values.mean())
            out[name][f"{key}_std"] = float(values.std(ddof=1))
    return out
