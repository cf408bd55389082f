"""The command line on tiny real runs: train, resume, checkpoint contents, eval, record, demo,
bench."""

import json

import numpy as np
import pytest
import torch

from dldiy_core import UserError, load_checkpoint, resolve
from dldiy_core.testing import run_cli
from dldiy_doom_agent.cli import main
from dldiy_doom_agent.config import PRESETS, DoomConfig, EnvConfig
from dldiy_doom_agent.diagnose import strafe_then_fire
from dldiy_doom_agent.env import make_env
from dldiy_doom_agent.evaluate import VALID_SEED

TINY = ["--preset", "tiny", "--scenario", "basic", "--set", "env.width=84",
        "--set", "env.height=48"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "basic"
    result = run_cli(main, ["train", *TINY, "--out", str(out), "--set", "rl.actors=2"])
    assert result.code == 0, result.err
    return out


def test_checkpoint_is_self_describing(run):
    ck = load_checkpoint(run / "checkpoint.safetensors")
    assert ck["config"]["env"]["scenario"] == "basic"
    assert ck["trainer"]["step"] == 20
    assert set(ck["stateful"]) == {"actors", "target"}
    actors = ck["stateful"]["actors"]
    assert actors["env_steps"] >= 64 and "data" not in actors["replay"]
    assert "action.q.weight" in ck["stateful"]["target"]
    assert ck["optimizer"]["state"]  # RMSProp's running averages
    kinds = {json.loads(line)["kind"] for line in (run / "metrics.jsonl").read_text().splitlines()}
    assert kinds == {"train", "actor"}


def test_resume_continues_with_the_replay(tmp_path):
    out = tmp_path / "r"
    sets = [*TINY, "--set", "rl.save_replay=true", "--set", "train.max_steps=10"]
    assert run_cli(main, ["train", *sets, "--out", str(out)]).code == 0
    before = load_checkpoint(out / "checkpoint.safetensors")["stateful"]["actors"]
    assert before["replay"]["data"]["screen"].shape[1:] == (2000, 3, 48, 84)
    result = run_cli(main, ["train", *TINY, "--set", "rl.save_replay=true", "--out", str(out),
                            "--resume", "--set", "train.max_steps=15"])
    assert result.code == 0, result.err
    after = load_checkpoint(out / "checkpoint.safetensors")
    assert after["trainer"]["step"] == 15
    assert after["stateful"]["actors"]["env_steps"] > before["env_steps"]
    assert after["stateful"]["actors"]["replay"]["added"] > before["replay"]["added"]


def test_eval_record(run, tmp_path):
    js, gif = tmp_path / "eval.json", tmp_path / "ep.gif"
    result = run_cli(main, ["eval", "--run", str(run), "--episodes", "2", "--json", str(js),
                            "--gif", str(gif)])
    assert result.code == 0, result.err
    figures = json.loads(js.read_text())["figures"]
    assert figures["episodes"] == 2 and -500 < figures["mean_return"] < 100
    assert 0 <= figures["enemy_recall"] <= 1
    assert gif.read_bytes()[:6] == b"GIF89a"
    out = tmp_path / "rec.gif"
    result = run_cli(main, ["record", "--run", str(run), "--out", str(out), "--frames", "20"])
    assert result.code == 0, result.err
    from PIL import Image

    assert Image.open(out).n_frames == 10


def test_eval_over_training_seeds(run, tmp_path):
    other = tmp_path / "seed1"
    result = run_cli(main, ["train", *TINY, "--set", "train.seed=1", "--out", str(other)])
    assert result.code == 0, result.err
    js = tmp_path / "seeds.json"
    result = run_cli(main, ["eval", "--run", str(run), str(other), "--episodes", "2",
                            "--baseline", "--json", str(js)])
    assert result.code == 0, result.err
    f = json.loads(js.read_text())["figures"]
    per = [r["mean_return"] for r in f["runs"]]
    assert f["seeds"] == 2 and f["train_seeds"] == [0, 1] and f["episodes"] == 2
    assert f["mean_return_per_seed"] == per
    assert f["mean_return"] == pytest.approx(np.mean(per))
    assert f["mean_return_std"] == pytest.approx(np.std(per))
    # the random policy plays the same games for every run, so it is played once
    assert f["runs"][0]["random_mean_return"] == f["runs"][1]["random_mean_return"]
    assert f["random_mean_return"] == f["runs"][0]["random_mean_return"]
    assert f["runs"][1]["checkpoint"].startswith(str(other))
    assert f["checkpoint_update_per_seed"] == [20, 20]  # no validation in tiny: the last one


def test_diagnose_on_validation_games(run, tmp_path):
    js = tmp_path / "diag.json"
    result = run_cli(main, ["diagnose", "--run", str(run), "--episodes", "2", "--json", str(js)])
    assert result.code == 0, result.err
    f = json.loads(js.read_text())["figures"]
    assert f["episodes"] == 2 and f["valid_seed"] == VALID_SEED
    for tag in ("", "greedy_"):  # misses: shots beyond the kill (one bullet kills)
        assert f[f"{tag}misses"] == pytest.approx(f[f"{tag}shots"] - f[f"{tag}kills"])
        assert 0 <= f[f"{tag}kills"] <= 1 and f[f"{tag}tics"] > 0
    # the reference is the best of its family: at least what firing at once scores
    env = make_env(EnvConfig(scenario="basic", width=84, height=48))
    at_once = []
    for e in range(2):
        env.reset(seed=VALID_SEED + e)
        done, steps = False, 0
        while not done and steps < 3:
            _, _, done, _, info = env.step(2)
            steps += 1
        at_once.append(info["ep_return"] if done and info["ep_kills"] else -np.inf)
    env.close()
    assert f["reference_return"] >= np.mean(at_once) and f["reference_return"] <= 101
    bad = run_cli(main, ["diagnose", "--run", str(run), "--episodes", "-1"])
    assert bad.code == 2 and "--episodes" in bad.err


def test_the_reference_is_for_basic():
    cfg = resolve(DoomConfig, PRESETS, "tiny", sets=["env.scenario=defend_the_center"])
    with pytest.raises(UserError, match="basic"):
        strafe_then_fire(cfg, 1)


def test_export_then_demo_plays_the_exported_agent(run, tmp_path, monkeypatch):
    from dldiy_doom_agent import report

    small = tmp_path / "agent.safetensors"
    assert run_cli(main, ["export", "--run", str(run), "--out", str(small)]).code == 0
    ck = load_checkpoint(small)
    assert ck["model"]["action.q.weight"].dtype == torch.float16
    assert len(ck["curve_env_steps"]) == len(ck["curve_return"]) > 0
    monkeypatch.setattr(report, "DEMO_AGENT", small)
    out = tmp_path / "demo"
    result = run_cli(main, ["demo", "--out", str(out), "--set", "eval.episodes=2"])
    assert result.code == 0, result.err
    assert not (out / "run").exists()  # nothing trained
    summary = json.loads((out / "summary.json").read_text())
    assert {m["path"] for m in summary["media"]} >= {"episode.gif", "episode_return.png"}


def test_demo_trains_with_train(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", *TINY, "--train", "--out", str(out), "--set", "train.max_steps=10"]
    result = run_cli(main, args)
    assert result.code == 0, result.err
    summary = json.loads((out / "summary.json").read_text())
    assert {m["path"] for m in summary["media"]} >= {"episode.gif", "losses.png"}
    assert "mean reward, random policy" in summary["headlines"]
    assert (out / "index.html").exists()
    assert run_cli(main, args).code == 0  # a rerun reuses the finished run


def test_bench_keys(tmp_path):
    js = tmp_path / "bench.json"
    result = run_cli(main, ["bench", *TINY, "--seconds", "0.5", "--json", str(js)])
    assert result.code == 0, result.err
    figures = json.loads(js.read_text())["figures"]
    for key in ("raw_env_steps_per_s", "train_env_steps_per_s_1actor",
                "train_env_steps_per_s_2actors", "train_env_steps_per_s_2actors_sequential",
                "train_env_steps_per_s_2actors_overlap", "learner_updates_per_s",
                "learner_updates_per_s_fp32", "learner_updates_per_s_bf16",
                "train_loop_env_steps_per_s"):
        assert figures[key] > 0, key
    assert figures["collect_fraction_of_raw_2actors"] == pytest.approx(
        figures["train_env_steps_per_s_2actors"] / figures["raw_env_steps_per_s"])


@pytest.mark.gpu
def test_cuda_learner(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    out = tmp_path / "cuda"
    result = run_cli(main, ["train", *TINY, "--device", "cuda", "--out", str(out)])
    assert result.code == 0, result.err
    ck = load_checkpoint(out / "checkpoint.safetensors")
    assert ck["config"]["train"]["device"] == "cuda" and ck["trainer"]["step"] == 20


@pytest.mark.slow
def test_two_process_torchrun_training(tmp_path):
    """DDP learners: each process has its actors and a share of every batch."""
    import os
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "dldiy_doom_agent", "train", *TINY,
                          "--out", str(tmp_path / "ddp")],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    ck = load_checkpoint(tmp_path / "ddp" / "checkpoint.safetensors")
    assert ck["trainer"]["step"] == 20
    assert run_cli(main, ["eval", "--run", str(tmp_path / "ddp"), "--episodes", "1"]).code == 0


def test_shipped_demo_agent_loads_strictly():
    from dldiy_doom_agent.report import DEMO_AGENT
    from dldiy_doom_agent.train import load_agent

    cfg, model = load_agent(DEMO_AGENT)  # strict: every key present, shapes right
    assert cfg.env.scenario == "basic" and model.action.q.out_features == 3
    assert load_checkpoint(DEMO_AGENT)["curve_return"]
