"""Scores of a trained run: the spectral loss (eq. 2) of SING's generations on train, valid and
test notes (valid/test: instrument-pitch pairs never seen in training), against

- the autoencoder's reconstruction (stage 1; it sees the target, so it bounds what the decoder
  can do), and
- a nearest-neighbour baseline: the same instrument's training note at the same velocity and
  the nearest other pitch, pitch-shifted to the target pitch by resampling, and
- silence (an all-zero output): the floor any useful model must beat.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dldiy_core import (
    CheckpointError,
    UserError,
    from_dict,
    load_checkpoint,
    load_module_state,
    save_checkpoint,
    to_dict,
)

from .config import SingConfig
from .models import NOTE_SAMPLES, SING, Autoencoder
from .nsynth import SAMPLE_RATE, NSynth, notes_dataset
from .render import build_corpus
from .spectral import log_power
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
    curves: dict | None = None
    """Training curves per stage, kept in an exported model file (:func:`export_model`)."""


def _weights(path: Path) -> tuple[dict, dict]:
    ck = load_checkpoint(path)
    try:
        return ck["model"], ck["config"]
    except KeyError:
        raise CheckpointError(f"{path}: not a SING run checkpoint") from None


def _parse_config(raw: dict, path: Path) -> tuple[SingConfig, list[str], list[int]]:
    try:
        corpus = raw["corpus"]
        cfg = from_dict(SingConfig, {k: v for k, v in raw.items() if k != "corpus"})
        return cfg, list(corpus["instruments"]), list(corpus["velocities"])
    except (KeyError, TypeError, UserError) as e:
        raise CheckpointError(f"{path}: not a SING run checkpoint ({e})") from None


def load_run(folder: str | Path, best: bool = True) -> Run:
    """The config, corpus vocabulary and trained models of a ``train`` run folder (the best
    validation weights of the end-to-end stage when kept, else its last weights), or of a
    model file written by :func:`export_model` (SING only, no autoencoder)."""
    folder = Path(folder)
    if folder.is_file():
        ck = load_checkpoint(folder)
        if ck.get("kind") != "sing-model" or "model" not in ck or "config" not in ck:
            raise CheckpointError(f"{folder}: not a SING model file (write one with "
                                  "'dldiy-sing export')")
        cfg, instruments, velocities = _parse_config(ck["config"], folder)
        sing = SING(cfg.model, len(instruments), len(velocities))
        load_module_state(sing, ck["model"], folder)
        return Run(folder, cfg, instruments, velocities, sing.float().eval(), None,
                   ck.get("curves"))
    stage = folder / "sing"
    path = stage / "best.safetensors" if best and (stage / "best.safetensors").is_file() \
        else stage / CHECKPOINT
    if not path.is_file():
        raise UserError(f"{folder}: no trained SING model ({path.relative_to(folder)} missing; "
                        "run all stages with 'dldiy-sing train')")
    state, raw = _weights(path)
    cfg, instruments, velocities = _parse_config(raw, path)
    sing = SING(cfg.model, len(instruments), len(velocities))
    load_module_state(sing, state, path)
    ae = None
    ae_path = folder / "ae" / CHECKPOINT
    if ae_path.is_file():
        ae = Autoencoder(cfg.model)
        load_module_state(ae, _weights(ae_path)[0], ae_path)
        ae.eval()
    return Run(folder, cfg, instruments, velocities, sing.eval(), ae)


def stage_curves(run: Path) -> dict[str, dict[str, tuple[list, list]]]:
    """Per stage of a run folder: train loss and validation spectral loss against steps."""
    out = {}
    for stage in ("ae", "seq", "sing"):
        path = run / stage / "metrics.jsonl"
        if not path.is_file():
            continue
        recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        tr = [(r["step"], r["loss"]) for r in recs if r["kind"] == "train" and "loss" in r]
        va = [(r["step"], r["valid_loss"]) for r in recs if r["kind"] == "valid"]
        out[stage] = {"train": tuple(map(list, zip(*tr, strict=True))) if tr else ([], []),
                      "valid (spectral)": tuple(map(list, zip(*va, strict=True)))
                      if va else ([], [])}
    return out


def export_model(run: str | Path, path: str | Path) -> Path:
    """One file with a run's SING weights in float16 (generation needs nothing else), its config
    and its training curves: what ``demo`` and ``generate --run FILE`` load."""
    if Path(run).is_file():
        raise UserError(f"{run}: already a model file (give a run folder)")
    loaded = load_run(run)
    state = {k: v.half() if v.is_floating_point() else v
             for k, v in loaded.sing.state_dict().items()}
    config = {**to_dict(loaded.cfg), "corpus": {"instruments": loaded.instruments,
                                                "velocities": loaded.velocities}}
    return save_checkpoint(path, {"kind": "sing-model", "model": state, "config": config,
                                  "curves": stage_curves(Path(run))})


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


def dominant_bin(log_spec: torch.Tensor) -> torch.Tensor:
    """``log(eps + |STFT|^2) [B, F, frames]`` -> ``[B]``: the frequency bin (above DC) of
    the largest time-averaged power, the note's dominant partial."""
    return log_spec.exp().mean(dim=2)[:, 1:].argmax(dim=1) + 1


