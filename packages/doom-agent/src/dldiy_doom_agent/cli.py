"""``dldiy-doom-agent {train,eval,diagnose,record,export,bench,demo,ablation}``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dldiy_core import (
    Commands,
    UserError,
    add_output_args,
    check_outputs,
    config_from_args,
    emit_results,
    load_checkpoint,
    prepare_out_file,
)

from .config import PRESETS, DoomConfig
from .scenarios import SCENARIOS


def _config(args) -> DoomConfig:
    sets = list(args.sets)
    if getattr(args, "scenario", None):
        sets.insert(0, f"env.scenario={args.scenario}")
    if getattr(args, "device", None):
        sets.insert(0, f"train.device={args.device}")
    args.sets = sets
    return config_from_args(DoomConfig, PRESETS, args)


def cmd_train(args) -> int:
    from .train import train

    cfg = _config(args)
    trainer = train(cfg, args.out, resume=args.resume, force=args.force)
    actor = [h for h in trainer.history if h["kind"] == "actor" and "ep_return" in h][-1:]
    if actor:
        print(f"update {actor[0]['step']}: {actor[0]['env_steps']:.0f} env steps, "
              f"episode return {actor[0]['ep_return']:.1f}, kills {actor[0]['ep_kills']:.2f}")
    print(f"run: {args.out}")
    return 0


def _training_figures(run: Path) -> dict[str, float]:
    """How long the run trained: updates, environment steps, seconds (from metrics.jsonl)."""
    from .report import read_metrics

    records = read_metrics(run)
    train = [r for r in records if r["kind"] == "train"]
    actor = [r for r in records if r["kind"] == "actor"]
    out = {}
    if train:
        out["train_updates"] = train[-1]["step"]
        out["train_seconds"] = train[-1].get("elapsed_s", 0.0)
    if actor:
        out["train_env_steps"] = actor[-1]["env_steps"]
    return out


def _eval_run(ckpt: Path, args, baseline: dict[str, float] | None
              ) -> tuple[dict[str, Any], dict[str, float] | None]:
    """One run's test figures (and the random policy's in the same games, played once)."""
    from .evaluate import play, write_gif
    from .train import load_agent

    state = load_checkpoint(ckpt)
    cfg, model = load_agent(ckpt, args.scenario, state=state)
    result = play(model, cfg, args.episodes, args.epsilon, record=300 if args.gif else 0)
    figures = {"scenario": cfg.env.scenario, "checkpoint": str(ckpt), "epsilon": args.epsilon,
               "train_seed": cfg.train.seed, **result.summary(), **_training_figures(ckpt.parent)}
    trainer = state.get("trainer", {})
    if "step" in trainer:  # a training checkpoint: its update, and its validation figure
        figures["checkpoint_update"] = int(trainer["step"])
        if trainer.get("best") is not None and ckpt.name == "best.safetensors":
            figures["checkpoint_valid"] = float(trainer["best"])
    if args.baseline:
        if baseline is None:
            rand = play(model, cfg, args.episodes, 1.0).summary()
            baseline = {f"random_{k}": v for k, v in rand.items()
                        if k.startswith("mean_") or k == "std_return"}
        figures.update(baseline)
    if args.gif:
        write_gif(args.gif, result.frames[::2])
        figures["gif"] = args.gif
        args.gif = None  # the first run's first episode
    return figures, baseline


def _over_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several training runs (seeds) evaluated alike: each figure's mean over runs, its std
    over runs (``_std``) and the per-run values (``_per_seed``); ``runs``: every run's own."""
    out: dict[str, Any] = {"scenario": runs[0]["scenario"], "seeds": len(runs),
                           "train_seeds": [r["train_seed"] for r in runs],
                           "epsilon": runs[0]["epsilon"], "episodes": runs[0]["episodes"]}
    for key, value in runs[0].items():
        if key in out or not isinstance(value, float | int) or isinstance(value, bool):
            continue
        if all(key in r for r in runs):
            vals = [float(r[key]) for r in runs]
            out[key] = float(np.mean(vals))
            out[f"{key}_std"] = float(np.std(vals))
            out[f"{key}_per_seed"] = vals
    out["runs"] = runs
    return out


