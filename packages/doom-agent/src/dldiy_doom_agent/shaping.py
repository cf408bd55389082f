"""Reward shaping from game-variable deltas (paper, "Reward shaping").

The paper adds small rewards for what moves a deathmatch player forward before it gets a frag:
positive for a kill and an item pickup, negative for a death, an injury and a shot fired. We
read them from the change of the game variables between two steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import ShapingConfig


@dataclass
class Vars:
    """The game variables one step reads (ammo: the sum over all ammo types)."""

    health: float = 100.0
    armor: float = 0.0
    ammo: float = 0.0
    kills: float = 0.0
    frags: float = 0.0
    x: float = 0.0
    y: float = 0.0


@dataclass
class Events:
    kills: int = 0
    suicides: int = 0
    pickups: int = 0
    injuries: int = 0
    shots: int = 0
    distance: float = 0.0


def events(prev: Vars, cur: Vars, deathmatch: bool) -> Events:
    """What happened between two steps. Kills are frags in deathmatch (the bots are players),
    monster kills otherwise; a frag count that drops is a suicide."""
    frags = cur.frags - prev.frags
    kills = max(frags, 0) if deathmatch else cur.kills - prev.kills
    return Events(
        kills=int(max(kills, 0)), suicides=int(max(-frags, 0)),
        pickups=int(cur.health > prev.health) + int(cur.armor > prev.armor)
        + int(cur.ammo > prev.ammo),
        injuries=int(cur.health < prev.health), shots=int(cur.ammo < prev.ammo),
        distance=float(np.hypot(cur.x - prev.x, cur.y - prev.y)))


def shaped_reward(e: Events, died: bool, cfg: ShapingConfig) -> float:
    """The action network's extra reward for one step."""
    return (cfg.kill * e.kills + cfg.suicide * e.suicides + cfg.pickup * e.pickups
            + cfg.injury * e.injuries + cfg.ammo_use * e.shots + cfg.death * died)


def navigation_reward(e: Events, died: bool, cfg: ShapingConfig) -> float:
    """The navigation network's reward: move around and pick items up (paper, "Navigation
    network"); a death costs like for the action network."""
    return cfg.nav_distance * e.distance + cfg.nav_pickup * e.pickups + cfg.death * died
