"""Model selection during training: validation episodes on seeds of their own, the same games
at every check, more of them where episodes are short."""

from types import SimpleNamespace

from dldiy_core import resolve
from dldiy_doom_agent.actors import start_seed
from dldiy_doom_agent.config import PRESETS, DoomConfig
from dldiy_doom_agent.evaluate import TEST_SEED, VALID_SEED, valid_episodes
from dldiy_doom_agent.train import build_model, evaluation


def test_validation_test_and_training_seeds_are_disjoint():
    test = set(range(TEST_SEED, TEST_SEED + 10_000))
    valid = set(range(VALID_SEED, VALID_SEED + 10_000))
    starts = {start_seed(seed, rank, resets) + actor for seed in range(100) for rank in range(8)
              for resets in range(50) for actor in range(16)}
    assert not test & valid
    assert not test & starts and not valid & starts


def test_validation_episodes_per_scenario():
    quick = resolve(DoomConfig, PRESETS, "quick")
    assert quick.eval.episodes == 0
    quick.env.scenario = "basic"
    assert valid_episodes(quick) == 100  # short episodes: many, cheaply
    quick.env.scenario = "defend_the_center"
    assert valid_episodes(quick) == 10
    quick.eval.episodes = 3
    assert valid_episodes(quick) == 3


def test_every_check_plays_the_same_games():
    cfg = resolve(DoomConfig, PRESETS, "tiny", sets=["env.scenario=basic", "env.width=84",
                                                "env.height=48", "eval.episodes=3"])
    model = build_model(cfg)
    valid = evaluation(cfg)
    first = valid(SimpleNamespace(model=model, state=SimpleNamespace(step=1_000)))
    later = valid(SimpleNamespace(model=model, state=SimpleNamespace(step=2_000)))
    assert first == later and first["episodes"] == 3