def harmonic_pitch(log_spec: torch.Tensor, epsilon: float, n_fft: int = 1024,
                   sample_rate: int = SAMPLE_RATE, harmonics: int = 12) -> torch.Tensor:
    """``log(eps + |STFT|^2) [B, F, frames]`` -> ``[B]``: the MIDI pitch (21-108) whose first
    ``harmonics`` partials carry the most magnitude, partial k weighted by ``k ** -0.5`` so that
    the octave below (which also collects every even partial) loses (harmonic summation on the
    time-averaged magnitude spectrum, interpolated linearly at ``k * f0``). Tested on synthetic
    tones whose strongest partial is not the fundamental; on real notes, ``eval`` reports how
    often it finds the rendered pitch (``target_pitch_match``)."""
    mag = (log_spec.exp() - epsilon).clamp(min=0).mean(dim=2).sqrt()  # [B, F]
    pitches = torch.arange(21, 109, device=log_spec.device)
    f0 = 440.0 * 2.0 ** ((pitches - 69) / 12)
    k = torch.arange(1, harmonics + 1, device=log_spec.device)
    bins = f0[:, None] * k * n_fft / sample_rate  # [M, K]
    inside = bins < mag.shape[1] - 1
    lo = bins.floor().long().clamp(max=mag.shape[1] - 2)
    frac = bins - lo
    vals = mag[:, lo] * (1 - frac) + mag[:, lo + 1] * frac  # [B, M, K]
    return pitches[(vals * inside * k ** -0.5).sum(dim=-1).argmax(dim=1)]


def score_split(run: Run, corpus: NSynth, train: np.ndarray, index: np.ndarray,
                batch_size: int = 16) -> dict[str, float]:
    """Mean spectral loss per note (eq. 2, L1; ``<method>_log_mse``, the squared distance
    between the log power spectrograms) of SING, the autoencoder, the baseline and silence on
    ``index``; ``<method>_peak_match``: the share of notes whose dominant partial
    (:func:`dominant_bin`) is within one bin (15.6 Hz) of the target's (a timbre check as much
    as a pitch one: the strongest partial of a note is often not its fundamental);
    ``<method>_pitch_match``: the share whose :func:`harmonic_pitch` is the requested pitch
    (``target_pitch_match``: the same estimate on the real notes)."""
    lc = run.cfg.loss
    src, shift = nearest_neighbour(corpus, train, index)
    cache: dict[int, np.ndarray] = {}
    methods = ("sing", "autoencoder", "nearest_neighbour", "silence")
    sums = {m: 0.0 for m in methods}
    sq = {m: 0.0 for m in methods}
    peaks = {m: 0 for m in methods if m != "silence"}
    pitched = {m: 0 for m in (*peaks, "target")}
    n_nn = 0
    offset = 0
    with torch.no_grad():
        for inst, pitch, vel, wav in batched(notes_dataset(corpus, index), batch_size):
            b = len(wav)
            target = log_power(wav, lc.n_fft, lc.hop, lc.epsilon)
            target_peak = dominant_bin(target)
            pitched["target"] += int((harmonic_pitch(target, lc.epsilon, lc.n_fft) == pitch)
                                     .sum())

            def add(name: str, out: torch.Tensor, keep: torch.Tensor | None = None,
                    target: torch.Tensor = target, target_peak: torch.Tensor = target_peak,
                    pitch: torch.Tensor = pitch) -> None:
                lp = log_power(out, lc.n_fft, lc.hop, lc.epsilon)
                diff = lp - target
                l1, l2 = diff.abs().mean(dim=(1, 2)), diff.square().mean(dim=(1, 2))
                same = (dominant_bin(lp) - target_peak).abs() <= 1
                right = harmonic_pitch(lp, lc.epsilon, lc.n_fft) == pitch
                if keep is not None:
                    l1, l2, same, right = l1[keep], l2[keep], same[keep], right[keep]
                sums[name] += float(l1.sum())
                sq[name] += float(l2.sum())
                if name in peaks:
                    peaks[name] += int(same.sum())
                    pitched[name] += int(right.sum())

            add("sing", run.sing(inst, pitch, vel))
            add("silence", torch.zeros_like(wav))
            if run.autoencoder is not None:
                add("autoencoder", run.autoencoder(wav))
            ok = src[offset:offset + b] >= 0
            if ok.any():
                base = np.zeros((b, NOTE_SAMPLES), np.float32)
                for r in np.flatnonzero(ok):
                    j = int(src[offset + r])
                    if j not in cache:
                        cache[j] = corpus.audio(j)
                    base[r] = pitch_shift(cache[j], shift[offset + r])
                add("nearest_neighbour", torch.from_numpy(base), torch.from_numpy(ok))
                n_nn += int(ok.sum())
            offset += b
    counts = {"sing": len(index), "autoencoder": len(index), "nearest_neighbour": n_nn,
              "silence": len(index)}
    out: dict[str, float] = {"notes": len(index)}
    for m in methods:
        if m == "autoencoder" and run.autoencoder is None:
            continue
        out[m] = sums[m] / max(counts[m], 1)
        out[f"{m}_log_mse"] = sq[m] / max(counts[m], 1)
        if m in peaks:
            out[f"{m}_peak_match"] = peaks[m] / max(counts[m], 1)
            out[f"{m}_pitch_match"] = pitched[m] / max(counts[m], 1)
    out["target_pitch_match"] = pitched["target"] / max(len(index), 1)
    out["nearest_neighbour_notes"] = n_nn
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
