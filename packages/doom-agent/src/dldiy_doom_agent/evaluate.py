"""Evaluation episodes at a small epsilon: reward, kills, deaths, K/D, frags, survival, and the
game-feature detector's precision and recall against the labels buffer; optional recording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dldiy_core import atomic_path

from .actors import act
from .config import DoomConfig
from .env import make_env
from .scenarios import FEATURES, scenario

TEST_SEED = 12_345
"""Game seed of the first test episode (``eval``; episode ``e`` plays ``TEST_SEED + e``)."""
VALID_SEED = 2_000_000_000
"""Game seed of the first validation episode during training, the same at every check (so
checkpoints are compared on the same games); far from the test seeds and from the actors'
start seeds (``actors.start_seed``)."""


def valid_episodes(cfg: DoomConfig) -> int:
    """Validation episodes per check: ``eval.episodes``, or the scenario's default when 0."""
    return cfg.eval.episodes or scenario(cfg.env.scenario).valid_episodes


@dataclass
class EvalResult:
    episodes: list[dict[str, float]] = field(default_factory=list)
    counts: np.ndarray = field(default_factory=lambda: np.zeros((len(FEATURES), 3), np.int64))
    """Per feature: true positives, false positives, false negatives."""
    frames: list[np.ndarray] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        ep = self.episodes
        mean = {k: float(np.mean([e[k] for e in ep])) for k in ep[0]} if ep else {}
        out = {f"mean_{k}": v for k, v in mean.items()}
        if ep:
            out["std_return"] = float(np.std([e["return"] for e in ep]))
            kills, deaths = sum(e["kills"] for e in ep), sum(e["deaths"] for e in ep)
            if deaths:  # K/D: kills per death over all episodes (none without a death)
                out["kd"] = kills / deaths
        out["episodes"] = float(len(ep))
        for i, name in enumerate(FEATURES):
            tp, fp, fn = self.counts[i]
            if tp + fn:
                out[f"{name}_recall"] = tp / (tp + fn)
            if tp + fp:
                out[f"{name}_precision"] = tp / (tp + fp)
        return out


@torch.no_grad()
def play(model: nn.Module, cfg: DoomConfig, episodes: int, epsilon: float = 0.05, *,
         seed: int = TEST_SEED, record: int = 0) -> EvalResult:
    """Play ``episodes`` episodes of ``cfg.env`` (one game), episode ``e`` on game seed
    ``seed + e``; ``record``: keep up to this many full-resolution frames of the first episode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    env = make_env(cfg.env)
    rng = np.random.default_rng(seed)
    result = EvalResult()
    try:
        for e in range(episodes):
            obs, info = env.reset(seed=seed + e)
            state, done = None, False
            while not done:
                actions, state, probs = act(model, obs["screen"][None], obs["variables"][None],
                                            state, epsilon, rng, device)
                if probs is not None:
                    pred, truth = probs[0] > 0.5, info["features"].astype(bool)
                    result.counts[:, 0] += pred & truth
                    result.counts[:, 1] += pred & ~truth
                    result.counts[:, 2] += ~pred & truth
                if e == 0 and len(result.frames) < record:
                    result.frames.append(env.render().copy())
                obs, _, done, trunc, info = env.step(int(actions[0]))
                done = done or trunc
            result.episodes.append({"return": info["ep_return"], "kills": info["ep_kills"],
                                    "deaths": info["ep_deaths"], "frags": info["ep_frags"],
                                    "tics": info["ep_tics"], "shots": info["ep_shots"]})
    finally:
        env.close()
        model.train(was_training)
    return result


def write_gif(path: str | Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """An animated GIF of ``frames`` (``[H, W, 3]`` uint8), written atomically."""
    from PIL import Image

    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(f) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(1000 / fps), loop=0)
    return Path(path)