def cmd_eval(args) -> int:
    from .train import checkpoint_path

    ckpts = [checkpoint_path(run, args.checkpoint) for run in args.run]
    if len({c.resolve() for c in ckpts}) < len(ckpts):
        raise UserError(f"--run: the same checkpoint given twice ({', '.join(args.run)})")
    check_outputs([args.json, args.gif], ckpts, force=args.force)
    if args.episodes < 1:
        raise UserError(f"--episodes={args.episodes}: must be >= 1")
    runs, baseline = [], None
    for ckpt in ckpts:
        figures, baseline = _eval_run(ckpt, args, baseline)
        if runs and figures["scenario"] != runs[0]["scenario"]:
            raise UserError(f"{ckpt}: plays {figures['scenario']}, the first run "
                            f"{runs[0]['scenario']} (runs evaluated together share a scenario)")
        runs.append(figures)
    emit_results(runs[0] if len(runs) == 1 else _over_runs(runs), args.json)
    return 0


def cmd_diagnose(args) -> int:
    from .diagnose import diagnose
    from .train import checkpoint_path, load_agent

    ckpts = [checkpoint_path(run, args.checkpoint) for run in args.run]
    check_outputs([args.json], ckpts, force=args.force)
    if args.episodes < 0:
        raise UserError(f"--episodes={args.episodes}: must be >= 0")
    runs = [(str(c), *load_agent(c)) for c in ckpts]
    emit_results(diagnose(runs, args.episodes, args.epsilon, reference=not args.no_reference),
                 args.json)
    return 0


def cmd_record(args) -> int:
    from .evaluate import play, write_gif
    from .train import checkpoint_path, load_agent

    ckpt = checkpoint_path(args.run, args.checkpoint)
    check_outputs([args.out], [ckpt], force=args.force)
    if Path(args.out).suffix.lower() != ".gif":
        raise UserError(f"{args.out}: recordings are GIF files (name it .gif)")
    cfg, model = load_agent(ckpt, args.scenario)
    result = play(model, cfg, 1, args.epsilon, record=args.frames)
    write_gif(args.out, result.frames[::args.every])
    print(f"{args.out}: {len(result.frames[::args.every])} frames, "
          f"return {result.episodes[0]['return']:.1f}")
    return 0


def cmd_export(args) -> int:
    from .train import checkpoint_path, export_agent

    ckpt = checkpoint_path(args.run, args.checkpoint)
    prepare_out_file(args.out, [ckpt])  # never an input, nor a file of another run
    print(f"{export_agent(ckpt, args.out)}: config, float16 weights, learning curve")
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    cfg = _config(args)
    emit_results(run_bench(cfg, seconds=args.seconds), args.json)
    return 0


def cmd_demo(args) -> int:
    from .report import demo

    cfg = _config(args)
    print(f"report: {demo(cfg, Path(args.out), force=args.force, train_new=args.train)}")
    return 0


def cmd_ablation(args) -> int:
    from .report import ablation

    cfg = _config(args)
    if args.seeds < 1:
        raise UserError(f"--seeds={args.seeds}: must be >= 1")
    figures = ablation(cfg, Path(args.out), seeds=args.seeds, episodes=args.episodes)
    emit_results(figures, args.json)
    return 0


def _checkpoint_arg(c) -> None:
    c.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="of a run folder: best validation (if any) or last (default: best)")


