"""``dldiy-sing demo``: a small corpus, a small model (by default the packaged one, trained by this
project with the ``small`` preset and exported with ``dldiy-sing export``; or the quick preset
trained here with ``--train``; or a run you trained), generated notes and the report page
(table, loss curves per stage, target vs generated spectrograms, audio players)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from dldiy_core import Report, UserError, new_figure

from .config import SingConfig
from .evaluate import evaluate_run, load_run, pitch_shift, stage_curves
from .generate import synthesize
from .nsynth import SAMPLE_RATE, NSynth
from .render import build_corpus
from .spectral import log_power
from .train import CHECKPOINT, STAGES, train

log = logging.getLogger(__name__)


def spectrogram_figure(target: np.ndarray, generated: np.ndarray, baseline: np.ndarray | None,
                       title: str, epsilon: float = 1.0):
    """Log power spectrograms ``log(eps + |STFT|^2)`` (eq. 2's representation) side by side,
    on one colour scale."""
    panels = [("target", target), ("SING", generated)] + (
        [("nearest neighbour", baseline)] if baseline is not None else [])
    specs = [log_power(torch.from_numpy(w)[None], epsilon=epsilon)[0].numpy() for _, w in panels]
    lo, hi = min(float(x.min()) for x in specs), max(float(x.max()) for x in specs)
    fig, axes = new_figure(4.0 * len(panels), 3.4, cols=len(panels))
    for ax, (name, wav), spec in zip(np.atleast_1d(axes), panels, specs, strict=True):
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi,
                  extent=(0, len(wav) / SAMPLE_RATE, 0, SAMPLE_RATE / 2000))
        ax.set(title=name, xlabel="s", ylabel="kHz")
    fig.suptitle(title, y=1.02)
    return fig


PACKAGED = Path(__file__).parent / "pretrained" / "sing-small.safetensors"
"""SING of the ``small`` preset trained by this project (seed 0; the README gives the
commands), float16 weights, about 4 MB."""


def demo(cfg: SingConfig, out: Path, run: str | None = None, force: bool = False,
         train_quick: bool = False, limit: int = 0) -> Path:
    """The report page in ``out``; ``limit``: at most this many notes scored per split."""
    if run is None and not train_quick:
        if not PACKAGED.is_file():
            raise UserError(f"{PACKAGED}: the packaged model is missing (reinstall, or pass "
                            "--train or --run RUN)")
        run_dir = PACKAGED
    elif run is None:
        run_dir = out / "run"
        if force and run_dir.exists():
            shutil.rmtree(run_dir)
        done = (run_dir / "sing" / CHECKPOINT).is_file()
        if not done:
            started = any((run_dir / s / CHECKPOINT).is_file() for s in STAGES)
            train(cfg, run_dir, resume=started)
    else:
        run_dir = Path(run)
        if out.resolve() == run_dir.resolve() or run_dir.resolve() in out.resolve().parents:
            raise UserError(f"{out}: the report folder must not be inside the run {run_dir}")
    scores = evaluate_run(run_dir, limit=limit)
    model = load_run(run_dir)
    corpus = NSynth(build_corpus(model.cfg.data))
    d = model.cfg.data
    split = corpus.split(d.split_seed, d.valid_ratio, d.test_ratio)

    r = Report(out, "SING: notes from (instrument, pitch, velocity)")
    test = scores.get("test", {})
    r.headline("test spectral loss, SING", test.get("sing"))
    r.headline("test, nearest-neighbour baseline", test.get("nearest_neighbour"))
    r.headline("test, autoencoder", test.get("autoencoder"))
    r.headline("test, silence", test.get("silence"))
    r.headline("test notes at the requested pitch, SING", test.get("sing_pitch_match"))
    r.headline("test notes at the requested pitch, nearest neighbour",
               test.get("nearest_neighbour_pitch_match"))
    r.headline("training notes", int(len(split["train"])))
    r.text(f"Run {run_dir} (preset sizes: {model.cfg.model.channels} decoder channels, LSTM "
           f"{model.cfg.model.layers} x {model.cfg.model.hidden}); corpus {corpus.folder.name}: "
           f"{len(corpus)} notes of {len(corpus.instruments)} instruments rendered from "
           f"{', '.join(d.soundfonts)}. Valid and test hold instrument-pitch pairs never seen in "
           "training. Spectral loss = eq. 2 of the paper (L1 between "
           f"log({model.cfg.loss.epsilon:g} + |STFT|^2)), mean per note; lower is better. "
           "Silence (an all-zero output) is the floor a useful model must beat."
           + (f" At most {limit} notes per split are scored (a fixed random subset)."
              if limit else ""))
    r.section("Spectral loss per split")
    r.table(["split", "notes", "SING", "autoencoder", "nearest neighbour", "silence"],
            [[s, scores[s]["notes"], scores[s]["sing"], scores[s].get("autoencoder"),
              scores[s]["nearest_neighbour"], scores[s]["silence"]]
             for s in ("train", "valid", "test") if s in scores])
    r.section("Pitch: share of notes at the requested pitch (harmonic estimate) / whose "
              "strongest partial is the target's")
    methods = ("sing", "autoencoder", "nearest_neighbour")
    r.table(["split", "SING", "autoencoder", "nearest neighbour"],
            [[s, *(f"{scores[s][f'{m}_pitch_match']:.0%} / {scores[s][f'{m}_peak_match']:.0%}"
                   if f"{m}_pitch_match" in scores[s] else "-" for m in methods)]
             for s in ("train", "valid", "test") if s in scores])
    r.section("Training, per stage")
    curves = model.curves if model.curves is not None else stage_curves(run_dir)
    lc = model.cfg.loss
    trained_on = {"ae": "wav MSE" if lc.kind == "wav" else f"log-{lc.distance.upper()}",
                  "seq": "embedding MSE"}
    trained_on["sing"] = trained_on["ae"]
    for stage, series in curves.items():
        named = {(f"train ({trained_on.get(stage, 'loss')})" if k == "train" else k): v
                 for k, v in series.items() if v[0]}
        r.line_plot(f"loss_{stage}", named, xlabel="step", ylabel="loss",
                    caption=f"stage {stage}: training loss and the valid spectral loss (eq. 2)")
    r.section("Test notes: target, SING, nearest-neighbour baseline")
    from .evaluate import nearest_neighbour

    picks = split["test"][np.linspace(0, len(split["test"]) - 1, min(4, len(split["test"])))
                          .astype(int)] if len(split["test"]) else np.array([], int)
    src, shift = nearest_neighbour(corpus, split["train"], picks)
    notes = [(corpus.notes[i].instrument, corpus.notes[i].pitch, corpus.notes[i].velocity)
             for i in picks]
    generated = synthesize(model, notes) if notes else []
    for k, i in enumerate(picks):
        n = corpus.notes[i]
        target = corpus.audio(int(i))
        base = pitch_shift(corpus.audio(int(src[k])), shift[k]) if src[k] >= 0 else None
        r.figure(f"spec_{n.name}", spectrogram_figure(target, generated[k], base, n.name,
                                                      model.cfg.loss.epsilon),
                 caption=f"{n.name}: log power spectrograms")
        r.audio(f"target_{n.name}", target, SAMPLE_RATE, caption=f"{n.name} (rendered)")
        r.audio(f"sing_{n.name}", generated[k], SAMPLE_RATE, caption=f"{n.name} (SING)")
        if base is not None:
            r.audio(f"nn_{n.name}", base, SAMPLE_RATE,
                    caption=f"{n.name} (nearest neighbour, {shift[k]:+.0f} semitones)")
    return r.write()
