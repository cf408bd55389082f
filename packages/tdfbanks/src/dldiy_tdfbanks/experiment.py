"""The paper's experiment (Table 1): the same recognizer on MFSC and on TD-filterbanks fixed,
learn-all, learn-filterbank and random init (LEAF and SincNet beside them), PER on dev and test,
and plots of what the filters learned.

Protocol (:func:`run_table`): every run keeps the weights of its best dev PER (checked at each
epoch end) and scores test once, with those weights. The front-end learning rate of a learned
front end is chosen on dev: ``frontend_lr`` and each of ``frontend_lr_grid`` are tried on the
first seed, the lowest dev PER wins and is used for the other seeds (``seeds`` in all); a row
is the mean ± standard deviation over its seeds. Runs go in this order: every front end on the
first seed, then the grid, then the other seeds, and ``experiment.json`` is rewritten after
each run, so an interrupted experiment has a complete first-seed table early. Resumable:
finished runs are kept, an interrupted one resumes from its checkpoint. ``reuse`` (``experiment
--reuse FILE``): the runs recorded in the results file of an earlier experiment with the same
settings (the first seed, its learning-rate choices, and any later seed of a row) are read
from it (:func:`reused_runs`) and only the missing runs are trained."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
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
    read_results,
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


def load_run(run: str | Path, best: bool = False) -> tuple[Config, Recognizer]:
    """The config and trained recognizer of a ``train`` run folder (``best``: the weights of
    its best dev checkpoint, ``best.safetensors``, when it has one)."""
    folder = Path(check_input(run, "run", folder=True))
    path = folder / "checkpoint.safetensors"
    if best and (folder / "best.safetensors").is_file():
        path = folder / "best.safetensors"
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


FIXED = ("mfsc", "tdfb-fixed")
"""Front ends without a trainable parameter (no front-end learning rate to tune)."""


def run_name(name: str, seed: int, frontend_lr: float) -> str:
    """The folder of one run under ``<out>/<front end>/``."""
    return f"seed{seed}" if name in FIXED else f"seed{seed}-flr{frontend_lr:g}"


def run_one(cfg: Config, name: str, folder: Path, data: dict[str, SpeechSet],
            resume: bool = True, force: bool = False, seed: int | None = None,
            frontend_lr: float | None = None) -> dict:
    """Train one front end in ``folder`` (``seed``, ``frontend_lr``: default the config's),
    keep its best dev checkpoint and score test once with it; cached in result.json.
    ``resume``: a finished run (result.json) is kept and an interrupted one resumes from its
    checkpoint; ``force``: whatever ``folder`` holds is replaced."""
    c = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, frontend=name),
        frontend_lr=cfg.frontend_lr if frontend_lr is None else frontend_lr,
        train=dataclasses.replace(cfg.train, seed=cfg.train.seed if seed is None else seed))
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
    # resuming the experiment, a run killed before its first checkpoint starts over
    trainer = train(c, folder, resume=again, data=data["train"], force=force or resume,
                    valid=data["dev"])
    logged = [h for h in trainer.history if h.get("kind") in ("train", "valid")]
    records = _logged(folder / "metrics.jsonl", logged)
    # a resumed run: add the time of the processes before this one, up to their last log
    earlier = _earlier_seconds(records, any("elapsed_s" in h for h in logged)) if again else 0.0
    valid = [(h["step"], h["valid_per"]) for h in records if "valid_per" in h]
    trainer.load_best()  # model selection on dev
    model = trainer.model
    best_step = min(valid, key=lambda x: x[1])[0] if valid else trainer.state.step
    # validated at each epoch end: the first validation's step is an epoch's steps (the run
    # may stop early, train.patience, so steps / epochs is not)
    per_epoch = valid[0][0] if valid and not c.train.eval_every else None
    result = {"frontend": name, "seed": c.train.seed, "frontend_lr": c.frontend_lr,
              "config": to_dict(c),
              "train_s": time.perf_counter() - t0 + earlier, "resumed": again,
              "frontend_params": sum(p.numel() for p in model.frontend.parameters()
                                     if p.requires_grad),
              "train_hours": data["train"].seconds() / 3600,
              "steps": trainer.state.step, "best_step": best_step,
              "steps_per_epoch": per_epoch,
              "dev_per": float(trainer.state.best), "valid": valid,
              "ctc_dropped": trainer.stateful["ctc"].dropped,
              "loss": [(h["step"], h["loss"]) for h in records if h.get("kind") == "train"
                       and "loss" in h]}
    result["test_per"] = evaluate(model, data["test"])["per"]  # once, on the chosen weights
    log.info("%s seed %d: dev PER %.3f (step %d of %d), test PER %.3f", name, c.train.seed,
             result["dev_per"], best_step, result["steps"], result["test_per"])
    atomic_write_text(done, json.dumps(result, indent=1))
    return result


def _logged(path: Path, fallback: list[dict]) -> list[dict]:
    """Every record of a run's metrics.jsonl (a resumed run's earlier lines too); the trainer's
    own history if the file cannot be read."""
    try:
        lines = read_input(path, "metrics", register=False).decode().splitlines()
        logged = [json.loads(line) for line in lines if line.strip()]
    except (UserError, json.JSONDecodeError, UnicodeDecodeError):
        logged = fallback
    return [h for h in logged if isinstance(h, dict) and "step" in h]


def _earlier_seconds(records: list[dict], logged_here: bool) -> float:
    """Training seconds of the earlier processes of a resumed run, from the ``elapsed_s`` of
    its records (each process counts from its own start: a drop starts the next one); the last
    process's are this one's when ``logged_here``."""
    ends, last = [], None
    for h in records:
        e = h.get("elapsed_s")
        if e is None:
            continue
        if last is not None and e < last:
            ends.append(last)
        last = e
    if last is not None and not logged_here:
        ends.append(last)
    return float(sum(ends))


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
                       same_settings: bool = True, reuse: Path | None = None) -> None:
    """Check an experiment folder before any work (:func:`mark_experiment` creates and marks it
    with ``experiment-config.json`` later): not an input, not another run; one that holds an
    experiment is refused unless ``resume`` (with the same settings when ``same_settings``) or
    ``force``."""
    inputs = [Path(cfg.data.corpus)] if cfg.data.corpus else []
    if reuse is not None:
        inputs.append(reuse)
        if reuse.resolve().is_relative_to(out.resolve()):
            raise UserError(f"{reuse}: the results file to reuse is inside the experiment "
                            f"folder {out}, which the experiment rewrites; copy it elsewhere")
    marker = out / EXPERIMENT_MARKER
    check_outputs([out], inputs, force=force, resume=resume)
    check_folder_path(out)
    if resume and not marker.is_file():
        raise UserError(f"{out}: no experiment to resume there (no {marker.name})")
    if not resume and not force:  # an experiment folder from before the marker existed
        held = [name for name in cfg.experiment if (out / name).is_dir() and (
            (out / name / "result.json").exists() or holds_run(out / name)
            or any((p / "result.json").exists() or holds_run(p)
                   for p in (out / name).iterdir() if p.is_dir()))]
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
    """The train split (``data.train_hours``), dev (``data.dev_hours``) and all of test."""
    check_config(cfg)
    corpus, d = corpus_path(cfg), cfg.data
    data = {"train": load_split(corpus, "train", d.max_seconds, d.train_hours, d.resample),
            "dev": load_split(corpus, "dev", EVAL_MAX_SECONDS, d.dev_hours, d.resample),
            "test": load_split(corpus, "test", EVAL_MAX_SECONDS, 0.0, d.resample)}
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
                   resume: bool = False, force: bool = False,
                   reuse: Path | None = None) -> Path:
    """Train every front end of ``cfg.experiment``; write the table, plots and a report.

    ``out`` holding an experiment is refused unless ``resume`` (same settings: finished front
    ends kept, an interrupted one resumed) or ``force`` (every front end trained again).
    ``reuse``: a results file whose runs are taken, not trained (:func:`reused_runs`)."""
    check_config(cfg)
    prepare_experiment(cfg, out, resume, force, reuse=reuse)
    data = load_data(cfg)
    reused = None if reuse is None else reused_runs(cfg, reuse, data["train"].seconds() / 3600)
    mark_experiment(cfg, out)
    r = Report(out, title)
    add_experiment(r, cfg, out, data, resume=resume, force=force, reused=reused)
    add_correlation(r, data["test"].waves[:50], "synthesized test speech")
    return r.write()


def run_table(cfg: Config, out: Path, data: dict[str, SpeechSet], runs: Path | None = None,
              resume: bool = True, force: bool = False,
              reused: tuple[list[dict], dict] | None = None) -> dict:
    """Every run of the table in ``runs/<front end>/<run_name>`` (default ``out``), in the
    order of the module docstring; ``out/experiment.json`` is rewritten after each run.
    ``reused`` (:func:`reused_runs`): runs recorded earlier (the first seed's at least), not
    trained again.
    Returns :func:`summarise`'s figures."""
    runs = out if runs is None else runs
    seeds = [cfg.train.seed + k for k in range(cfg.seeds)]
    grid = [cfg.frontend_lr, *(x for x in dict.fromkeys(cfg.frontend_lr_grid)
                               if x != cfg.frontend_lr)]
    done: list[dict] = [] if reused is None else list(reused[0])
    note = None if reused is None else reused[1]

    def one(name: str, seed: int, lr: float | None) -> None:
        lr_run = cfg.frontend_lr if lr is None else lr
        if any(r["frontend"] == name and r["seed"] == seed and r["frontend_lr"] == lr_run
               for r in done):
            return  # reused
        folder = runs / name / run_name(name, seed, lr)
        result = run_one(cfg, name, folder, data, resume, force, seed=seed, frontend_lr=lr)
        done.append({**result, "folder": os.path.relpath(folder, out)})
        write_results(out / "experiment.json", summarise(cfg, done, note))

    if reused is None:
        for name in cfg.experiment:
            one(name, seeds[0], cfg.frontend_lr)
        learned = [name for name in cfg.experiment if name not in FIXED]
        for name in learned:
            for lr in grid[1:]:
                one(name, seeds[0], lr)
    chosen = summarise(cfg, done, note)["rows"]
    for seed in seeds[1:]:
        for name in cfg.experiment:
            one(name, seed, chosen[name]["frontend_lr"])
    figures = summarise(cfg, done, note)
    write_results(out / "experiment.json", figures)  # also when every run was reused
    return figures


def reused_runs(cfg: Config, path: Path, train_hours: float) -> tuple[list[dict], dict]:
    """The runs recorded in ``path``, the results file (``experiment.json``) of an earlier
    experiment: every front end's dev/test PER on each of its seeds (the first at least) and
    each grid learning rate's first-seed dev PER, as :func:`run_one` results without a
    ``folder`` (their runs are not here). Refused unless its settings (and config, when it
    records one) equal ``cfg``'s with ``train_hours`` of training audio and it holds a
    first-seed run of every front end of ``cfg.experiment``. Returns the runs and the note
    ``summarise`` records (``reused``: the file, its commit, ``runs`` reused and how many of
    them are first-seed runs)."""
    record = read_results(path)
    fig = record["figures"]
    try:
        rows, tuning, theirs = fig["rows"], fig["lr_tuning"], fig["settings"]
    except KeyError as e:
        raise UserError(f"{path}: not the results of an experiment (no {e})") from None
    # every setting but the number of seeds, which only says how many runs there are
    mine = {**summarise(cfg, [])["settings"], "train_hours": train_hours}
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)
                  and k != "seeds")
    if "config" in fig:
        a, b = _flat(to_dict(cfg)), _flat(fig["config"])
        diff += sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k != "seeds")
    if diff:
        raise UserError(f"{path}: an experiment with other settings (differs in "
                        f"{', '.join(diff)}); its runs cannot be reused")
    first, runs = cfg.train.seed, []
    missing = [name for name in cfg.experiment if name not in rows]
    if missing or set(rows) - set(cfg.experiment):
        raise UserError(f"{path}: its front ends {sorted(rows)} are not this experiment's "
                        f"{cfg.experiment}")
    try:
        for name in cfg.experiment:
            row = rows[name]
            if row["seeds"][:1] != [first]:
                raise UserError(f"{path}: no run of {name} on the first seed ({first})")
            lr = cfg.frontend_lr if name in FIXED else float(row["frontend_lr"])
            tried = {float(k): v for k, v in tuning.get(name, {}).items()}
            if name not in FIXED and min(tried, key=lambda k: tried[k]) != lr:
                raise UserError(f"{path}: {name}'s learning rate {lr:g} is not the one of "
                                "lowest dev PER in its lr_tuning")
            one_seed = row["n_seeds"] == 1
            if not one_seed and not {"train_s", "ctc_dropped_runs"} <= set(row):
                raise UserError(f"{path}: {name} has several seeds but no per-seed train_s "
                                "and ctc_dropped_runs")
            for i, seed in enumerate(row["seeds"]):
                if seed >= first + cfg.seeds:
                    continue
                runs.append({
                    "frontend": name, "seed": seed, "frontend_lr": lr,
                    "dev_per": row["dev_per"][i], "test_per": row["test_per"][i],
                    "frontend_params": row["frontend_params"],
                    "train_s": row["train_s"][i] if "train_s" in row else row["train_s_mean"],
                    "ctc_dropped": row["ctc_dropped_runs"][i] if "ctc_dropped_runs" in row
                    else row["ctc_dropped"], "best_epoch": row["best_epoch"][i], "folder": None})
            runs += [{"frontend": name, "seed": first, "frontend_lr": k, "dev_per": v,
                      "folder": None} for k, v in tried.items() if k != lr]
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise UserError(f"{path}: damaged experiment results ({type(e).__name__}: {e})") from None
    return runs, {"file": str(path), "commit": record["commit"], "runs": len(runs),
                  "first_seed_runs": sum(r["seed"] == first for r in runs)}


