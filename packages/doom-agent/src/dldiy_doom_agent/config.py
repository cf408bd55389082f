"""Configs and presets: ``paper`` (the paper's settings), ``quick`` (about 30 min on 2 cores),
``tiny`` (seconds: tests and the demo's smoke settings).

Settings the paper states (Lample & Chaplot 2017, section "Training"): RMSProp, batch 32,
replay memory 1M, gamma 0.99, epsilon 1 -> 0.1, frame skip, 108x60 RGB input, DRQN with
conv 32x8x8/4, conv 64x4x4/2 and an LSTM of 512, sequences whose first steps only warm the
LSTM. Other values (learning rate, sequence length, target period...) are chosen here and
marked so in their docstrings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dldiy_core import TrainConfig


@dataclass
class ShapingConfig:
    """Reward shaping from game-variable deltas (paper, "Reward shaping"); values per event.

    Our reading of the authors' released code: kill +5, death -5, suicide -5, item pickup +1,
    injury -1, ammo use -0.2. Added to the scenario's own reward (scaled by ``reward_scale``).
    """

    enabled: bool = False
    """Off for the single-player scenarios (their own reward is the task), on for deathmatch."""
    kill: float = 5.0
    death: float = -5.0
    suicide: float = -5.0
    pickup: float = 1.0
    injury: float = -1.0
    ammo_use: float = -0.2
    nav_distance: float = 0.002
    """Navigation reward per map unit travelled (chosen here; the paper rewards distance)."""
    nav_pickup: float = 1.0


@dataclass
class EnvConfig:
    scenario: str = "defend_the_center"
    """basic, defend_the_center, health_gathering, deathmatch, deathmatch_full, or a .cfg file."""
    frame_skip: int = 4
    fire_combos: bool = False
    """Also offer each non-firing action with ATTACK held (``scenarios.scenario``): the paper's
    agents press several buttons at once; basic then fires on the strafe that aligns."""
    width: int = 108
    height: int = 60
    grey: bool = False
    """Grey-scale input (1 channel) instead of the paper's RGB."""
    bots: int = 4
    """Built-in bots added in deathmatch."""
    timelimit_min: float = 2.0
    """Deathmatch round length in minutes."""
    feature_min_pixels: int = 12
    """An object counts as visible when its label box covers this many screen pixels."""
    reward_scale: float = 0.0
    """Multiplies the scenario's own reward (0: the scenario's default scale)."""
    shaping: ShapingConfig = field(default_factory=ShapingConfig)


@dataclass
class ModelConfig:
    lstm: int = 512
    game_features: bool = True
    """Train the game-feature head jointly (the paper's main claim; off for the ablation)."""
    navigation: Literal["auto", "on", "off"] = "auto"
    """Navigation DQN used when no enemy is predicted (auto: on for deathmatch only)."""
    variables: bool = True
    """Feed health and ammo to the LSTM."""


@dataclass
class RLConfig:
    actors: int = 2
    """Environments stepped in parallel (gymnasium AsyncVectorEnv when > 1)."""
    replay: int = 1_000_000
    """Replay capacity in transitions (shared out over the actors)."""
    save_replay: bool = False
    """Keep the replay memory in the checkpoint (exact resume, large files)."""
    seq_len: int = 8
    """Transitions per sampled sequence (chosen here)."""
    burn_in: int = 4
    """First steps of a sequence that only warm the LSTM (no loss; chosen here)."""
    gamma: float = 0.99
    n_step: int = 1
    """Rewards summed before bootstrapping (1: the paper's one-step Q-learning; more carries
    rewards back faster, an addition of ours for short CPU budgets)."""
    double: bool = True
    """Double DQN targets (van Hasselt et al. 2016)."""
    eps_start: float = 1.0
    eps_end: float = 0.1
    eps_steps: int = 1_000_000
    """Environment steps of the linear epsilon decay."""
    learning_starts: int = 10_000
    """Environment steps collected before the first update."""
    env_steps_per_update: int = 4
    overlap: bool = False
    """Act for one half of the actors while the other half's games step (2 actors or more;
    see ``actors.py``); false: one batched forward for all, then all games step. With 2
    actors on 2 cores the batched forward measured as fast or faster here (overlapping pays
    for two forwards of one frame instead of one of two; ``bench`` measures both)."""
    target_every: int = 10_000
    """Learner updates between target-network copies (chosen here)."""
    feature_weight: float = 1.0
    """Weight of the game-feature BCE in the joint loss."""
    lr: float = 1e-4
    """RMSProp learning rate (chosen here)."""
    rmsprop_alpha: float = 0.95
    huber: bool = True
    """Huber TD loss instead of the squared error."""


@dataclass
class EvalConfig:
    episodes: int = 0
    """Validation episodes per check (0: the scenario's ``valid_episodes``: 100 on basic,
    10 elsewhere). Every check plays the same games (validation seeds, disjoint from the
    test episodes' seeds: ``evaluate.VALID_SEED``, ``evaluate.TEST_SEED``), so checkpoints
    are compared on the same episodes."""
    epsilon: float = 0.05
    """Evaluation during training: every ``train.eval_every`` updates (0: only the actors'
    episodes are logged); the best run by ``train.monitor`` is kept as best.safetensors."""


@dataclass
class DoomConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=2_500_000, batch_size=32, seed=0, log_every=100, checkpoint_every=10_000,
        grad_clip=10.0, progress=True, monitor="valid_mean_return", monitor_mode="max"))


PRESETS: dict[str, dict] = {
    "paper": {},
    "quick": {
        "env": {"width": 84, "height": 48},
        "model": {"lstm": 256},
        "rl": {"replay": 50_000, "seq_len": 8, "burn_in": 2, "n_step": 5, "eps_steps": 10_000,
               "learning_starts": 1_000, "target_every": 100, "lr": 2.5e-4,
               "env_steps_per_update": 4},
        "train": {"max_steps": 6_000, "batch_size": 16, "log_every": 100,
                  "checkpoint_every": 500, "eval_every": 1_000, "precision": "bf16"},
    },
    "demo": {
        "env": {"scenario": "basic", "width": 84, "height": 48},
        "model": {"lstm": 128},
        "rl": {"replay": 10_000, "seq_len": 5, "burn_in": 2, "eps_steps": 2_500,
               "learning_starts": 300, "target_every": 50, "lr": 5e-4,
               "env_steps_per_update": 16},
        "eval": {"episodes": 10},
        "train": {"max_steps": 200, "batch_size": 8, "log_every": 10, "checkpoint_every": 50,
                  "progress": False},
    },
    "tiny": {
        "model": {"lstm": 32},
        "rl": {"actors": 1, "replay": 2_000, "eps_steps": 400, "learning_starts": 64,
               "target_every": 20, "lr": 5e-4, "seq_len": 4, "burn_in": 1,
               "env_steps_per_update": 2},
        "eval": {"episodes": 2},
        "train": {"max_steps": 20, "batch_size": 4, "log_every": 5, "checkpoint_every": 10,
                  "progress": False},
    },
}
