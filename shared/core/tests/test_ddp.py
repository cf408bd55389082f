"""Two torchrun processes on CPU (gloo): own seeds per rank, kill and resume, clean exit."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dldiy_core.testing import assert_same_weights, last_logged_step

RUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
TOY = [*RUN, "-m", "dldiy_core", "toy-train", "--preset", "tiny"]
SETS = ["--set", "train.epochs=4", "--set", "train.batch_size=32", "--set", "dropout=0.3",
        "--set", "train.checkpoint_every=5", "--set", "train.log_every=1", "--set", "n_valid=64",
        "--set", "train.eval_every=6"]


def test_each_rank_draws_its_own_random_numbers(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, random, sys\nimport numpy as np, torch\n"
        "from dldiy_core.toy import PRESETS, ToyConfig, build\n"
        "from dldiy_core.config import resolve\n"
        "trainer, data, _ = build(resolve(ToyConfig, PRESETS, 'tiny', None, "
        "['train.max_steps=2', 'train.batch_size=32']), None)\n"
        "trainer.fit(data)\n"
        "draw = [torch.rand(1).item(), float(np.random.rand()), random.random()]\n"
        "open(sys.argv[1] + f'/rank{trainer.rank}.json', 'w').write(json.dumps(draw))\n")
    run = subprocess.run([*RUN, str(probe), str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    draws = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(a != b for a, b in zip(*draws, strict=True)), draws
    assert "destroy_process_group" not in run.stderr  # the group is closed at exit


@pytest.mark.slow
def test_two_process_kill_and_resume_with_dropout(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    proc = subprocess.Popen([*TOY, "--out", str(a), *SETS, "--step-delay", "0.05"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not ((a / "checkpoint.safetensors").exists() and last_logged_step(a) >= 12):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
    proc.wait()
    proc.stderr.close()
    resumed = subprocess.run([*TOY, "--out", str(a), *SETS, "--resume"], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole = subprocess.run([*TOY, "--out", str(b), *SETS], capture_output=True, text=True,
                           timeout=300)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert_same_weights(a / "checkpoint.safetensors", b / "checkpoint.safetensors")
    assert_same_weights(a / "best.safetensors", b / "best.safetensors")
    steps = [json.loads(x)["step"] for x in (a / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["kind"] == "train"]
    assert steps == list(range(1, 65))