def _std(x: list[float]) -> float:
    """Sample standard deviation (0 for a single value)."""
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def summarise(cfg: Config, done: list[dict], reused: dict | None = None) -> dict:
    """The figures of ``experiment.json`` from the finished runs ``done`` (run_one's results):
    ``rows[front end]`` (its chosen front-end learning rate, per-seed and mean ± std dev/test
    PER, ``n_seeds``), ``lr_tuning[front end][lr]`` (first-seed dev PER of each learning rate
    tried), the settings and config, and ``complete`` (every planned run finished).
    ``reused`` (the note of :func:`reused_runs`): runs came from that file, and the plan is its
    first-seed runs plus the other seeds (grid values it lacks are not run)."""
    first = cfg.train.seed
    rows, tuning = {}, {}
    for name in cfg.experiment:
        mine = [r for r in done if r["frontend"] == name]
        tried = {r["frontend_lr"]: r["dev_per"] for r in mine if r["seed"] == first}
        if not tried:
            continue
        lr = min(tried, key=lambda k: tried[k])
        if name not in FIXED:
            tuning[name] = {f"{k:g}": v for k, v in tried.items()}
        chosen = sorted((r for r in mine if r["frontend_lr"] == lr), key=lambda r: r["seed"])
        dev = [r["dev_per"] for r in chosen]
        test = [r["test_per"] for r in chosen]
        rows[name] = {
            "frontend_params": chosen[0]["frontend_params"],
            "frontend_lr": lr if name not in FIXED else None,
            "n_seeds": len(chosen), "seeds": [r["seed"] for r in chosen],
            "dev_per": dev, "test_per": test,
            "dev_per_mean": float(np.mean(dev)), "dev_per_std": _std(dev),
            "test_per_mean": float(np.mean(test)), "test_per_std": _std(test),
            "best_epoch": [_epoch(r) for r in chosen],
            "train_s_mean": float(np.mean([r["train_s"] for r in chosen])),
            "train_s": [r["train_s"] for r in chosen],
            "ctc_dropped": sum(r.get("ctc_dropped", 0) for r in chosen),
            "ctc_dropped_runs": [r.get("ctc_dropped", 0) for r in chosen],
            "folder": next((r["folder"] for r in chosen if r["folder"] is not None), None)}
    if reused is None:
        planned = len(cfg.experiment) * cfg.seeds + len(
            [n for n in cfg.experiment if n not in FIXED]) * len(
            [x for x in dict.fromkeys(cfg.frontend_lr_grid) if x != cfg.frontend_lr])
    else:
        planned = reused.get("first_seed_runs", reused["runs"]) + len(cfg.experiment) * (
            cfg.seeds - 1)
    m = cfg.model
    hours = [r["train_hours"] for r in done if "train_hours" in r]
    settings = {"train_hours": hours[0] if hours else 0.0,
                "dev_hours": cfg.data.dev_hours,
                "epochs": cfg.train.epochs, "batch_size": cfg.train.batch_size, "lr": cfg.lr,
                "frontend_lr": cfg.frontend_lr, "frontend_lr_grid": cfg.frontend_lr_grid,
                "seeds": cfg.seeds, "input_gain": m.input_gain, "preemphasis": m.preemphasis,
                "layers": m.layers, "channels": m.channels, "first_stride": m.first_stride}
    figures = {"rows": rows, "lr_tuning": tuning, "settings": settings, "config": to_dict(cfg),
               "runs_done": len(done), "runs_planned": planned, "complete": len(done) >= planned}
    if reused is not None:
        figures["reused"] = reused
    return figures


