"""Where an agent loses points on basic, on the validation games only (never the test ones).

basic's reward (its map script): +106 for the kill, -5 a bullet, -1 a tic (``living_reward``);
an episode ends at the kill. A policy that strafes ``k`` steps one way and then fires loses the
tics of those steps and of its misses; the best such ``k`` per game, searched exhaustively at
the agent's frame skip, is an upper reference for what any policy of those three actions can
score in that game (with the agent's own actions, each strafe lasts ``frame_skip`` tics).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from dldiy_core import UserError

from .config import DoomConfig
from .env import make_env
from .evaluate import VALID_SEED, play, valid_episodes
from .scenarios import scenario

MAX_STRAFE_TICS = 64
"""Strafes tried before firing, in tics (the monster is reachable in under 50 here)."""


def strafe_then_fire(cfg: DoomConfig, episodes: int, seed: int = VALID_SEED
                     ) -> list[dict[str, float]]:
    """Per game ``seed + e``: the best return of "strafe ``k`` steps left or right, then fire
    (up to 3 shots)" over ``k = 0 .. MAX_STRAFE_TICS / frame_skip``, and that ``k``; with
    ``env.fire_combos``, the first shot may also ride on the ``k``-th strafe."""
    sc = scenario(cfg.env.scenario, cfg.env.fire_combos)
    if sc.name != "basic":
        raise UserError(f"env.scenario={cfg.env.scenario}: the strafe-then-fire reference is "
                        "for basic (its actions: left, right, fire)")
    fire = 2  # actions: left, right, fire (then, with fire_combos, left + fire, right + fire)
    ride = (False, True) if cfg.env.fire_combos else (False,)
    env = make_env(cfg.env)
    best = []
    try:
        for e in range(episodes):
            found = {"return": -np.inf, "strafes": -1.0}
            for direction, k, combo in itertools.product(
                    (0, 1), range(MAX_STRAFE_TICS // cfg.env.frame_skip + 1), ride):
                if combo and k == 0:
                    continue
                plan = [direction] * k + [fire] * 3
                if combo:
                    plan[k - 1] = 3 + direction
                env.reset(seed=seed + e)
                done, steps, info = False, 0, {}
                while not done and steps < len(plan):
                    _, _, done, _, info = env.step(plan[steps])
                    steps += 1
                if done and info["ep_kills"] == 1 and info["ep_return"] > found["return"]:
                    found = {"return": float(info["ep_return"]), "strafes": float(k)}
            best.append(found)
    finally:
        env.close()
    return best


def diagnose(runs: list[tuple[str, DoomConfig, torch.nn.Module]], episodes: int = 0,
             epsilon: float = 0.05, reference: bool = True) -> dict[str, Any]:
    """Each run's validation figures at ``epsilon`` (the training's own check: same games, same
    random draws) and greedy (epsilon 0): return, tics, shots (basic's pistol fires at most
    one bullet a step), misses (shots beyond the kill); with ``reference``, the
    strafe-then-fire upper reference in the same games.
    ``runs``: (name, config, network) of runs on the same scenario and frame skip."""
    cfg0 = runs[0][1]
    n = episodes or valid_episodes(cfg0)
    out: dict[str, Any] = {"scenario": cfg0.env.scenario, "frame_skip": cfg0.env.frame_skip,
                           "episodes": n, "epsilon": epsilon, "valid_seed": VALID_SEED,
                           "runs": []}
    for name, cfg, model in runs:
        if (cfg.env.scenario, cfg.env.frame_skip) != (cfg0.env.scenario, cfg0.env.frame_skip):
            raise UserError(f"{name}: plays {cfg.env.scenario} at frame skip "
                            f"{cfg.env.frame_skip}, the first run {cfg0.env.scenario} at "
                            f"{cfg0.env.frame_skip}")
        row: dict[str, Any] = {"run": name, "train_seed": cfg.train.seed}
        for tag, eps in (("", epsilon), ("greedy_", 0.0)):
            s = play(model, cfg, n, eps, seed=VALID_SEED).summary()
            row.update({f"{tag}{k}": s[f"mean_{k}"] for k in ("return", "tics", "shots", "kills")})
            row[f"{tag}misses"] = s["mean_shots"] - s["mean_kills"]
        out["runs"].append(row)
    for key in out["runs"][0]:
        if key not in ("run", "train_seed"):
            vals = [r[key] for r in out["runs"]]
            out[key] = float(np.mean(vals))
            out[f"{key}_std"] = float(np.std(vals))
            out[f"{key}_per_seed"] = vals
    if reference:
        ref = strafe_then_fire(cfg0, n)
        out["reference_return"] = float(np.mean([r["return"] for r in ref]))
        out["reference_strafes"] = float(np.mean([r["strafes"] for r in ref]))
        out["greedy_gap_to_reference"] = out["reference_return"] - out["greedy_return"]
        out["epsilon_cost"] = out["greedy_return"] - out["return"]
    return out
