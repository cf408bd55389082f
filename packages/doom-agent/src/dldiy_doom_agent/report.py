"""The demo (the shipped basic agent or a short training, evaluation against a random policy,
GIF, curves, one report page) and the game-feature ablation (with vs without, over seeds,
mean +- std)."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from dldiy_core import Report, UserError, load_checkpoint, to_dict

from .config import DoomConfig
from .evaluate import EvalResult, play, valid_episodes, write_gif
from .scenarios import FEATURES
from .train import load_agent, train

log = logging.getLogger(__name__)


def read_metrics(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def curve(records: list[dict], key: str, kind: str = "actor") -> tuple[list[float], list[float]]:
    """``(env_steps, value)`` of the records of ``kind`` that have ``key``."""
    rows = [r for r in records if r["kind"] == kind and key in r]
    return [r["env_steps"] for r in rows], [r[key] for r in rows]


def train_or_resume(cfg: DoomConfig, run: Path, force: bool = False) -> None:
    """Train into ``run``; a run already there with the same config is resumed (finished:
    nothing to do) instead of refused, so a command can be rerun after an interruption."""
    done = (run / "checkpoint.safetensors").exists() and not force
    train(cfg, run, resume=done, force=force)


def _policy_rows(results: dict[str, EvalResult]) -> list[list[Any]]:
    rows = []
    for name, res in results.items():
        s = res.summary()
        rows.append([name, s.get("mean_return", 0.0), s.get("std_return", 0.0),
                     s.get("mean_kills", 0.0), s.get("mean_deaths", 0.0), s.get("kd", "—"),
                     s.get("mean_tics", 0.0)])
    return rows


def _add_gif(r: Report, name: str, frames: list[np.ndarray], caption: str) -> None:
    write_gif(r.out_dir / f"{name}.gif", frames)
    r.attach(f"{name}.gif", caption)


DEMO_AGENT = Path(__file__).parent / "demo" / "basic.safetensors"
"""The demo's agent: trained on basic by the project (command in the README), exported with
``export`` (config, float16 weights, learning curve)."""


def demo(cfg: DoomConfig, out: Path, force: bool = False, train_new: bool = False) -> Path:
    """Play the shipped basic agent (or, with ``train_new`` or when none ships, train the
    ``demo`` preset first), evaluate it against a random policy, record, report."""
    if train_new or not DEMO_AGENT.exists():
        run = out / "run"
        train_or_resume(cfg, run, force)
        cfg, model = load_agent(run)
        records = read_metrics(run)
        x, y = curve(records, "ep_return")
        what = (f"A {cfg.train.max_steps}-update training on {cfg.env.scenario} (settings in "
                f"{run / 'config.json'}): far too short to learn, it shows the whole path.")
    else:
        settings = cfg.eval
        state = load_checkpoint(DEMO_AGENT)
        cfg, model = load_agent(DEMO_AGENT, state=state)
        cfg.eval = settings  # the episodes and epsilon asked for here
        records, x, y = [], state["curve_env_steps"], state["curve_return"]
        what = (f"The agent shipped with the package, trained on {cfg.env.scenario} by the "
                f"project's quick recipe ({cfg.train.max_steps} updates, "
                f"{int(x[-1]) if x else 0} environment steps; `--train` trains one here "
                "instead).")
    episodes = valid_episodes(cfg)
    trained = play(model, cfg, episodes, cfg.eval.epsilon, record=240)
    rand = play(model, cfg, episodes, 1.0)  # the same games
    r = Report(out, f"doom-agent: Arnold (DRQN + game features) on {cfg.env.scenario}")
    st, sr = trained.summary(), rand.summary()
    r.headline(f"mean reward, trained (eps {cfg.eval.epsilon})", st["mean_return"])
    r.headline("mean reward, random policy", sr["mean_return"])
    r.headline("mean kills per episode, trained", st["mean_kills"])
    if "enemy_recall" in st:
        r.headline("enemy visible: recall", st["enemy_recall"])
    r.text(f"{what} Then {episodes} evaluation episodes of the agent and of a random policy "
           "in the same games.")
    r.section("Evaluation")
    r.table(["policy", "mean reward", "std", "kills", "deaths", "K/D", "tics"],
            _policy_rows({"trained": trained, "random": rand}))
    feat_rows = [[name, st.get(f"{name}_precision", float("nan")),
                  st.get(f"{name}_recall", float("nan"))] for name in FEATURES
                 if f"{name}_recall" in st or f"{name}_precision" in st]
    if feat_rows:
        r.table(["game feature", "precision", "recall"], feat_rows,
                caption="feature head vs the labels buffer, evaluation episodes")
    r.section("Learning curves")
    if x:
        r.line_plot("episode_return", {"actors' episodes": (x, y)}, xlabel="environment steps",
                    ylabel="episode reward", caption="training episodes (epsilon-greedy)")
    tr = [h for h in records if h["kind"] == "train"]
    if tr:
        series = {"TD loss": ([h["step"] for h in tr], [h["td"] for h in tr])}
        if "feature_bce" in tr[0]:
            series["feature BCE"] = ([h["step"] for h in tr], [h["feature_bce"] for h in tr])
        r.line_plot("losses", series, xlabel="update", ylabel="loss", caption="learner losses")
    r.section("An evaluation episode")
    if trained.frames:
        _add_gif(r, "episode", trained.frames[::2], "trained agent, first evaluation episode")
    return r.write()


def ablation(cfg: DoomConfig, out: Path, seeds: int = 3, episodes: int = 20) -> dict[str, Any]:
    """Train with and without the game-feature head for ``seeds`` seeds each (same settings
    otherwise), evaluate each run, report mean +- std and both learning curves.

    Each run lives in ``out/features-{on,off}-seed{k}``; a rerun resumes or reuses them.
    """
    if cfg.model.navigation == "on":
        raise UserError("ablation: model.navigation=on needs the game features; use off/auto")
    arms: dict[str, list[dict[str, float]]] = {"with features": [], "without features": []}
    curves: dict[str, list[tuple[list[float], list[float]]]] = {k: [] for k in arms}
    for on, arm in ((True, "with features"), (False, "without features")):
        for seed in range(seeds):
            c = copy.deepcopy(cfg)
            c.model.game_features = on
            c.model.navigation = "off"
            c.train.seed = cfg.train.seed + seed
            run = out / f"features-{'on' if on else 'off'}-seed{seed}"
            log.info("ablation: %s, seed %d -> %s", arm, c.train.seed, run)
            train_or_resume(c, run)
            _, model = load_agent(run)
            res = play(model, c, episodes, c.eval.epsilon, seed=50_000 + seed)
            arms[arm].append(res.summary())
            curves[arm].append(curve(read_metrics(run), "ep_kills"))
    figures: dict[str, Any] = {"scenario": cfg.env.scenario, "seeds": seeds,
                               "episodes_per_run": episodes, "updates": cfg.train.max_steps,
                               "config": to_dict(cfg)}
    for arm, runs in arms.items():
        key = "features_on" if arm == "with features" else "features_off"
        for m in ("mean_return", "mean_kills", "mean_tics"):
            vals = [s[m] for s in runs]
            figures[f"{key}_{m}"] = float(np.mean(vals))
            figures[f"{key}_{m}_std"] = float(np.std(vals))
            figures[f"{key}_{m}_per_seed"] = vals
        figures[f"{key}_curve"] = _mean_curve(curves[arm])
    _ablation_report(out, figures, seeds)
    return figures


def _mean_curve(curves: list[tuple[list[float], list[float]]], points: int = 20
                ) -> dict[str, list[float]]:
    """Mean and std over seeds of the actors' kills per episode, on a common step grid."""
    curves = [c for c in curves if c[0]]
    if not curves:
        return {"env_steps": [], "mean": [], "std": []}
    end = min(c[0][-1] for c in curves)
    grid = np.linspace(min(c[0][0] for c in curves), end, points)
    ys = np.array([np.interp(grid, x, y) for x, y in curves])
    return {"env_steps": grid.tolist(), "mean": ys.mean(0).tolist(), "std": ys.std(0).tolist()}


