"""Bad input: one line on stderr, exit code 2, nothing replaced."""

import pytest

from dldiy_core import save_checkpoint
from dldiy_core.testing import assert_user_error, list_files, run_cli
from dldiy_doom_agent.cli import main

TINY = ["--preset", "tiny", "--scenario", "basic", "--set", "env.width=84",
        "--set", "env.height=48"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bad") / "basic"
    result = run_cli(main, ["train", *TINY, "--out", str(out), "--set", "train.max_steps=4",
                            "--set", "rl.learning_starts=16"])
    assert result.code == 0, result.err
    return out


def test_bad_input_is_one_line(run, tmp_path):
    ckpt = run / "checkpoint.safetensors"
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(ckpt.read_bytes()[:3000])
    other = save_checkpoint(tmp_path / "other.safetensors", {"config": {"nope": 1}})
    no_wad = tmp_path / "nowad.cfg"
    no_wad.write_text("doom_scenario_path = missing.wad\navailable_buttons = { ATTACK }\n")
    no_buttons = tmp_path / "nobuttons.cfg"
    no_buttons.write_text("doom_scenario_path = missing.wad\n")
    before = list_files(tmp_path) | {f"run/{f}" for f in list_files(run)}
    cases = [
        (["train", "--scenario", "doom3", "--out", str(tmp_path / "x")],
         "unknown scenario 'doom3' (available: basic, defend_the_center, health_gathering, "
         "deathmatch"),
        (["train", *TINY, "--scenario", str(no_wad), "--out", str(tmp_path / "x")],
         "missing.wad: scenario WAD not found"),
        (["train", *TINY, "--scenario", str(no_buttons), "--out", str(tmp_path / "x")],
         "nobuttons.cfg: no available_buttons"),
        (["train", *TINY, "--scenario", "nowhere.cfg", "--out", str(tmp_path / "x")],
         "nowhere.cfg: scenario config not found"),
        (["eval", "--run", str(corrupt)], "corrupt.safetensors: not a readable checkpoint"),
        (["eval", "--run", str(other)], "other.safetensors: not a doom-agent checkpoint"),
        (["eval", "--run", str(tmp_path / "missing")], "checkpoint not found"),
        (["eval", "--run", str(run), "--scenario", "health_gathering"],
         "made for another action space (basic: 3 actions, health_gathering: 5)"),
        (["eval", "--run", str(run), "--json", str(ckpt)], "is the input"),
        (["eval", "--run", str(run), "--json", str(ckpt), "--force"], "is the input"),
        (["diagnose", "--run", str(run), "--json", str(run / "config.json")],
         "is a file of the run"),
        (["record", "--run", str(run), "--out", str(tmp_path / "x.mp4")], "GIF files"),
        (["eval", "--run", str(run), "--episodes", "0"], "--episodes=0"),
        (["eval", "--run", str(run), str(run / "checkpoint.safetensors")],
         "the same checkpoint given twice"),
        (["train", *TINY, "--out", str(tmp_path / "x"), "--set", "eval.episodes=-1"],
         "eval.episodes=-1"),
        (["train", *TINY, "--out", str(run)], "already holds a run"),
        (["train", *TINY, "--out", str(tmp_path / "x"), "--set", "rl.burn_in=9"],
         "rl.burn_in=9 must be below rl.seq_len=4"),
        (["train", *TINY, "--out", str(tmp_path / "x"), "--set", "model.game_features=false",
          "--set", "model.navigation=on"], "model.navigation needs model.game_features"),
        (["train", *TINY, "--out", str(tmp_path / "x"), "--set", "rl.replay=1"],
         "rl.replay=1: too small"),
        (["train", *TINY, "--out", str(tmp_path / "x"), "--set", "env.frame_skip=0"],
         "frame_skip=0"),
        (["train", *TINY, "--out", str(tmp_path / "x"), "--device", "cuda:7"], "cuda:7"),
        (["train", "--preset", "huge", "--out", str(tmp_path / "x")], "unknown preset 'huge'"),
        (["train", *TINY, "--out", str(run), "--resume", "--set", "rl.lr=1"],
         "written with a different config"),
        (["ablation", *TINY, "--out", str(tmp_path / "x"), "--seeds", "0"], "--seeds=0"),
        (["export", "--run", str(run), "--out", str(ckpt)], "outputs never replace inputs"),
        (["export", "--run", str(run), "--out", str(run / "config.json")],
         "is a file of the run in"),
        (["export", "--run", str(tmp_path / "missing"), "--out", str(tmp_path / "s.st")],
         "checkpoint not found"),
    ]
    for argv, message in cases:
        assert_user_error(run_cli(main, argv), message)
    after = list_files(tmp_path) | {f"run/{f}" for f in list_files(run)}
    assert after == before, after ^ before
