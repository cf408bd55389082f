"""Training: the Arnold model, its target network and actors on the core Trainer.

The run folder is self-describing: ``checkpoint.safetensors`` holds the resolved config, the
weights, the RMSProp state, the target network, the actors' counters, RNG and replay position
(and the replay memory itself with ``rl.save_replay=true``). ``--resume`` restores all of it;
the games restart new episodes (a ViZDoom game cannot be checkpointed), so without the saved
replay the memory refills for ``rl.learning_starts`` steps first.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch

from dldiy_core import (
    CheckpointError,
    ConfigError,
    Hook,
    Trainer,
    UserError,
    from_dict,
    load_checkpoint,
    load_module_state,
    save_checkpoint,
    seed_everything,
    to_dict,
)

from .actors import Actors
from .config import DoomConfig
from .env import make_env
from .evaluate import VALID_SEED, play, valid_episodes
from .loss import ArnoldLoss
from .models import Arnold
from .scenarios import FEATURES, Scenario, scenario

log = logging.getLogger(__name__)


def navigation_on(cfg: DoomConfig, sc: Scenario) -> bool:
    on = sc.navigation if cfg.model.navigation == "auto" else cfg.model.navigation == "on"
    if on and not cfg.model.game_features:
        raise ConfigError("model.navigation needs model.game_features=true (the switch between "
                          "the networks is the predicted enemy feature)")
    if on and not sc.nav_actions:
        raise ConfigError(f"scenario {sc.name}: no non-firing action for the navigation network")
    return on


def screen_shape(cfg: DoomConfig) -> tuple[int, int, int]:
    return (1 if cfg.env.grey else 3, cfg.env.height, cfg.env.width)


def build_model(cfg: DoomConfig) -> Arnold:
    sc = scenario(cfg.env.scenario, cfg.env.fire_combos)
    c, h, w = screen_shape(cfg)
    nav = sc.nav_actions if navigation_on(cfg, sc) else None
    return Arnold(c, h, w, len(sc.actions), nav, hidden=cfg.model.lstm,
                  n_features=len(FEATURES), game_features=cfg.model.game_features,
                  variables=cfg.model.variables)


class ActorLog(Hook):
    """Logs the actors' episodes (``kind: actor`` in metrics.jsonl) with every train record."""

    def __init__(self, actors: Actors, cfg: DoomConfig):
        self.actors, self.cfg = actors, cfg

    def on_fit_start(self, trainer: Trainer) -> None:
        self.actors.target.to(trainer.device)

    def on_step_end(self, trainer: Trainer, logged: dict[str, float] | None) -> None:
        if logged is not None:
            trainer.log_metrics(self.actors.pop_stats(), kind="actor")

    def on_fit_end(self, trainer: Trainer) -> None:
        self.actors.close()


def evaluation(cfg: DoomConfig):
    """``valid(trainer)`` for the Trainer: ``valid_episodes(cfg)`` episodes at ``eval.epsilon``,
    the same games at every check (seeds from ``VALID_SEED``, disjoint from the test seeds)."""
    episodes = valid_episodes(cfg)

    def valid(trainer: Trainer) -> dict[str, float]:
        return play(trainer.model, cfg, episodes, cfg.eval.epsilon, seed=VALID_SEED).summary()

    return valid


def train(cfg: DoomConfig, out: str | Path | None, resume: bool = False,
          force: bool = False) -> Trainer:
    """Train an agent into the run folder ``out``; returns the Trainer (history, model)."""
    if cfg.rl.burn_in >= cfg.rl.seq_len:
        raise ConfigError(f"rl.burn_in={cfg.rl.burn_in} must be below rl.seq_len="
                          f"{cfg.rl.seq_len} (the loss uses the steps after the warm-up)")
    if cfg.rl.actors < 1:
        raise ConfigError(f"rl.actors={cfg.rl.actors} (must be >= 1)")
    if cfg.eval.episodes < 0:
        raise ConfigError(f"eval.episodes={cfg.eval.episodes} (0: the scenario's default)")
    if cfg.rl.n_step < 1:
        raise ConfigError(f"rl.n_step={cfg.rl.n_step} (must be >= 1)")
    make_env(cfg.env).close()  # config, WAD and settings checked before the run folder exists
    seed_everything(cfg.train.seed)
    model = build_model(cfg)
    target = copy.deepcopy(model).requires_grad_(False)
    sc = scenario(cfg.env.scenario, cfg.env.fire_combos)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=cfg.rl.lr, alpha=cfg.rl.rmsprop_alpha,
                                    eps=1e-5)
    actors = Actors(cfg, model, target, screen_shape(cfg))
    nav = sc.nav_actions if model.navigation is not None else None
    loss = ArnoldLoss(target, cfg, nav, len(sc.actions))
    trainer = Trainer(model, optimizer, loss, cfg.train, out, run_config=to_dict(cfg),
                      hooks=[ActorLog(actors, cfg)],
                      stateful={"actors": actors, "target": target})
    try:
        valid = evaluation(cfg) if cfg.train.eval_every else None
        trainer.fit(actors, valid=valid, resume=resume, force=force)
    finally:
        actors.close()
    return trainer


def checkpoint_path(run: str | Path, which: str = "best") -> Path:
    """A run folder's best checkpoint (chosen on the validation episodes during training) when
    it has one and ``which`` is ``best``, else its last; a file is taken as it is."""
    path = Path(run)
    if not path.is_dir():
        return path
    best = path / "best.safetensors"
    return best if which == "best" and best.exists() else path / "checkpoint.safetensors"


def load_agent(path: str | Path, scenario_name: str | None = None,
               state: dict | None = None) -> tuple[DoomConfig, Arnold]:
    """The config and network of a run folder (its best checkpoint) or checkpoint file;
    ``scenario_name`` plays it on another scenario (the action sets must match); ``state``:
    the checkpoint file already read (it is not read again)."""
    path = checkpoint_path(path)
    if state is None:
        state = load_checkpoint(path)
    try:
        cfg = from_dict(DoomConfig, state["config"])
    except (KeyError, UserError) as e:
        raise CheckpointError(f"{path}: not a doom-agent checkpoint ({e})") from None
    if scenario_name:
        trained = scenario(cfg.env.scenario, cfg.env.fire_combos)
        other = scenario(scenario_name, cfg.env.fire_combos)
        if len(other.actions) != len(trained.actions):
            raise CheckpointError(
                f"{path}: made for another action space ({trained.name}: "
                f"{len(trained.actions)} actions, {other.name}: {len(other.actions)})")
        cfg.env.scenario = scenario_name
    model = build_model(cfg)
    n_actions = state.get("model", {}).get("action.q.weight")
    if n_actions is not None and n_actions.shape[0] != model.action.q.out_features:
        raise CheckpointError(f"{path}: made for another action space ({n_actions.shape[0]} "
                              f"actions, {cfg.env.scenario} has {model.action.q.out_features})")
    load_module_state(model, state["model"], path)
    return cfg, model.eval()


def export_agent(run: str | Path, out: str | Path) -> Path:
    """A small file to ship (what ``demo`` loads): the config, the network in float16 and the
    run's learning curve (``curve_env_steps``, ``curve_return``: the actors' episodes)."""
    from .report import curve, read_metrics

    path = checkpoint_path(run)
    cfg, model = load_agent(path)
    x, y = curve(read_metrics(path.parent), "ep_return")
    state = {"config": to_dict(cfg), "model": {k: v.half() for k, v in
                                                model.state_dict().items()},
             "curve_env_steps": [float(v) for v in x], "curve_return": [float(v) for v in y]}
    return save_checkpoint(out, state)
