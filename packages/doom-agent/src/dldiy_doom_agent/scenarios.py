"""The scenarios: ViZDoom config, the discrete action set, and what each one measures.

Actions are button combinations (the paper's agents pick one combination per step). The
navigation network acts with the subset that does not fire. Deathmatch plays the maps of the
Visual Doom AI Competition 2016 (``cig.wad``, the paper's two tracks: MAP01 limited deathmatch,
rocket launcher only; MAP02 full deathmatch, weapons and items to pick up) as host
(``-host 1 -deathmatch``) against built-in bots added with ``addbot``, as ViZDoom's own bot
example does. Not ``multi.cfg``: its WAD is a duel whose map script ends the round when the agent
or the first bot dies, and after that exit the engine moves on to the next map (Freedoom's
MAP02, with monsters) for the round after.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from dldiy_core import UserError

F, B, L, R, ML, MR, A = ("MOVE_FORWARD", "MOVE_BACKWARD", "TURN_LEFT", "TURN_RIGHT",
                         "MOVE_LEFT", "MOVE_RIGHT", "ATTACK")

FEATURES = ("enemy", "health", "ammo")
"""Game features predicted by the action network (sigmoid outputs)."""
FEATURE_CATEGORIES = {"enemy": ("Monster", "Player"), "health": ("Health",),
                      "ammo": ("Ammo", "Weapon")}
"""Labels-buffer ``object_category`` values behind each feature."""


@dataclass(frozen=True)
class Scenario:
    name: str
    cfg: str
    """A config shipped with vizdoom (by file name) or a path."""
    actions: tuple[tuple[str, ...], ...]
    reward_scale: float = 1.0
    deathmatch: bool = False
    navigation: bool = False
    """Whether ``model.navigation=auto`` turns the navigation network on."""
    episode_timeout: int = 0
    """Tics (0: the cfg's own)."""
    doom_map: str = ""
    """Map of the WAD to play ("": the cfg's own)."""
    extra_args: tuple[str, ...] = field(default_factory=tuple)
    valid_episodes: int = 10
    """Validation episodes per check during training when ``eval.episodes=0`` (the presets'
    setting): more where episodes are short, so that checkpoints are judged fairly cheaply."""

    @property
    def buttons(self) -> list[str]:
        seen: list[str] = []
        for combo in self.actions:
            seen += [b for b in combo if b not in seen]
        return seen

    @property
    def nav_actions(self) -> list[int]:
        """Indices of the actions the navigation network may take (no firing)."""
        return [i for i, combo in enumerate(self.actions) if A not in combo]


DEATHMATCH_ACTIONS = ((F,), (B,), (L,), (R,), (ML,), (MR,), (F, L), (F, R), (A,), (F, A), (L, A),
                      (R, A))
DEATHMATCH_ARGS = ("-host 1 -deathmatch +sv_forcerespawn 1 +sv_noautoaim 1 +sv_respawnprotect 1 "
                   "+sv_spawnfarthest 1 +sv_nocrouch 1")
"""The competition's host settings (ViZDoom's ``cig_multiplayer_bots.py`` example)."""

SCENARIOS: dict[str, Scenario] = {
    # basic's episodes last about 6 steps once learned (25 tics at frame skip 4): 100
    # validation episodes cost about what 10 of the other scenarios do, and the noise of 10
    # (std of one episode's reward about 11) would swamp the differences between checkpoints
    "basic": Scenario("basic", "basic.cfg", ((ML,), (MR,), (A,)), reward_scale=0.01,
                      valid_episodes=100),
    "defend_the_center": Scenario("defend_the_center", "defend_the_center.cfg",
                                  ((L,), (R,), (A,)), reward_scale=1.0),
    "health_gathering": Scenario("health_gathering", "health_gathering.cfg",
                                 ((F,), (L,), (R,), (F, L), (F, R)), reward_scale=0.01),
    "deathmatch": Scenario(
        "deathmatch", "cig.cfg", DEATHMATCH_ACTIONS, reward_scale=1.0, deathmatch=True,
        navigation=True, doom_map="map01", extra_args=(DEATHMATCH_ARGS,)),
    "deathmatch_full": Scenario(
        "deathmatch_full", "cig.cfg", DEATHMATCH_ACTIONS, reward_scale=1.0, deathmatch=True,
        navigation=True, doom_map="map02", extra_args=(DEATHMATCH_ARGS,)),
}


def scenario(name: str, fire_combos: bool = False) -> Scenario:
    """The scenario called ``name``; a ``.cfg`` path makes a single-player scenario that uses
    that config's own buttons, one action per button. ``fire_combos`` appends, after the
    scenario's own actions (whose indices stay), each action that does not fire with ATTACK
    held as well (basic: strafe left + fire, strafe right + fire)."""
    sc = _named(name)
    if not fire_combos or A not in sc.buttons:
        return sc
    extra = tuple(c + (A,) for c in sc.actions if A not in c and c + (A,) not in sc.actions)
    return replace(sc, actions=sc.actions + extra)


def _named(name: str) -> Scenario:
    if name in SCENARIOS:
        return SCENARIOS[name]
    if name.endswith(".cfg"):
        path = Path(name)
        if not path.is_file():
            raise UserError(f"{name}: scenario config not found")
        buttons = _cfg_buttons(path)
        if not buttons:
            raise UserError(f"{name}: no available_buttons in this config")
        return Scenario(path.stem, str(path.resolve()), tuple((b,) for b in buttons))
    raise UserError(f"unknown scenario '{name}' (available: {', '.join(SCENARIOS)}, "
                    "or a .cfg file)")


def _cfg_buttons(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    start = text.find("available_buttons")
    if start < 0:
        return []
    body = text[text.find("{", start) + 1:text.find("}", start)]
    return [w.strip().upper() for w in body.split() if w.strip() and not w.startswith("#")]
