"""ViZDoom as a gymnasium environment: headless, ``Mode.PLAYER``, frame skip, resized screens,
game variables as inputs, game features from the labels buffer, shaped rewards.

Observation: ``{"screen": uint8 [C, H, W] (C = 3 RGB or 1 grey; paper 3 x 60 x 108),
"variables": float32 [2] (health / 100, selected-weapon ammo / 50)}``. ``info`` carries the
game features ``[3]`` (enemy, health item, ammo item visible), the navigation reward and the
episode's running statistics (return in the scenario's own units, frags in deathmatch; kills,
deaths, frags, tics, shots: steps on which the ammunition went down).
This module does not import torch: vector-env workers stay small.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import asdict
from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image

from dldiy_core import UserError

from .config import EnvConfig, ShapingConfig
from .features import game_features
from .scenarios import FEATURES, Scenario, scenario
from .shaping import Vars, events, navigation_reward, shaped_reward

log = logging.getLogger(__name__)
N_VARIABLES = 2
AMMO_SCALE = 50.0
ENGINE_DIR = "_vizdoom"
"""The engine's own folder (caches, bot definitions), relative to the working directory."""


def _vizdoom():
    import vizdoom

    return vizdoom


class DoomEnv(gym.Env):
    """One ViZDoom game. ``render()`` gives the full-resolution RGB frame (for recordings)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, scenario_name: str = "basic", *, frame_skip: int = 4,
                 fire_combos: bool = False, width: int = 108,
                 height: int = 60, grey: bool = False, bots: int = 4, timelimit_min: float = 2.0,
                 feature_min_pixels: int = 12, reward_scale: float = 0.0,
                 shaping: dict | ShapingConfig | None = None, render_mode: str | None = None):
        vzd = _vizdoom()
        self.spec_ = scenario(scenario_name, fire_combos)
        sc: Scenario = self.spec_
        if frame_skip < 1 or width < 16 or height < 16:
            raise UserError(f"env: frame_skip={frame_skip}, width={width}, height={height} "
                            "(need frame_skip >= 1 and a screen of at least 16x16)")
        self.frame_skip, self.size, self.grey = frame_skip, (width, height), grey
        self.min_pixels = feature_min_pixels
        self.reward_scale = reward_scale or sc.reward_scale
        self.shaping = (shaping if isinstance(shaping, ShapingConfig)
                        else ShapingConfig(**(shaping or {})))
        self.render_mode = render_mode
        self.deathmatch, self.bots = sc.deathmatch, bots
        cfg = sc.cfg if os.path.isabs(sc.cfg) else os.path.join(vzd.scenarios_path, sc.cfg)
        if not os.path.isfile(cfg):
            raise UserError(f"{cfg}: scenario config not found")
        game = vzd.DoomGame()
        try:
            game.load_config(cfg)
        except Exception as e:  # vizdoom raises its own exception types for unreadable configs
            raise UserError(f"{cfg}: not a readable ViZDoom config ({e})") from None
        if sc.doom_map:
            game.set_doom_map(sc.doom_map)
        wad = game.get_doom_scenario_path()
        if wad and not os.path.isfile(wad):
            raise UserError(f"{wad}: scenario WAD not found (needed by {cfg})")
        game.set_window_visible(False)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_screen_resolution(vzd.ScreenResolution.RES_256X144)
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_labels_buffer_enabled(True)
        game.set_render_hud(False)
        try:
            game.set_available_buttons([getattr(vzd.Button, b) for b in sc.buttons])
        except AttributeError as e:
            raise UserError(f"{sc.cfg}: unknown button ({e})") from None
        gv = vzd.GameVariable
        self._vars = [gv.HEALTH, gv.ARMOR, gv.SELECTED_WEAPON_AMMO, gv.KILLCOUNT, gv.FRAGCOUNT,
                      gv.POSITION_X, gv.POSITION_Y] + [getattr(gv, f"AMMO{i}") for i in range(10)]
        game.set_available_game_variables(self._vars)
        if sc.deathmatch:
            game.set_episode_timeout(0)
            game.add_game_args(" ".join(sc.extra_args) + f" +timelimit {timelimit_min}")
        elif sc.episode_timeout:
            game.set_episode_timeout(sc.episode_timeout)
        self.game, self.started = game, False
        index = {b: i for i, b in enumerate(sc.buttons)}
        self._actions = []
        for combo in sc.actions:
            v = [0.0] * len(sc.buttons)
            for b in combo:
                v[index[b]] = 1.0
            self._actions.append(v)
        c = 1 if grey else 3
        self.action_space = gym.spaces.Discrete(len(self._actions))
        self.observation_space = gym.spaces.Dict({
            "screen": gym.spaces.Box(0, 255, (c, height, width), np.uint8),
            "variables": gym.spaces.Box(-np.inf, np.inf, (N_VARIABLES,), np.float32)})
        self._frame = np.zeros((144, 256, 3), np.uint8)
        self._obs = {"screen": np.zeros((c, height, width), np.uint8),
                     "variables": np.zeros(N_VARIABLES, np.float32)}
        self._cur = Vars()
        self._features = np.zeros(len(FEATURES), np.uint8)

    # ---- engine state -> observation ---------------------------------------------------
    def _read(self, v: np.ndarray | None = None) -> tuple[Vars, float]:
        """Game variables of the current state (``v``: values read another way)."""
        if v is None:
            v = self.game.get_state().game_variables
        ammo = float(np.sum(v[7:]))
        return Vars(health=float(v[0]), armor=float(v[1]), ammo=ammo, kills=float(v[3]),
                    frags=float(v[4]), x=float(v[5]), y=float(v[6])), float(v[2])

    def _observe(self) -> None:
        state = self.game.get_state()
        if state is None:  # deathmatch: no state for a moment around a respawn; keep the last
            return
        self._frame = state.screen_buffer
        img = Image.fromarray(self._frame)
        if self.grey:
            img = img.convert("L")
        small = np.asarray(img.resize(self.size, Image.BILINEAR))
        screen = small[None] if self.grey else small.transpose(2, 0, 1)
        self._cur, selected_ammo = self._read()
        variables = np.array([self._cur.health / 100.0, selected_ammo / AMMO_SCALE], np.float32)
        self._obs = {"screen": np.ascontiguousarray(screen), "variables": variables}
        self._features = game_features(state.labels, self.min_pixels)

    def _info(self) -> dict[str, Any]:
        return {"features": self._features.copy(), "nav_reward": self._nav_reward,
                "ep_return": self._ep["return"], "ep_kills": self._ep["kills"],
                "ep_deaths": self._ep["deaths"], "ep_frags": self._ep["frags"],
                "ep_tics": self._ep["tics"], "ep_shots": self._ep["shots"]}

    # ---- gymnasium API -----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.game.set_seed(int(seed) % 2**31)
        if not self.started:
            # the engine creates its folder ./_vizdoom on start, checking first: games started
            # together in a new folder race there, and the loser exits (its controller then
            # crashes or waits forever); made here, it exists before any of them starts
            os.makedirs(ENGINE_DIR, exist_ok=True)
            self.game.init()
            self.started = True
        game = self.game
        game.new_episode()
        if self.deathmatch:
            game.send_game_command("removebots")
            for _ in range(self.bots):
                game.send_game_command("addbot")
            # the bots join on the next tic, and one can spawn onto the agent (a telefrag
            # before the agent has acted, about one round in two): let them in, respawn if so
            game.make_action([0.0] * len(self._actions[0]), 1)  # no button pressed
            if game.is_player_dead():
                game.respawn_player()
        self._t0 = game.get_episode_time()
        self._observe()
        self._prev = self._cur
        self._dead = self.game.is_player_dead()
        self._nav_reward = 0.0
        self._ep = {"return": 0.0, "kills": 0, "deaths": 0, "frags": 0, "tics": 0,
                    "shots": 0}
        return self._obs, self._info()

    def step(self, action: int):
        game = self.game
        native = game.make_action(self._actions[int(action)], self.frame_skip)
        finished = game.is_episode_finished()
        dead = game.is_player_dead()
        # a death counts once, when the agent goes from alive to dead: a respawn that has not
        # taken effect yet, or a round that ends on the death, leaves it dead a step longer
        died, self._dead = dead and not self._dead, dead
        if not self.deathmatch:
            self._ep["tics"] += self.frame_skip
        if not finished:
            self._observe()
            now = self._cur
        else:  # no state after the last step: read the variables one by one (the kill
            # that ends an episode counts)
            now, _ = self._read(np.array([game.get_game_variable(g) for g in self._vars]))
        e = events(self._prev, now, self.deathmatch)
        self._ep["shots"] += e.shots
        if dead:
            e.distance = 0.0
        if died:
            self._ep["deaths"] += 1
        self._ep["kills"] += e.kills
        self._ep["frags"] += e.kills - e.suicides if self.deathmatch else e.kills
        # deathmatch: the round's score is its frags (the competition's; cig.cfg gives no
        # reward of its own), what validation ranks checkpoints by
        self._ep["return"] = self._ep["frags"] if self.deathmatch else self._ep["return"] + native
        reward = self.reward_scale * native
        if self.shaping.enabled:
            reward += shaped_reward(e, died, self.shaping)
        self._nav_reward = navigation_reward(e, died, self.shaping)
        if dead and self.deathmatch and not finished:
            game.respawn_player()  # waits the engine's respawn delay, in tics
            self._dead = game.is_player_dead()
            self._observe()
        if self.deathmatch:  # the round's clock: respawn delays count, the round's end too
            self._ep["tics"] = game.get_episode_time() - self._t0
        self._prev = self._cur
        return self._obs, float(reward), bool(finished), False, self._info()

    def render(self) -> np.ndarray:
        """The last full-resolution frame ``[144, 256, 3]`` uint8."""
        return self._frame

    def close(self) -> None:
        if self.started:
            self.game.close()
            self.started = False


def env_kwargs(cfg: EnvConfig) -> dict[str, Any]:
    return {"scenario_name": cfg.scenario, "frame_skip": cfg.frame_skip,
            "fire_combos": cfg.fire_combos, "width": cfg.width,
            "height": cfg.height, "grey": cfg.grey, "bots": cfg.bots,
            "timelimit_min": cfg.timelimit_min, "feature_min_pixels": cfg.feature_min_pixels,
            "reward_scale": cfg.reward_scale, "shaping": asdict(cfg.shaping)}


def make_env(cfg: EnvConfig, render_mode: str | None = None) -> DoomEnv:
    return DoomEnv(**env_kwargs(cfg), render_mode=render_mode)


def make_vector_env(cfg: EnvConfig, n: int,
                    asynchronous: bool | None = None) -> gym.vector.VectorEnv:
    """``n`` environments; separate processes when ``asynchronous`` (default: ``n > 1``).

    Autoreset happens in the same step (``info`` keeps the finished episode's statistics),
    so the observation after a terminal step is the first one of the next episode.
    """
    scenario(cfg.scenario)  # fail here, with one line, before any worker starts
    fns = [functools.partial(DoomEnv, **env_kwargs(cfg)) for _ in range(n)]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if asynchronous if asynchronous is not None else n > 1:
        # fork: the workers never touch torch, and a user script needs no __main__ guard
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="fork")
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
