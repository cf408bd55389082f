"""dldiy-doom-agent: "Playing FPS Games with Deep Reinforcement Learning" (Lample & Chaplot,
AAAI 2017), the Arnold agent, on ViZDoom 1.3 through gymnasium.

The action network is a DRQN (two convolutions, an LSTM) trained with Q-learning on sequences
from a replay memory; it also predicts game features (is an enemy, a health or an ammo item
on screen?) from the same convolutional features, with a sigmoid/BCE head trained jointly,
which the paper shows speeds learning up. A separate feed-forward DQN navigates when no enemy
is seen. Actors run in parallel gymnasium vector environments; the learner runs on the core
Trainer, so it checkpoints, resumes and scales out under torchrun like every package.
"""

from .config import PRESETS, DoomConfig
from .env import DoomEnv, make_env, make_vector_env
from .features import game_features
from .scenarios import FEATURES, SCENARIOS, scenario

__all__ = ["FEATURES", "PRESETS", "SCENARIOS", "DoomConfig", "DoomEnv", "game_features",
           "make_env", "make_vector_env", "scenario"]
