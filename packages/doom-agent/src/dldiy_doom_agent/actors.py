"""Parallel actors feeding the replay memory, seen by the core Trainer as a BatchSource.

Before each learner update the actors take ``rl.env_steps_per_update`` environment steps
(epsilon-greedy on the current network, one vector step = one step of every actor); then a
batch of sequences is sampled. Acting follows the paper's split when navigation is on: the
action network acts while it predicts an enemy on screen (and has ammo), the navigation
network otherwise.

Two ways to collect (``rl.overlap``):

* sequential: the network acts for all actors at once (one batched forward), then all games
  step in their worker processes while this process waits;
* overlapped (2 actors or more): the actors form two groups with a vector environment each;
  the network acts for group B while group A's games step, then for A while B's step, so the
  forward and the games run at the same time on different cores. The same transitions are
  stored (each actor's ring gets its steps in order, with the same episode boundaries). One
  group's step is always in flight, also while the learner updates: its actions were chosen
  by the weights of one update before, as with distributed actors.

When the learner runs under bf16 (or fp16) autocast, acting runs the same arithmetic from a
copy of the weight matrices cast once per learner update (:class:`ActingNet`). With the games
in worker processes the cast runs while they step, so the first step after an update acts
with the weights of one update before (in both modes).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import DoomConfig
from .env import N_VARIABLES, make_vector_env
from .models import FLOAT32_HEADS
from .replay import SequenceReplay
from .scenarios import FEATURES

log = logging.getLogger(__name__)
EPISODE_KEYS = ("ep_return", "ep_kills", "ep_deaths", "ep_frags", "ep_tics")
LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}


@torch.inference_mode()
def act(model: nn.Module, screen: np.ndarray, variables: np.ndarray, state: Any,
        epsilon: float, rng: np.random.Generator, device: torch.device, features: bool = True,
        autocast: torch.dtype | None = None) -> tuple[np.ndarray, Any, np.ndarray | None]:
    """One step for ``N`` environments: ``screen [N, C, H, W]`` -> actions ``[N]``, the new
    LSTM state, and the predicted feature probabilities ``[N, F]`` (None without the head, or
    with ``features=False`` when no navigation network needs them; then the Q-values come
    from ``DRQN.step``, in the weights' dtype). ``autocast``: run the full forward under
    autocast to this dtype (as the learner does with ``train.precision``)."""
    if not features and model.navigation is None:  # the Q-values only: the lean step
        q, state = model.action.step(torch.from_numpy(screen).to(device),
                                     torch.from_numpy(variables).to(device), state)
        actions = q.argmax(-1).cpu().numpy()
        explore = rng.random(len(actions)) < epsilon
        if explore.any():
            actions[explore] = rng.integers(q.shape[-1], size=int(explore.sum()))
        return actions, state, None
    s = torch.from_numpy(screen).to(device)[:, None]
    v = torch.from_numpy(variables).to(device)[:, None]
    with torch.autocast(device.type, dtype=autocast or torch.bfloat16,
                        enabled=autocast is not None):
        out = model(s, v, None, state, True)
    greedy = out["q"][:, 0].argmax(-1)
    probs = torch.sigmoid(out["features"][:, 0].float()) if out["features"] is not None else None
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


class ActingNet:
    """The network the actors run: ``model`` itself, or under ``precision`` bf16/fp16 a copy
    whose weight matrices are cast once per learner update.

    The learner's autocast casts every convolution and linear weight to bf16 at each call;
    acting does the same arithmetic (same casts, same float32 Q heads and LSTM cell) from
    weights cast when they change, not at every step. In the quick preset a forward on two
    frames is mostly the reading of the LSTM's input matrix (2306 x 1024: 9 MB in float32,
    4.5 MB in bf16). Biases and the float32 heads are the trained tensors themselves (shared,
    not copied). ``features``: acting reads the game-feature head (only to switch to the
    navigation network); without it that head's copy is not refreshed.

    Call :meth:`updated` after each learner update; the next :meth:`net` refreshes the copy.
    """

    def __init__(self, model: nn.Module, precision: str, features: bool):
        self.model, self.dtype = model, LOW_PRECISION.get(precision)
        self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.stale = False
        # Arnold has no dropout nor batch norm (train and eval modes compute the same); a
        # network with either acts from a float32 copy in eval mode
        modal = any(isinstance(m, (nn.modules.dropout._DropoutNd,
                                   nn.modules.batchnorm._BatchNorm)) for m in model.modules())
        self.copy: nn.Module | None = None
        if self.dtype is None and not modal:
            return
        net = copy.deepcopy(model).eval()
        for name, p in model.named_parameters():
            owner, _, attr = name.rpartition(".")
            module = net.get_submodule(owner)
            if p.dim() >= 2 and not name.startswith(FLOAT32_HEADS) or self.dtype is None:
                low = p.detach().to(self.dtype or p.dtype, copy=True)
                module._parameters[attr] = nn.Parameter(low, requires_grad=False)
                if features or not name.startswith("action.features."):
                    self.pairs.append((p, low))
            else:
                module._parameters[attr] = p  # shared with the network being trained
        self.copy = net

    def updated(self) -> None:
        """The network being trained changed (a learner update, a checkpoint loaded)."""
        self.stale = True

    @torch.no_grad()
    def refresh(self) -> None:
        """Cast the weights into the copy if they changed since the last time."""
        if self.stale and self.copy is not None:
            for p, low in self.pairs:
                low.copy_(p)
        self.stale = False

    def net(self, refresh: bool = True) -> nn.Module:
        """The network to act with, its copy refreshed first if the weights changed (with
        ``refresh=False``: as it is, possibly one update old)."""
        if self.copy is None:
            return self.model
        if refresh:
            self.refresh()
        return self.copy


@dataclass
class Group:
    """Actors ``rows`` with one vector environment; ``sent``: the observation, features and
    actions of the step in flight."""

    rows: np.ndarray
    venv: Any
    workers: bool = False
    """The games run in worker processes (an AsyncVectorEnv)."""
    obs: dict | None = None
    features: np.ndarray | None = None
    state: Any = None
    sent: tuple | None = None


def start_seed(train_seed: int, rank: int, resets: int) -> int:
    """Game seed of the first actor when the actors' games (re)start; actor ``i`` plays
    ``+ i``, the episodes that follow take the engine's next seeds."""
    return train_seed * 100_003 + rank * 1009 + resets * 17


