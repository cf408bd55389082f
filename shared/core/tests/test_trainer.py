import json
import re
import subprocess
import sys
from itertools import count

import pytest
import torch

from dldiy_core import Hook, TrainConfig, Trainer, UserError
from dldiy_core.checkpoint import CheckpointError
from dldiy_core.config import resolve, to_dict
from dldiy_core.testing import assert_same_weights, kill_and_resume
from dldiy_core.toy import PRESETS, ToyConfig, build

TOY = [sys.executable, "-m", "dldiy_core", "toy-train", "--preset", "tiny"]


def toy(out, *sets):
    cfg = resolve(ToyConfig, PRESETS, "tiny", None, list(sets))
    return build(cfg, out)[:2]


def test_loss_goes_down_and_metrics_are_logged(tmp_path):
    trainer, data = toy(tmp_path, "train.epochs=4", "train.log_every=4", "train.grad_clip=1.0")
    history = trainer.fit(data)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == history and [r["step"] for r in lines] == list(range(4, 33, 4))
    assert lines[-1]["loss"] < 0.5 * lines[0]["loss"]
    assert all(r["grad_norm"] > 0 for r in lines)
    assert json.loads((tmp_path / "config.json").read_text()) == to_dict(trainer_cfg(trainer))


def trainer_cfg(trainer):
    return resolve(ToyConfig, {}, None, None, [f"{k}={v}" for k, v in flat(trainer.run_config)])


def flat(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


@pytest.mark.parametrize("sets, stop", [
    (["train.epochs=3", "dropout=0.2", "train.log_every=3"], 11),
    (["train.epochs=2", "dropout=0.3", "train.num_workers=1", "train.log_every=2"], 5),
])
def test_resume_in_process_equals_uninterrupted(tmp_path, sets, stop):
    full, data = toy(tmp_path / "full", *sets)
    full.fit(data)
    part, _ = toy(tmp_path / "part", *sets, f"train.max_steps={stop}")
    part.fit(data)
    resumed, _ = toy(tmp_path / "part", *sets)
    resumed.fit(data, resume=True)
    assert resumed.state.step == full.state.step > stop
    assert_same_weights(tmp_path / "full/checkpoint.safetensors",
                        tmp_path / "part/checkpoint.safetensors")

    def before_stop(run):  # the stopped run logged a short window at `stop`
        records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records
                if r["step"] < stop]
    assert before_stop(tmp_path / "part") == before_stop(tmp_path / "full") != []


def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    sets = ["--set", "train.epochs=6", "--set", "train.checkpoint_every=7",
            "--set", "train.log_every=1", "--set", "dropout=0.1"]
    kill_and_resume([*TOY, "--out", str(tmp_path / "a"), *sets, "--step-delay", "0.03"],
                    [*TOY, "--out", str(tmp_path / "a"), *sets, "--resume"],
                    tmp_path / "a", kill_after_step=17)
    subprocess.run([*TOY, "--out", str(tmp_path / "b"), *sets], check=True, capture_output=True)
    assert_same_weights(tmp_path / "a/checkpoint.safetensors",
                        tmp_path / "b/checkpoint.safetensors")
    metrics = (tmp_path / "a/metrics.jsonl").read_text().splitlines()
    steps = [json.loads(x)["step"] for x in metrics]
    assert steps == list(range(1, 49))
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_two_process_torchrun_matches_one_process(tmp_path):
    sets = ["--set", "train.max_steps=30", "--set", "train.batch_size=32"]
    subprocess.run([*TOY, "--out", str(tmp_path / "one"), *sets], check=True, capture_output=True)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "dldiy_core", "toy-train", "--preset",
                          "tiny", "--out", str(tmp_path / "two"), *sets],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert_same_weights(tmp_path / "one/checkpoint.safetensors",
                        tmp_path / "two/checkpoint.safetensors", atol=1e-5)
    one, two = ((tmp_path / d / "metrics.jsonl").read_text().splitlines() for d in ("one", "two"))
    assert [json.loads(x)["loss"] for x in one] == pytest.approx(
        [json.loads(x)["loss"] for x in two], rel=1e-4)


class Counter(Hook):
    def __init__(self):
        self.calls = {"start": 0, "step": 0, "logged": 0, "epoch": 0, "end": 0}

    def on_fit_start(self, trainer): self.calls["start"] += 1
    def on_epoch_end(self, trainer): self.calls["epoch"] += 1
    def on_fit_end(self, trainer): self.calls["end"] += 1

    def on_step_end(self, trainer, logged):
        self.calls["step"] += 1
        self.calls["logged"] += logged is not None


def test_hooks_and_step_budget(tmp_path):
    trainer, data = toy(None, "train.epochs=5", "train.max_steps=20", "train.log_every=5")
    hook = Counter()
    trainer.hooks.append(hook)
    trainer.fit(data)
    assert hook.calls == {"start": 1, "step": 20, "logged": 4, "epoch": 2, "end": 1}
    assert trainer.state.step == 20 and trainer.state.epoch == 2 and trainer.state.batch == 4


class Endless:
    """An endless BatchSource (what an RL actor or a generator would provide)."""

    def num_batches(self, epoch):
        return None

    def batches(self, epoch, start):
        g = torch.Generator().manual_seed(epoch)
        for _ in count(start):
            x = torch.randn(16, 2, generator=g)
            yield x, x.sum(1, keepdim=True)


def test_endless_source_needs_and_obeys_max_steps():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])  # noqa: E731
    with pytest.raises(UserError, match="endless"):
        Trainer(model, opt, loss, TrainConfig(progress=False)).fit(Endless())
    trainer = Trainer(model, opt, loss, TrainConfig(max_steps=50, progress=False))
    history = trainer.fit(Endless())
    assert trainer.state.step == 50 and history[-1]["loss"] < 1e-2


def test_refuses_to_overwrite_or_resume_wrongly(tmp_path):
    trainer, data = toy(tmp_path)
    trainer.fit(data)
    before = (tmp_path / "checkpoint.safetensors").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        toy(tmp_path)[0].fit(data)
    with pytest.raises(CheckpointError, match=r"different config \(hidden: 16 -> 32\)"):
        toy(tmp_path, "hidden=32")[0].fit(data, resume=True)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        toy(tmp_path / "empty")[0].fit(data, resume=True)
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == before
    toy(tmp_path, "train.epochs=2")[0].fit(data, resume=True)  # more epochs is a valid resume


@pytest.mark.parametrize("sets, message", [
    (["train.batch_size=0"], "'train.batch_size': 0 is out of range (must be >= 1)"),
    (["train.log_every=0"], "'train.log_every': 0 is out of range (must be >= 1)"),
    (["train.epochs=-1"], "'train.epochs': -1 is out of range (must be >= 0)"),
    (["train.epochs=0"], "nothing to train"),
])
def test_bad_train_settings_are_config_errors(sets, message):
    from dldiy_core import ConfigError
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve(ToyConfig, PRESETS, "tiny", None, sets)


def test_every_toy_and_train_setting_is_range_checked():
    from dldiy_core.testing import assert_config_bounds
    assert assert_config_bounds(ToyConfig, PRESETS) > 20


def test_resume_ignores_a_metrics_line_cut_by_the_kill(tmp_path):
    trainer, data = toy(tmp_path, "train.log_every=2")
    trainer.fit(data)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "st')
    toy(tmp_path, "train.log_every=2", "train.epochs=2")[0].fit(data, resume=True)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == list(range(2, 17, 2))
