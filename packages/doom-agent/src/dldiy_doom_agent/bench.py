"""``dldiy-doom-agent bench``: environment and learner speed, each with its baseline, one run.

* ``raw_env_steps_per_s``: one game, random actions, nothing else (the ceiling).
* ``vector_env_steps_per_s_2actors``: two games in an AsyncVectorEnv, random actions.
* ``train_env_steps_per_s_1actor`` / ``_2actors``: the actors as training runs them (network
  forward per step, epsilon-greedy, replay insertion, the acting copy refreshed once per
  ``rl.env_steps_per_update`` steps as after an update), without the updates themselves;
  ``_2actors`` is the config's mode (``rl.overlap``), ``_2actors_sequential`` and
  ``_2actors_overlap`` both modes, ``_2actors_fp32_acting`` acting from the float32 weights.
* The figures above are timed in alternating windows (:func:`interleaved`: four rounds of
  ``seconds / 4`` each), so a change in a shared machine's load hits the ceiling and the
  actors alike; ``collect_fraction_of_raw_2actors`` divides two of them.
* ``learner_updates_per_s_fp32`` / ``_bf16``: Trainer steps (forward, target forward,
  backward, RMSProp) on replay sequences, autocast off and on.
* ``train_loop_env_steps_per_s``: collection and updates interleaved at the config's ratio.
* ``load_average_1min_start`` / ``_end``: the machine's load average around the run. Other
  jobs depress the one-process ceiling more than the multi-process actors (which get more
  of a loaded machine's share), so the collection fraction reads high under load.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from dldiy_core import TrainConfig, Trainer

from .actors import Actors
from .config import DoomConfig
from .env import make_env, make_vector_env
from .loss import ArnoldLoss
from .scenarios import scenario
from .train import build_model, screen_shape


def _timed(fn, seconds: float) -> tuple[int, float]:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n == 0:
        n += fn()
    return n, time.perf_counter() - t0


Step = Callable[[], int]


def raw_env(cfg: DoomConfig) -> tuple[Step, Callable[[], None]]:
    """One game, random actions: ``(step, close)``, ``step()`` returns the env steps taken."""
    env = make_env(cfg.env)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step() -> int:
        _, _, done, _, _ = env.step(int(rng.integers(env.action_space.n)))
        if done:
            env.reset()
        return 1

    return step, env.close


def vector_env(cfg: DoomConfig, n_envs: int) -> tuple[Step, Callable[[], None]]:
    """``n_envs`` games in an AsyncVectorEnv, random actions."""
    venv = make_vector_env(cfg.env, n_envs)
    venv.reset(seed=0)

    def step() -> int:
        venv.step(venv.action_space.sample())
        return n_envs

    return step, venv.close


def training_actors(cfg: DoomConfig, n_actors: int, overlap: bool | None = None
                    ) -> tuple[Step, Callable[[], None]]:
    """The actors as training runs them, less the learner's work: ``rl.env_steps_per_update``
    steps at a time, the acting copy refreshed after each as after an update (``overlap``:
    override ``rl.overlap``)."""
    c = copy.deepcopy(cfg)
    c.rl.actors = n_actors
    if overlap is not None:
        c.rl.overlap = overlap
    model = build_model(c)
    actors = Actors(c, model, copy.deepcopy(model), screen_shape(c))
    actors._start()
    actors.step()

    def step() -> int:
        before = actors.env_steps
        actors.collect(c.rl.env_steps_per_update)
        actors.updated()
        return actors.env_steps - before

    return step, actors.close


def interleaved(figures: dict[str, tuple[Step, Callable[[], None]]], seconds: float,
                rounds: int = 4) -> dict[str, float]:
    """Env steps per second of each figure, timed in ``rounds`` alternating windows of
    ``seconds / rounds`` (so a change in the machine's load hits every figure alike); all
    are closed at the end."""
    steps = dict.fromkeys(figures, 0)
    spent = dict.fromkeys(figures, 0.0)
    try:
        for _ in range(rounds):
            for name, (step, _) in figures.items():
                n, dt = _timed(step, seconds / rounds)
                steps[name] += n
                spent[name] += dt
    finally:
        for _, close in figures.values():
            close()
    return {name: steps[name] / spent[name] for name in figures}


def learner_speed(cfg: DoomConfig, precision: str, seconds: float,
                  with_env: bool = False) -> tuple[float, float]:
    """Updates per second (and env steps per second when ``with_env``)."""
    c = copy.deepcopy(cfg)
    c.train = dataclasses.replace(c.train, precision=precision)
    sc = scenario(c.env.scenario, c.env.fire_combos)
    torch.manual_seed(0)
    model = build_model(c)
    target = copy.deepcopy(model).requires_grad_(False)
    actors = Actors(c, model, target, screen_shape(c))
    nav = sc.nav_actions if model.navigation is not None else None
    tc = TrainConfig(max_steps=1, batch_size=c.train.batch_size, precision=precision,
                     grad_clip=c.train.grad_clip, device=c.train.device, progress=False)
    trainer = Trainer(model, torch.optim.RMSprop(model.parameters(), lr=c.rl.lr),
                      ArnoldLoss(target, c, nav, len(sc.actions)), tc, None)
    target.to(trainer.device)
    c.rl.learning_starts = max((c.rl.seq_len + 1) * c.rl.actors * 4, 64)
    source = actors.batches(0, 0)
    batch = next(source)
    trainer.train_step(batch)  # warm-up
    steps0 = actors.env_steps

    def update() -> int:
        trainer.train_step(next(source) if with_env else batch)
        return 1

    n, dt = _timed(update, seconds)
    env_rate = (actors.env_steps - steps0) / dt
    actors.close()
    return n / dt, env_rate


def run_bench(cfg: DoomConfig, seconds: float = 10.0) -> dict:
    load_start = os.getloadavg()[0]  # the machine may be shared: its load, recorded
    figures = {"raw_env_steps_per_s": raw_env(cfg),
               "vector_env_steps_per_s_2actors": vector_env(cfg, 2),
               "train_env_steps_per_s_1actor": training_actors(cfg, 1),
               "train_env_steps_per_s_2actors_sequential": training_actors(cfg, 2, False),
               "train_env_steps_per_s_2actors_overlap": training_actors(cfg, 2, True)}
    if cfg.train.precision != "fp32":  # acting from the float32 weights, without the cast copy
        fp32 = copy.deepcopy(cfg)
        fp32.train = dataclasses.replace(fp32.train, precision="fp32")
        figures["train_env_steps_per_s_2actors_fp32_acting"] = training_actors(fp32, 2)
    rates = interleaved(figures, seconds)
    out = {"scenario": cfg.env.scenario, "screen": list(screen_shape(cfg)),
           "frame_skip": cfg.env.frame_skip, **rates}
    chosen = "overlap" if cfg.rl.overlap else "sequential"
    out["train_env_steps_per_s_2actors"] = out[f"train_env_steps_per_s_2actors_{chosen}"]
    out["collect_fraction_of_raw_2actors"] = (out["train_env_steps_per_s_2actors"]
                                              / out["raw_env_steps_per_s"])
    fp32, _ = learner_speed(cfg, "fp32", seconds)
    bf16, _ = learner_speed(cfg, "bf16", seconds)
    out.update({"learner_updates_per_s_fp32": fp32, "learner_updates_per_s_bf16": bf16,
                "bf16_speedup": bf16 / fp32, "learner_updates_per_s": max(fp32, bf16)})
    updates, env_rate = learner_speed(cfg, cfg.train.precision, seconds, with_env=True)
    out.update({"train_loop_updates_per_s": updates, "train_loop_env_steps_per_s": env_rate,
                "batch_size": cfg.train.batch_size, "seq_len": cfg.rl.seq_len,
                "lstm": cfg.model.lstm, "actors": cfg.rl.actors,
                "env_steps_per_update": cfg.rl.env_steps_per_update,
                "overlap": cfg.rl.overlap, "precision": cfg.train.precision,
                "torch_threads": torch.get_num_threads(), "seconds_per_figure": seconds,
                "env_figure_windows": 4, "load_average_1min_start": load_start,
                "load_average_1min_end": os.getloadavg()[0]})
    return out