def _epoch(result: dict) -> float | None:
    """Epoch of the best dev checkpoint (``best_step`` over steps per epoch, recorded or, for
    runs of all their epochs, ``steps`` / epochs; a reused run's recorded ``best_epoch``)."""
    if "best_epoch" in result:
        return result["best_epoch"]
    epochs = result["config"]["train"]["epochs"]
    per_epoch = result.get("steps_per_epoch") or (
        result["steps"] / epochs if epochs and result["steps"] else 0)
    return round(result["best_step"] / per_epoch, 2) if per_epoch else None


def _pm(mean: float, std: float, n: int) -> str:
    return f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"


def add_experiment(r: Report, cfg: Config, out: Path, data: dict[str, SpeechSet],
                   runs: Path | None = None, resume: bool = True, force: bool = False,
                   reused: tuple[list[dict], dict] | None = None) -> dict:
    """Run the table (:func:`run_table`) and add it and its plots to the report; returns the
    rows of :func:`summarise` (each with the ``folder`` of its first run trained here,
    relative to ``out``, None if all were reused)."""
    runs = out if runs is None else runs
    figures = run_table(cfg, out, data, runs, resume, force, reused)
    rows = figures["rows"]
    best = min(rows, key=lambda k: rows[k]["dev_per_mean"])
    r.headline(f"best mean dev PER ({best})", rows[best]["dev_per_mean"])
    if "mfsc" in rows:
        r.headline("MFSC mean test PER", rows["mfsc"]["test_per_mean"])
    r.text(f"{len(data['train'])} training utterances ({data['train'].seconds() / 3600:.2f} h), "
           f"{len(data['dev'])} dev ({data['dev'].seconds() / 3600:.2f} h), {len(data['test'])} "
           f"test ({data['test'].seconds() / 3600:.2f} h). Dev and test speakers do not "
           "occur in training; on the synthesized corpus a speaker is an engine, voice and "
           "setting, and only the espeak voice variants are held out entirely (the festival "
           "and piper voices and the espeak accents occur in every split at other settings). "
           "Phone error rate on the 39 folded TIMIT phones, greedy CTC decoding. Recognizer: "
           f"{cfg.model.layers} conv layers x {cfg.model.channels} channels, kernel "
           f"{cfg.model.kernel}, {cfg.train.epochs} epochs, input gain {cfg.model.input_gain:g}, "
           f"pre-emphasis {'on' if cfg.model.preemphasis else 'off'} for every front end. Each "
           "run keeps its checkpoint of best dev PER (checked each epoch) and scores test once "
           "with it; learned front ends use the front-end learning rate of lowest dev PER on "
           f"the first seed among {[cfg.frontend_lr, *cfg.frontend_lr_grid]}. "
           f"Mean ± std over {cfg.seeds} seed(s).")
    if reused is not None:
        r.text(f"{reused[1]['runs']} runs (the first seed's at least) are taken from "
               f"{reused[1]['file']} "
               f"(commit {(reused[1]['commit'] or {}).get('sha', '?')[:10]}), an experiment "
               "with the same settings, not trained again; the learning rates chosen there "
               "are used; plots show each row's first run trained here.")
    r.table(["front end", "trainable front-end params", "front-end lr", "seeds", "dev PER",
             "test PER", "train time (s, mean)"],
            [[k, v["frontend_params"], "-" if v["frontend_lr"] is None else
              f"{v['frontend_lr']:g}", v["n_seeds"],
              _pm(v["dev_per_mean"], v["dev_per_std"], v["n_seeds"]),
              _pm(v["test_per_mean"], v["test_per_std"], v["n_seeds"]),
              round(v["train_s_mean"])] for k, v in rows.items()],
            caption="the paper's Table 1 on this corpus")
    if figures["lr_tuning"]:
        r.table(["front end", *(f"{x:g}" for x in [cfg.frontend_lr, *cfg.frontend_lr_grid])],
                [[k, *(v.get(f"{x:g}", "") for x in [cfg.frontend_lr, *cfg.frontend_lr_grid])]
                 for k, v in figures["lr_tuning"].items()],
                caption="front-end learning rate: first-seed dev PER of each value tried")
    losses = {}
    for k, v in rows.items():
        if v["folder"] is None:
            continue
        result = _read_json(out / v["folder"] / "result.json", "result file")
        if result["loss"]:
            losses[k] = ([s for s, _ in result["loss"]], [x for _, x in result["loss"]])
    if losses:
        r.line_plot("training_loss", losses, xlabel="step", ylabel="CTC loss per phone",
                    caption="training loss (each row's first run in this folder)")
    learned = {k: fb for k in rows if k.startswith("tdfb-") and k != "tdfb-fixed"
               and rows[k]["folder"] is not None
               and (fb := _frontend(out / rows[k]["folder"])) is not None}
    if learned:
        plot_filters(r, learned)
    return rows


def _frontend(folder: Path) -> TDFilterbank | None:
    """The front end of a run's best dev checkpoint (the last one if it has none)."""
    if not (folder / "checkpoint.safetensors").exists():
        return None
    return load_run(folder, best=True)[1].frontend  # type: ignore[return-value]


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