class Actors:
    """The Trainer's batch source: collect with the current network, sample sequences.

    ``model`` is the network being trained (acting uses it, or :class:`ActingNet`'s cast
    copy); ``target`` is copied from it every ``rl.target_every`` updates.
    """

    def __init__(self, cfg: DoomConfig, model: nn.Module, target: nn.Module,
                 screen_shape: tuple[int, ...]):
        self.cfg, self.model, self.target = cfg, model, target
        self.rank = int(os.environ.get("RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        rl = cfg.rl
        self.n = rl.actors
        self.overlap = rl.overlap and self.n >= 2
        self.replay = SequenceReplay(rl.replay, self.n, screen_shape, N_VARIABLES, len(FEATURES))
        self.rng = np.random.default_rng([cfg.train.seed, self.rank, 7])
        self.env_steps = 0
        self.resets = 0
        self.debt = 0
        self.finished: list[dict[str, float]] = []
        self.episodes = 0
        self.groups: list[Group] = []
        self.acting: ActingNet | None = None
        self.device = torch.device("cpu")

    # ---- acting ------------------------------------------------------------------------
    def epsilon(self) -> float:
        rl = self.cfg.rl
        frac = min(1.0, self.env_steps * self.world / max(rl.eps_steps, 1))
        return rl.eps_start + frac * (rl.eps_end - rl.eps_start)

    def _start(self) -> None:
        """Start (or restart) the games: new episodes, zero LSTM states; in overlapped mode
        group A's first step is sent."""
        self.device = next(self.model.parameters()).device
        navigation = getattr(self.model, "navigation", None) is not None
        self.acting = ActingNet(self.model, self.cfg.train.precision, features=navigation)
        self.acting.updated()
        if not self.groups:
            parts = np.array_split(np.arange(self.n), 2) if self.overlap else [np.arange(self.n)]
            workers = self.overlap or self.n > 1
            self.groups = [Group(rows, make_vector_env(self.cfg.env, len(rows), workers),
                                 workers) for rows in parts]
        for g in self.groups:
            if g.workers and g.sent is not None:  # a step in flight: finish it, unstored
                g.venv.step_wait()
        seed = start_seed(self.cfg.train.seed, self.rank, self.resets)
        self.resets += 1
        for g in self.groups:  # actor i plays game seed ``seed + i`` in both modes
            g.obs, info = g.venv.reset(seed=seed + int(g.rows[0]))
            g.features, g.state, g.sent = np.array(info["features"]), None, None
        if self.overlap:
            self._send(self.groups[0])

    def _send(self, g: Group) -> None:
        """Choose group ``g``'s actions from its observation; send them to its games.

        Games in worker processes: the acting copy is refreshed after the actions are sent,
        while the games step (this process would only wait), so the first step after a
        learner update acts with the weights of one update before. Games in this process
        (one actor): refreshed before acting.
        """
        lag = g.workers
        actions, g.state, _ = act(self.acting.net(refresh=not lag), g.obs["screen"],
                                  g.obs["variables"], g.state, self.epsilon(), self.rng,
                                  self.device, features=False, autocast=self.acting.dtype)
        g.sent = (g.obs, g.features, actions)
        if lag:
            g.venv.step_async(actions)
            self.acting.refresh()

    def _store(self, g: Group) -> None:
        """Wait for group ``g``'s step; store its transitions in the actors' rings."""
        obs, features, actions = g.sent
        if g.workers:
            nxt, reward, term, trunc, info = g.venv.step_wait()
        else:
            nxt, reward, term, trunc, info = g.venv.step(actions)
        g.sent = None
        done = np.logical_or(term, trunc)
        self.replay.add(rows=g.rows, screen=obs["screen"], variables=obs["variables"],
                        features=features, action=actions,
                        reward=np.asarray(reward, np.float32),
                        nav_reward=pick(info, "nav_reward", done).astype(np.float32),
                        done=done)
        for i in np.flatnonzero(done):
            self.finished.append({k: float(np.asarray(info["final_info"][k])[i])
                                  for k in EPISODE_KEYS})
        self.episodes += int(done.sum())
        g.state = reset_state(g.state, done, self.device)
        g.obs, g.features = nxt, np.array(info["features"])
        self.env_steps += len(g.rows)

    def step(self) -> None:
        """One step of every actor, stored in the replay memory.

        Overlapped: on entry group A's step is in flight and B's observation is ready; act
        for B while A's games step, store A, act for A while B's games step, store B.
        """
        if not self.overlap:
            g = self.groups[0]
            self._send(g)
            self._store(g)
            return
        a, b = self.groups
        self._send(b)
        self._store(a)
        self._send(a)
        self._store(b)

    def collect(self, env_steps: int) -> None:
        """Take ``env_steps`` more environment steps, in whole steps of every actor (the
        remainder carries over to the next call)."""
        self.debt += env_steps
        while self.debt >= self.n:
            self.step()
            self.debt -= self.n

    def updated(self) -> None:
        """The network being trained changed: acting refreshes its copy before the next step."""
        if self.acting is not None:
            self.acting.updated()

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
        self._start()
        ready = max(rl.learning_starts // self.world, (rl.seq_len + 1) * self.n)
        while len(self.replay) < min(ready, self.replay.per * self.n):
            self.step()
        per_process = train.batch_size // self.world
        update = start
        while True:
            self.collect(rl.env_steps_per_update)
            if update % rl.target_every == 0:
                self.target.load_state_dict(self.model.state_dict())
            sample = self.replay.sample(per_process, rl.seq_len, self.rng)
            yield {k: torch.from_numpy(v) for k, v in sample.items()}
            self.updated()  # the Trainer has taken an optimizer step with this batch
            update += 1

    def close(self) -> None:
        for g in self.groups:
            if g.workers and g.sent is not None:
                g.venv.step_wait()  # the step in flight (not stored)
            g.venv.close()
        self.groups = []

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
