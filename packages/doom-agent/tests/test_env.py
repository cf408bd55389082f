"""The environment layer on real headless ViZDoom games (a few seconds each)."""

import numpy as np
import pytest

from dldiy_doom_agent.config import EnvConfig, ShapingConfig
from dldiy_doom_agent.env import ENGINE_DIR, make_env, make_vector_env
from dldiy_doom_agent.features import game_features
from dldiy_doom_agent.scenarios import ML, MR, A, scenario
from dldiy_doom_agent.shaping import Vars, events, navigation_reward, shaped_reward


def test_basic_shapes_features_and_reward():
    env = make_env(EnvConfig(scenario="basic"))
    obs, info = env.reset(seed=3)
    assert obs["screen"].shape == (3, 60, 108) and obs["screen"].dtype == np.uint8
    assert obs["variables"].shape == (2,) and obs["variables"][0] == pytest.approx(1.0)
    assert env.observation_space.contains(obs)
    # basic: one monster straight ahead, nothing to pick up
    assert info["features"].tolist() == [1, 0, 0]
    assert env.render().shape == (144, 256, 3)
    obs, reward, done, trunc, info = env.step(0)  # move left: the living reward -1 per tic
    assert reward == pytest.approx(-0.01 * 4) and not done and not trunc
    assert info["ep_return"] == -4 and info["ep_tics"] == 4
    for _ in range(200):
        _, _, done, _, info = env.step(0)
        if done:
            break
    assert done and info["ep_tics"] == 300  # the episode timeout, in tics
    assert info["ep_shots"] == 0
    env.close()


def test_shots_are_steps_that_spend_ammunition():
    env = make_env(EnvConfig(scenario="basic"))
    obs, info = env.reset(seed=1)  # the monster off-centre: every shot misses
    ammo, spent = [obs["variables"][1] * 50], 0
    for _ in range(12):
        obs, _, done, _, info = env.step(2)
        assert not done
        ammo.append(obs["variables"][1] * 50)
        spent += ammo[-1] < ammo[-2]
    # the pistol fires a bullet one step after the trigger, then every 3 or 4 steps
    assert info["ep_shots"] == spent == ammo[0] - ammo[-1] >= 3
    env.close()


def test_the_kill_that_ends_an_episode_counts():
    env = make_env(EnvConfig(scenario="basic"))
    kills = []
    for seed in range(6):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, done, _, info = env.step(2)  # fire: the monster is sometimes straight ahead
        kills.append((info["ep_kills"], info["ep_return"] > 0))
    env.close()
    assert all(k == int(won) for k, won in kills) and any(won for _, won in kills)


def test_grey_and_size():
    env = make_env(EnvConfig(scenario="defend_the_center", grey=True, width=84, height=48))
    obs, info = env.reset(seed=0)
    assert obs["screen"].shape == (1, 48, 84)
    assert obs["variables"][1] > 0  # ammo
    env.close()


def test_health_gathering_sees_medikits():
    env = make_env(EnvConfig(scenario="health_gathering"))
    seen = np.zeros(3)
    env.reset(seed=1)
    for _ in range(30):
        _, _, done, _, info = env.step(0)
        seen += info["features"]
    assert seen[1] > 0 and seen[0] == 0  # health items, never an enemy
    env.close()


def test_deathmatch_against_bots():
    env = make_env(EnvConfig(scenario="deathmatch", bots=2, timelimit_min=0.05))
    obs, info = env.reset(seed=0)
    assert env.action_space.n == 12
    steps, done = 0, False
    while not done:
        _, _, done, _, info = env.step(env.action_space.sample())
        steps += 1
    assert 0.05 * 60 * 35 / 4 - 2 <= steps <= 0.05 * 60 * 35 / 4 + 2  # timelimit, frame skip 4
    env.close()


@pytest.mark.parametrize("name, rockets", [("deathmatch", True), ("deathmatch_full", False)])
def test_a_death_does_not_end_the_round(name, rockets):
    """The agent dies at the start of each of three rounds, respawns, and every round runs to
    its time limit on the same map (``multi.cfg``'s duel script ended a round at the agent's
    first death, and the engine then moved on to another map for the next round)."""
    limit = 0.05 * 60 * 35  # tics
    env = make_env(EnvConfig(scenario=name, bots=2, timelimit_min=0.05))
    for r in range(3):
        obs, _ = env.reset(seed=r)
        # the competition's MAP01 gives a rocket launcher with 15 rockets, MAP02 a pistol
        assert (obs["variables"][1] * 50 == pytest.approx(15)) == rockets
        env.game.send_game_command("kill")  # the agent's suicide, on the next tic
        done = False
        while not done:
            _, _, done, _, info = env.step(0)
        assert info["ep_deaths"] == 1 and info["ep_frags"] == info["ep_return"] == -1
        assert limit - 4 <= info["ep_tics"] <= limit
    env.close()


