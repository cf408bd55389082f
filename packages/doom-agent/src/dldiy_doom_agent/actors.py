"""Parallel actors feeding the replay memory, seen by the core Trainer as a BatchSource.

Before each learner update the actors take ``rl.env_steps_per_update`` environment steps
(epsilon-greedy on the current network, one vector step = one step of every actor); then a
batch of sequences is sampled. Acting follows the paper's split when navigation is on: the
action network acts while it predicts an enemy on screen (and has ammo), the navigation
network otherwise.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import DoomConfig
from .env import N_VARIABLES, make_vector_env
from .replay import SequenceReplay
from .scenarios import FEATURES

log = logging.getLogger(__name__)
EPISODE_KEYS = ("ep_return", "ep_kills", "ep_deaths", "ep_frags", "ep_tics")


@torch.inference_mode()
def act(model: nn.Module, screen: np.ndarray, variables: np.ndarray, state: Any,
        epsilon: float, rng: np.random.Generator, device: torch.device, features: bool = True
        ) -> tuple[np.ndarray, Any, np.ndarray | None]:
    """One step for ``N`` environments: ``screen [N, C, H, W]`` -> actions ``[N]``, the new
    LSTM state, and the predicted feature probabilities ``[N, F]`` (None without the head, or
    with ``features=False`` when no navigation network needs them)."""
    s = torch.from_numpy(screen).to(device)[:, None]
    v = torch.from_numpy(variables).to(device)[:, None]
    out = model(s, v, None, state, features or model.navigation is not None)
    greedy = out["q"][:, 0].argmax(-1)
    probs = torch.sigmoid(out["features"][:, 0]) if out["features"] is not None else None
    if out["nav_q"] is not None and probs is not None:
        navigate = (probs[:, 0] < 0.5) | (v[:, 0, 1] <= 0)
        nav_greedy = model.nav_actions[out["nav_q"][:, 0].argmax(-1)]
        greedy = torch.where(navigate, nav_greedy, greedy)
    actions = greedy.cpu().numpy()
    explore = rng.random(len(actions)) < epsilon
    if explore.any():
        actions[explore] = rng.integers(out["q"].shape[-1], size=int(explore.sum()))
    return actions, out["state"], probs.cpu().numpy() if probs is not None else None


def reset_state(state: Any, done: np.ndarray, device: torch.device) -> Any:
    """Zero the LSTM state of the environments whose episode just ended."""
    if state is None or not done.any():
        return state
    keep = torch.from_numpy(~done).to(device=device, dtype=state[0].dtype).view(1, -1, 1)
    return (state[0] * keep, state[1] * keep)


def pick(info: dict, key: str, done: np.ndarray) -> np.ndarray:
    """``info[key]`` per environment, from the finished episode where one just ended."""
    value = np.array(info[key])
    final = info.get("final_info")
    if final is not None and done.any():
        value = value.copy()
        value[done] = np.asarray(final[key])[done]
    return value


class Actors:
    """The Trainer's batch source: collect with the current network, sample sequences.

    ``model`` is the network being trained (acting uses it directly); ``target`` is copied
    from it every ``rl.target_every`` updates.
    """

    def __init__(self, cfg: DoomConfig, model: nn.Module, target: nn.Module,
                 screen_shape: tuple[int, ...]):
        self.cfg, self.model, self.target = cfg, model, target
        self.rank = int(os.environ.get("RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        rl = cfg.rl
        self.n = rl.actors
        self.replay = SequenceReplay(rl.replay, self.n, screen_shape, N_VARIABLES, len(FEATURES))
        self.rng = np.random.default_rng([cfg.train.seed, self.rank, 7])
        self.env_steps = 0
        self.resets = 0
        self.debt = 0
        self.finished: list[dict[str, float]] = []
        self.episodes = 0
        self.venv = None
        self.device = torch.device("cpu")

    # ---- acting ------------------------------------------------------------------------
    def epsilon(self) -> float:
        rl = self.cfg.rl
        frac = min(1.0, self.env_steps * self.world / max(rl.eps_steps, 1))
        return rl.eps_start + frac * (rl.eps_end - rl.eps_start)

    def _start(self) -> None:
        if self.venv is None:
            self.venv = make_vector_env(self.cfg.env, self.n)
        seed = self.cfg.train.seed * 100_003 + self.rank * 1009 + self.resets * 17
        self.resets += 1
        self.obs, info = self.venv.reset(seed=seed)
        self.features = np.array(info["features"])
        self.state = None

    def step(self) -> None:
        """One vector step of all actors, stored in the replay memory."""
        obs = self.obs
        was_training = self.model.training
        self.model.eval()
        actions, self.state, _ = act(self.model, obs["screen"], obs["variables"], self.state,
                                     self.epsilon(), self.rng, self.device, features=False)
        self.model.train(was_training)
        nxt, reward, term, trunc, info = self.venv.step(actions)
        done = np.logical_or(term, trunc)
        self.replay.add(screen=obs["screen"], variables=obs["variables"],
                        features=self.features, action=actions,
                        reward=np.asarray(reward, np.float32),
                        nav_reward=pick(info, "nav_reward", done).astype(np.float32),
                        done=done)
        for i in np.flatnonzero(done):
            self.finished.append({k: float(np.asarray(info["final_info"][k])[i])
                                  for k in EPISODE_KEYS})
        self.episodes += int(done.sum())
        self.state = reset_state(self.state, done, self.device)
        self.obs, self.features = nxt, np.array(info["features"])
        self.env_steps += self.n

    def pop_stats(self) -> dict[str, float]:
        """Actor figures since the last call: env steps, epsilon, and the mean of the
        episodes that ended (return in the scenario's units, kills, deaths, frags, tics)."""
        stats = {"env_steps": float(self.env_steps * self.world), "epsilon": self.epsilon(),
                 "episodes": float(self.episodes)}
        if self.finished:
            for k in EPISODE_KEYS:
                stats[k] = float(np.mean([e[k] for e in self.finished]))
            stats["ep_count"] = float(len(self.finished))
        self.finished = []
        return stats

    # ---- BatchSource -------------------------------------------------------------------
    def num_batches(self, epoch: int) -> int | None:
        return None

    def batches(self, epoch: int, start: int) -> Iterator[dict[str, torch.Tensor]]:
        rl, train = self.cfg.rl, self.cfg.train
        self.device = next(self.model.parameters()).device
        self._start()
        ready = max(rl.learning_starts // self.world, (rl.seq_len + 1) * self.n)
        while len(self.replay) < min(ready, self.replay.per * self.n):
            self.step()
        per_process = train.batch_size // self.world
        update = start
        while True:
            self.debt += rl.env_steps_per_update
            while self.debt >= self.n:
                self.step()
                self.debt -= self.n
            if update % rl.target_every == 0:
                self.target.load_state_dict(self.model.state_dict())
            sample = self.replay.sample(per_process, rl.seq_len, self.rng)
            yield {k: torch.from_numpy(v) for k, v in sample.items()}
            update += 1

    def close(self) -> None:
        if self.venv is not None:
            self.venv.close()
            self.venv = None

    # ---- checkpoint --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "episodes": self.episodes, "resets": self.resets,
                "debt": self.debt, "rng": self.rng.bit_generator.state,
                "replay": self.replay.state_dict(arrays=self.cfg.rl.save_replay)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env_steps, self.episodes = int(state["env_steps"]), int(state["episodes"])
        self.resets, self.debt = int(state["resets"]), int(state["debt"])
        self.rng.bit_generator.state = state["rng"]
        self.replay.load_state_dict(state["replay"])