def _ablation_report(out: Path, f: dict[str, Any], seeds: int) -> Path:
    r = Report(out, f"doom-agent: game-feature ablation on {f['scenario']}")
    for key, name in (("features_on", "with features"), ("features_off", "without features")):
        r.headline(f"kills per episode, {name}",
                   f"{f[f'{key}_mean_kills']:.2f} ± {f[f'{key}_mean_kills_std']:.2f}")
    r.text(f"{seeds} seeds per arm, {f['updates']} updates each, {f['episodes_per_run']} "
           "evaluation episodes per run; mean ± std over seeds.")
    rows = []
    for key, name in (("features_on", "with features"), ("features_off", "without features")):
        rows.append([name, f[f"{key}_mean_return"], f[f"{key}_mean_return_std"],
                     f[f"{key}_mean_kills"], f[f"{key}_mean_kills_std"], f[f"{key}_mean_tics"]])
    r.table(["arm", "reward", "± std", "kills", "± std", "tics survived"], rows)
    fig_series = {}
    for key, name in (("features_on", "with features"), ("features_off", "without features")):
        c = f[f"{key}_curve"]
        if c["env_steps"]:
            fig_series[name] = (c["env_steps"], c["mean"])
    if fig_series:
        r.line_plot("ablation_curves", fig_series, xlabel="environment steps",
                    ylabel="kills per training episode",
                    caption="mean over seeds of the actors' episodes")
    return r.write()