def commands() -> Commands:
    cli = Commands("dldiy-doom-agent", sys.modules["dldiy_doom_agent"].__doc__, presets=PRESETS,
                   default_preset="quick", quiet_loggers=("matplotlib", "PIL"))
    scen = f"{', '.join(SCENARIOS)} or a .cfg file"

    def common(c, device: bool = True):
        c.add_argument("--scenario", help=f"{scen} (default: the config's)")
        if device:
            c.add_argument("--device", help="learner device: cpu, cuda, auto (default: auto)")

    c = cli.add("train", cmd_train, "train an agent (DRQN + game features [+ navigation])")
    common(c)
    c.add_argument("--out", required=True, help="run folder")
    c.add_argument("--resume", action="store_true", help="continue the run in --out")
    c.add_argument("--force", action="store_true", help="replace the run in --out")
    c = cli.add("eval", cmd_eval, "evaluation episodes of a trained run", config=False)
    c.add_argument("--run", required=True, nargs="+",
                   help="run folder or checkpoint file; several (e.g. one per training seed): "
                        "each figure's mean, std and per-seed values over them")
    _checkpoint_arg(c)
    c.add_argument("--scenario", help="play on another scenario with the same actions")
    c.add_argument("--episodes", type=int, default=10, help="test episodes per run")
    c.add_argument("--epsilon", type=float, default=0.05)
    add_output_args(c, flag="--json", required=False,
                    help="write the figures here (results file)")
    add_output_args(c, flag="--gif", required=False, help="also record the first episode here")
    c.add_argument("--baseline", action="store_true",
                   help="also play a random policy in the same games (random_* figures)")
    c = cli.add("diagnose", cmd_diagnose, "basic: where runs lose points on the validation "
                "games (greedy vs epsilon, tics, misses) and the strafe-then-fire reference",
                config=False)
    c.add_argument("--run", required=True, nargs="+", help="run folders or checkpoint files")
    _checkpoint_arg(c)
    c.add_argument("--episodes", type=int, default=0,
                   help="validation games (0: the scenario's number, 100 on basic)")
    c.add_argument("--epsilon", type=float, default=0.05)
    c.add_argument("--no-reference", action="store_true",
                   help="skip the exhaustive strafe-then-fire search")
    add_output_args(c, flag="--json", required=False,
                    help="write the figures here (results file)")
    c = cli.add("record", cmd_record, "record one episode as an animated GIF", config=False)
    c.add_argument("--run", required=True, help="run folder or checkpoint file")
    _checkpoint_arg(c)
    add_output_args(c, help="file.gif")
    c.add_argument("--scenario")
    c.add_argument("--epsilon", type=float, default=0.05)
    c.add_argument("--frames", type=int, default=600, help="frames kept at most")
    c.add_argument("--every", type=int, default=2, help="keep one frame in N")
    c = cli.add("export", cmd_export, "a small file of a run to ship (what demo loads)",
                config=False)
    c.add_argument("--run", required=True, help="run folder or checkpoint file")
    _checkpoint_arg(c)
    c.add_argument("--out", required=True, help="file.safetensors")
    c = cli.add("bench", cmd_bench, "env and learner speed: vector vs one env, fp32 vs bf16")
    common(c)
    c.add_argument("--json", help="write the figures here (results file)")
    c.add_argument("--seconds", type=float, default=10.0, help="time per measurement")
    c = cli.add("demo", cmd_demo, "the shipped basic agent (or --train): evaluation, GIF, report",
                default_preset="demo")
    common(c)
    c.add_argument("--out", default="reports/doom-agent", help="report folder")
    c.add_argument("--force", action="store_true", help="replace a demo run in --out")
    c.add_argument("--train", action="store_true",
                   help="train the demo preset here instead of playing the shipped agent")
    c = cli.add("ablation", cmd_ablation, "with vs without game features over seeds")
    common(c)
    c.add_argument("--out", required=True, help="folder for the runs and the report")
    c.add_argument("--seeds", type=int, default=3)
    c.add_argument("--episodes", type=int, default=20, help="evaluation episodes per run")
    c.add_argument("--json", help="write the figures here (results file)")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    return commands().main(argv)