class ScriptedDeaths:
    """The real game, but dead on the given steps and finished at ``end`` (what the engine
    reports around a respawn that has not taken effect, or a round that ends on a death)."""

    def __init__(self, game, dead_steps, end):
        self.game, self.dead_steps, self.end, self.steps = game, set(dead_steps), end, 0

    def __getattr__(self, name):
        return getattr(self.game, name)

    def make_action(self, action, tics):
        self.steps += 1
        return self.game.make_action(action, tics)

    def is_player_dead(self):
        return self.steps in self.dead_steps

    def is_episode_finished(self):
        return self.steps >= self.end

    def respawn_player(self):
        pass


@pytest.mark.parametrize("dead_steps, end, deaths", [
    ((3, 4, 5), 5, 1),  # dies, the respawn does not take, the round ends on that death
    ((3, 6, 7), 9, 2),  # dies, respawns, dies again and stays dead two steps
])
def test_a_death_counts_once(dead_steps, end, deaths):
    env = make_env(EnvConfig(scenario="deathmatch", bots=0, timelimit_min=1.0))
    env.reset(seed=0)
    real = env.game
    env.game = ScriptedDeaths(real, dead_steps, end)
    done = False
    while not done:
        _, _, done, _, info = env.step(0)
    assert info["ep_deaths"] == deaths and env.game.steps == end
    env.game = real
    env.close()


def test_vector_env_resets_in_the_same_step():
    venv = make_vector_env(EnvConfig(scenario="basic"), 2)
    venv.reset(seed=0)
    for _ in range(100):
        obs, reward, term, trunc, info = venv.step(np.array([0, 1]))  # never fire: timeouts
        if term.any():
            break
    assert term.all()
    assert info["final_info"]["ep_tics"].tolist() == [300, 300]
    assert info["ep_tics"].tolist() == [0, 0]  # already the next episode
    venv.close()


def test_the_engine_folder_exists_before_a_game_starts(tmp_path, monkeypatch):
    """Each engine creates ./_vizdoom on start, checking first: games started together in a
    new working folder raced there and a loser's worker crashed (13 of 30 starts of two
    games in a stress run). The folder is made before the engine starts."""
    monkeypatch.chdir(tmp_path)
    env = make_env(EnvConfig(scenario="basic"))
    seen = []

    class Game:  # the real game, its init spied on
        def __getattr__(self, name):
            return getattr(real, name)

        def init(self):
            seen.append((tmp_path / ENGINE_DIR).is_dir())
            real.init()

    real, env.game = env.game, Game()
    try:
        env.reset(seed=0)
    finally:
        env.close()
    assert seen == [True]


def test_games_started_together_in_a_new_folder(tmp_path, monkeypatch):
    for run in range(2):
        (tmp_path / str(run)).mkdir()
        monkeypatch.chdir(tmp_path / str(run))
        venv = make_vector_env(EnvConfig(scenario="basic"), 4)
        try:
            obs, _ = venv.reset(seed=run)
            assert obs["screen"].shape == (4, 3, 60, 108)
        finally:
            venv.close()


class _Label:
    def __init__(self, category, w, h):
        self.object_category, self.width, self.height = category, w, h


def test_game_features_from_labels():
    labels = [_Label("Self", 20, 20), _Label("Player", 5, 5), _Label("Ammo", 2, 2),
              _Label("Health", 1, 1)]
    assert game_features(labels, min_pixels=12).tolist() == [1, 0, 0]
    assert game_features(labels, min_pixels=1).tolist() == [1, 1, 1]
    assert game_features([_Label("Self", 50, 50)]).tolist() == [0, 0, 0]


def test_shaping_from_variable_deltas():
    cfg = ShapingConfig(enabled=True)
    prev = Vars(health=100, armor=0, ammo=50, kills=0, frags=2, x=0, y=0)
    cur = Vars(health=80, armor=0, ammo=49, kills=0, frags=3, x=3, y=4)
    e = events(prev, cur, deathmatch=True)
    assert (e.kills, e.suicides, e.injuries, e.shots, e.pickups, e.distance) == \
        (1, 0, 1, 1, 0, 5.0)
    assert shaped_reward(e, False, cfg) == pytest.approx(5 - 1 - 0.2)
    assert navigation_reward(e, False, cfg) == pytest.approx(5 * cfg.nav_distance)
    suicide = events(cur, Vars(health=0, ammo=49, frags=2), deathmatch=True)
    assert suicide.suicides == 1
    assert shaped_reward(suicide, True, cfg) == pytest.approx(-5 - 5 - 1)
    pickup = events(Vars(health=50, ammo=10), Vars(health=75, ammo=30), deathmatch=False)
    assert pickup.pickups == 2 and shaped_reward(pickup, False, cfg) == pytest.approx(2)


def test_fire_combos_append_strafe_and_fire():
    assert scenario("basic").actions == ((ML,), (MR,), (A,))
    assert scenario("basic", True).actions == ((ML,), (MR,), (A,), (ML, A), (MR, A))
    env = make_env(EnvConfig(scenario="basic", fire_combos=True))
    assert env.action_space.n == 5
    env.reset(seed=1)  # the monster off-centre
    at, done = (env._cur.x, env._cur.y), False
    for _ in range(4):
        _, _, done, _, info = env.step(3)  # strafe left and fire, together
        if done:
            break
    assert info["ep_shots"] >= 1  # it fired ...
    assert done or (env._cur.x, env._cur.y) != at  # ... and moved (or killed, which ends the game)
    env.close()
