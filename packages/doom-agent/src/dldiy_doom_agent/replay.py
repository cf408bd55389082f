"""Sequence replay memory (paper, "Training": DRQN updates on sampled sequences).

Each actor writes its own ring of transitions, so consecutive slots are consecutive steps of
one stream (episodes follow each other; ``done`` marks the last step of one). A sample is
``seq_len + 1`` consecutive observations and the ``seq_len`` transitions between them; the
learner uses the first ``burn_in`` steps only to warm up the LSTM.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dldiy_core import UserError


class SequenceReplay:
    """``capacity`` transitions shared out over ``actors`` rings.

    A transition at slot t: observation ``screen[t]`` ``[C, H, W]`` uint8, ``variables[t]``
    ``[V]``, its game features ``[F]``, then the ``action``, ``reward``, ``nav_reward`` and
    ``done`` of the step taken from it.
    """

    FIELDS = ("screen", "variables", "features", "action", "reward", "nav_reward", "done")

    def __init__(self, capacity: int, actors: int, screen_shape: tuple[int, ...],
                 n_variables: int, n_features: int):
        per = capacity // actors
        if per < 2:
            raise UserError(f"rl.replay={capacity}: too small for {actors} actors")
        self.per, self.actors = per, actors
        self.data = {
            "screen": np.zeros((actors, per, *screen_shape), np.uint8),
            "variables": np.zeros((actors, per, n_variables), np.float32),
            "features": np.zeros((actors, per, n_features), np.uint8),
            "action": np.zeros((actors, per), np.int64),
            "reward": np.zeros((actors, per), np.float32),
            "nav_reward": np.zeros((actors, per), np.float32),
            "done": np.zeros((actors, per), bool),
        }
        self.head = np.zeros(actors, np.int64)
        self.count = np.zeros(actors, np.int64)
        self.added = 0

    def __len__(self) -> int:
        return int(self.count.sum())

    def add(self, rows: np.ndarray | None = None, **step: np.ndarray) -> None:
        """One step of every actor (each field ``[actors, ...]``), or of the actors ``rows``
        only (each field ``[len(rows), ...]``): the rings advance independently."""
        rows = np.arange(self.actors) if rows is None else np.asarray(rows)
        h = self.head[rows]
        for k in self.FIELDS:
            self.data[k][rows, h] = step[k]
        self.head[rows] = (h + 1) % self.per
        self.count[rows] = np.minimum(self.count[rows] + 1, self.per)
        self.added += len(rows)

    def can_sample(self, seq_len: int) -> bool:
        return bool((self.count > seq_len).any())

    def sample(self, batch: int, seq_len: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch`` sequences: observations ``[B, seq_len + 1, ...]``, transitions
        ``[B, seq_len]``, and ``resets [B, seq_len + 1]`` (a new episode starts at that step)."""
        starts_per_actor = np.maximum(self.count - seq_len, 0)
        if starts_per_actor.sum() == 0:
            raise RuntimeError("replay memory too small to sample from")
        actor = rng.choice(self.actors, size=batch, p=starts_per_actor / starts_per_actor.sum())
        offset = (rng.random(batch) * starts_per_actor[actor]).astype(np.int64)
        oldest = (self.head - self.count) % self.per
        idx = (oldest[actor][:, None] + offset[:, None] + np.arange(seq_len + 1)) % self.per
        a = actor[:, None]
        out = {k: self.data[k][a, idx] for k in ("screen", "variables", "features")}
        for k in ("action", "reward", "nav_reward", "done"):
            out[k] = self.data[k][a, idx[:, :-1]]
        out["resets"] = np.concatenate([np.zeros((batch, 1), bool), out["done"]], 1)
        return out

    def state_dict(self, arrays: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = {"head": self.head.copy(), "count": self.count.copy(),
                                 "added": self.added, "per": self.per}
        if arrays:
            state["data"] = {k: v.copy() for k, v in self.data.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the positions; the contents too when the checkpoint kept them (else the
        memory starts empty and refills)."""
        if int(state["per"]) != self.per:
            raise ValueError(f"replay of {state['per']} slots per actor, expected {self.per}")
        self.added = int(state["added"])
        if "data" in state:
            for k in self.FIELDS:
                self.data[k][...] = state["data"][k]
            self.head = np.array(state["head"], np.int64)
            self.count = np.array(state["count"], np.int64)
        else:
            self.head = np.zeros(self.actors, np.int64)
            self.count = np.zeros(self.actors, np.int64)
