"""The paper's experiment (Table 1): the same recognizer on MFSC and on TD-filterbanks fixed,
learn-all, learn-filterbank and random init (LEAF and SincNet as extras), PER on dev and test,
and plots of what the filters learned. Resumable: finished front ends are kept, an interrupted
one resumes from its checkpoint."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from dldiy_core import (
    CheckpointError,
    Report,
    UserError,
    atomic_write_text,
    check_input,
    check_outputs,
    from_dict,
    holds_run,
    load_checkpoint,
    load_module_state,
    new_figure,
    os_error,
    prepare_out_dir,
    read_input,
    save_config,
    to_dict,
    write_results,
)

from .config import Config
from .data import SpeechSet, load_split
from .evaluate import evaluate
from .filterbank import TDFilterbank, mel_triangles, squared_hann
from .frontend import MFSC
from .markers import EXPERIMENT_MARKER
from .models import Recognizer
from .train import build_model, check_config, corpus_path, train

log = logging.getLogger(__name__)
EVAL_MAX_SECONDS = 60.0


def load_run(run: str | Path) -> tuple[Config, Recognizer]:
    """The config and trained recognizer of a ``train`` run folder."""
    path = Path(check_input(run, "run", folder=True)) / "checkpoint.safetensors"
    state = load_checkpoint(path)
    try:
        cfg = from_dict(Config, state["config"])
    except (KeyError, UserError) as e:
        raise CheckpointError(f"{path}: not a tdfbanks run ({e})") from None
    model = build_model(cfg)
    load_module_state(model, state["model"], path)
    return cfg, model.eval()


def _read_json(path: Path, what: str) -> dict:
    """A JSON object written by this package; damage is one line naming the file."""
    try:
        data = json.loads(read_input(path, what, register=False).decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: corrupt {what} ({e}); --force starts over") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: corrupt {what} (not a JSON object); --force starts over")
    return data


def run_one(cfg: Config, name: str, folder: Path, data: dict[str, SpeechSet],
            resume: bool = True, force: bool = False) -> dict:
    """Train one front end in ``folder`` and score it; cached in result.json. ``resume``: a
    finished front end (result.json) is kept and an interrupted one resumes from its
    checkpoint; ``force``: whatever ``folder`` holds is replaced."""
    c = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, frontend=name))
    done = folder / "result.json"
    if done.exists() and not force:
        result = _read_json(done, "result file")
        if result.get("config") != to_dict(c):
            raise UserError(f"{done}: written with other settings; use another --out folder")
        return result
    if force and done.exists():
        try:
            done.unlink()
        except OSError as e:
            raise os_error(e, done, "replace") from None
    t0 = time.perf_counter()
    again = resume and not force and (folder / "checkpoint.safetensors").exists()
    # resuming the experiment, a front end killed before its first checkpoint starts over
    trainer = train(c, folder, resume=again, data=data["train"], force=force or resume)
    model = trainer.model
    logged = [h for h in trainer.history if h.get("kind") == "train"]
    result = {"frontend": name, "config": to_dict(c),
              "train_s": time.perf_counter() - t0,  # this process only, if resumed
              "frontend_params": sum(p.numel() for p in model.frontend.parameters()
                                     if p.requires_grad),
              "train_hours": data["train"].seconds() / 3600,
              "loss": _logged_losses(folder / "metrics.jsonl", logged)}
    for split in ("dev", "test"):
        result[f"{split}_per"] = evaluate(model, data[split])["per"]
    log.info("%s: dev PER %.3f, test PER %.3f", name, result["dev_per"], result["test_per"])
    atomic_write_text(done, json.dumps(result, indent=1))
    return result


def _logged_losses(path: Path, fallback: list[dict]) -> list[tuple[int, float]]:
    """``(step, loss)`` of every train line of a run's metrics.jsonl (a resumed run's earlier
    lines too); the trainer's own history if the file cannot be read."""
    try:
        lines = read_input(path, "metrics", register=False).decode().splitlines()
        logged = [json.loads(line) for line in lines if line.strip()]
    except (UserError, json.JSONDecodeError, UnicodeDecodeError):
        logged = fallback
    return [(h["step"], h["loss"]) for h in logged
            if isinstance(h, dict) and h.get("kind") == "train" and "loss" in h]


def _flat(data: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(_flat(v, key) if isinstance(v, dict) else {key: v})
    return out


def check_folder_path(out: Path) -> None:
    """A folder can be made at ``out``: no file stands there or in the way above it (checked
    before the work; the folder itself is made after it)."""
    for p in (out, *out.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                raise UserError(f"{p}: exists and is not a folder")
            return


def prepare_experiment(cfg: Config, out: Path, resume: bool = False, force: bool = False,
                       same_settings: bool = True) -> None:
    """Check an experiment folder before any work (:func:`mark_experiment` creates and marks it
    with ``experiment-config.json`` later): not an input, not another run; one that holds an
    experiment is refused unless ``resume`` (with the same settings when ``same_settings``) or
    ``force``."""
    inputs = [Path(cfg.data.corpus)] if cfg.data.corpus else []
    marker = out / EXPERIMENT_MARKER
    check_outputs([out], inputs, force=force, resume=resume)
    check_folder_path(out)
    if resume and not marker.is_file():
        raise UserError(f"{out}: no experiment to resume there (no {marker.name})")
    if not resume and not force:  # an experiment folder from before the marker existed
        held = [name for name in cfg.experiment
                if (out / name / "result.json").exists() or holds_run(out / name)]
        if held:
            raise UserError(f"{out}: already holds runs of an experiment ({', '.join(held)}); "
                            "continue it with --resume, replace it with --force, or choose "
                            "another folder")
    if resume and same_settings:
        theirs = _read_json(marker, "experiment config")
        mine = to_dict(cfg)
        if theirs != mine:
            a, b = _flat(mine), _flat(theirs)
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise UserError(f"{marker}: the experiment there has other settings (differs in "
                            f"{', '.join(diff)}); use another --out folder or --force")


def mark_experiment(cfg: Config, out: Path) -> None:
    """Create the experiment folder (checked by :func:`prepare_experiment`) and write its
    marker, once the inputs are read: a bad input leaves no folder behind."""
    prepare_out_dir(out, force=True)  # create it, test that it is writable
    save_config(cfg, out / EXPERIMENT_MARKER)


def load_data(cfg: Config) -> dict[str, SpeechSet]:
    check_config(cfg)
    corpus, d = corpus_path(cfg), cfg.data
    data = {"train": load_split(corpus, "train", d.max_seconds, d.train_hours, d.resample)}
    for split in ("dev", "test"):
        data[split] = load_split(corpus, split, EVAL_MAX_SECONDS, 0.0, d.resample)
    return data


def mfsc_correlation(waves: list[np.ndarray]) -> np.ndarray:
    """Per-channel Pearson correlation ``[40]`` between fixed TD-filterbank and torchaudio MFSC
    features (both ``log(1 + x)``, not normalised), pooled over the frames of ``waves``."""
    td, mfsc = TDFilterbank(normalize=False), MFSC(normalize=False)
    a, b = [], []
    with torch.no_grad():
        for w in waves:
            x = torch.from_numpy(w)[None]
            a.append(td(x)[0][0])
            b.append(mfsc(x)[0][0])
    a, b = torch.cat(a, 1).double(), torch.cat(b, 1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).numpy()


def add_correlation(r: Report, waves: list[np.ndarray], what: str) -> float:
    corr = mfsc_correlation(waves)
    r.headline(f"fixed TD-filterbank vs MFSC, mean channel correlation ({what})", float(
        corr.mean()))
    r.line_plot(f"mfsc_correlation_{what.split()[0]}", {"correlation": (
        list(range(1, 41)), corr.tolist())}, xlabel="mel channel", ylabel="Pearson r",
        caption=f"fixed TD-filterbanks reproduce MFSC channel by channel ({what})")
    return float(corr.mean())


def run_experiment(cfg: Config, out: Path, title: str = "TD-filterbanks vs MFSC",
                   resume: bool = False, force: bool = False) -> Path:
    """Train every front end of ``cfg.experiment``; write the table, plots and a report.

    ``out`` holding an experiment is refused unless ``resume`` (same settings: finished front
    ends kept, an interrupted one resumed) or ``force`` (every front end trained again)."""
    check_config(cfg)
    prepare_experiment(cfg, out, resume, force)
    data = load_data(cfg)
    mark_experiment(cfg, out)
    r = Report(out, title)
    add_experiment(r, cfg, out, data, resume=resume, force=force)
    add_correlation(r, data["test"].waves[:50], "synthesized test speech")
    return r.write()


def add_experiment(r: Report, cfg: Config, out: Path, data: dict[str, SpeechSet],
                   runs: Path | None = None, resume: bool = True, force: bool = False) -> dict:
    """Train and score every front end of ``cfg.experiment`` in ``runs/<front end>`` (default
    ``out``); add the table and plots (``resume``, ``force``: :func:`run_one`)."""
    runs = out if runs is None else runs
    results = {name: run_one(cfg, name, runs / name, data, resume, force)
               for name in cfg.experiment}
    write_results(out / "experiment.json", {k: {m: v for m, v in r.items()
                                               if m not in ("loss", "config")}
                                           for k, r in results.items()})
    best = min(results.values(), key=lambda x: x["dev_per"])
    r.headline(f"best dev PER ({best['frontend']})", best["dev_per"])
    if "mfsc" in results:
        r.headline("MFSC test PER", results["mfsc"]["test_per"])
    r.text(f"{len(data['train'])} training utterances ({data['train'].seconds() / 3600:.2f} h), "
           f"{len(data['dev'])} dev, {len(data['test'])} test, speaker-disjoint splits. Phone "
           "error rate on the 39 folded TIMIT phones, greedy CTC decoding. Recognizer: "
           f"{cfg.model.layers} conv layers x {cfg.model.channels} channels, kernel "
           f"{cfg.model.kernel}, {cfg.train.epochs} epochs.")
    r.table(["front end", "trainable front-end params", "dev PER", "test PER", "train time (s)"],
            [[k, v["frontend_params"], v["dev_per"], v["test_per"], round(v["train_s"])]
             for k, v in results.items()], caption="the paper's Table 1 on this corpus")
    r.line_plot("training_loss", {k: ([s for s, _ in v["loss"]], [x for _, x in v["loss"]])
                                  for k, v in results.items() if v["loss"]},
                xlabel="step", ylabel="CTC loss per phone", caption="training loss")
    learned = {k: fb for k in results if k.startswith("tdfb-") and k != "tdfb-fixed"
               and (fb := _frontend(runs / k)) is not None}
    if learned:
        plot_filters(r, learned)
    return results


def _frontend(folder: Path) -> TDFilterbank | None:
    if not (folder / "checkpoint.safetensors").exists():
        return None
    return load_run(folder)[1].frontend  # type: ignore[return-value]


def responses(fb: TDFilterbank, n_fft: int = 8000) -> torch.Tensor:
    """Power responses in dB ``[40, n_fft // 2]`` (2 Hz bins at 16 kHz)."""
    power = torch.fft.fft(fb.filter_response(), n=n_fft).abs().pow(2)[:, : n_fft // 2]
    return 10 * torch.log10(power / power.amax(1, keepdim=True) + 1e-10)


def plot_filters(r: Report, learned: dict[str, TDFilterbank]) -> None:
    """Frequency responses, centre frequencies and lowpass windows against the mel init."""
    init = TDFilterbank()
    freqs = np.arange(4000) * 2.0
    shown = [0, 8, 16, 24, 32, 39]
    fig, axes = new_figure(6.0, 2.6 * (len(learned) + 1), rows=len(learned) + 1, sharex=True)
    for ax, (name, fb) in zip(axes, [("mel initialisation", init), *learned.items()],
                              strict=True):
        resp = responses(fb)
        for i in shown:
            ax.plot(freqs, resp[i], lw=0.8)
        ax.set(ylim=(-40, 2), ylabel="dB", title=name)
    axes[-1].set_xlabel("frequency (Hz)")
    r.figure("filter_responses", fig, "power responses of filters 1, 9, 17, 25, 33, 40 "
             "(normalised to 0 dB peak): mel initialisation and after training")

    fig, ax = new_figure()
    peak, _ = mel_triangles()
    ax.plot(peak.numpy(), "k--", label="mel initialisation")
    for name, fb in learned.items():
        ax.plot(freqs[responses(fb).argmax(1).numpy()], ".-", label=name)
    ax.set(xlabel="filter", ylabel="peak frequency (Hz)", title="centre frequencies")
    ax.legend()
    r.figure("centre_frequencies", fig, "frequency of each filter's response peak")

    fig, ax = new_figure()
    ax.plot(squared_hann().numpy(), "k--", label="squared Hann (init)")
    for name, fb in learned.items():
        if fb.lowpass.requires_grad:
            for i in (0, 20, 39):
                ax.plot(fb.lowpass.detach()[i].numpy(), lw=0.8, label=f"{name}, channel {i + 1}")
    ax.set(xlabel="tap", ylabel="weight", title="lowpass (averaging) windows")
    ax.legend(fontsize=7)
    r.figure("lowpass", fig, "learned averaging windows against the squared Hann window")
