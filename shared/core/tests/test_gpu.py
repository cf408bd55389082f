"""The Trainer on CUDA (run by ``tools/test --gpu`` on a machine with a GPU)."""

import subprocess
import sys

import pytest
import torch

from dldiy_core.config import resolve
from dldiy_core.testing import assert_same_weights
from dldiy_core.toy import PRESETS, ToyConfig, build

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def toy(out, *sets):
    return build(resolve(ToyConfig, PRESETS, "tiny", None, ["train.device=cuda", *sets]), out)


def test_fit_and_resume_on_cuda(tmp_path):
    sets = ["train.epochs=3", "dropout=0.2", "n_valid=128", "train.eval_every=5"]
    full, data, valid = toy(tmp_path / "full", *sets)
    full.fit(data, valid)
    assert next(full.model.parameters()).is_cuda
    part, _, _ = toy(tmp_path / "part", *sets, "train.max_steps=11")
    part.fit(data, valid)
    toy(tmp_path / "part", *sets)[0].fit(data, valid, resume=True)
    assert_same_weights(tmp_path / "full/checkpoint.safetensors",
                        tmp_path / "part/checkpoint.safetensors", atol=1e-6)


def test_bf16_autocast_on_cuda(tmp_path):
    trainer, data, _ = toy(tmp_path, "train.precision=bf16", "train.epochs=4",
                           "train.log_every=4")
    history = trainer.fit(data)
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_one_process_nccl_under_torchrun(tmp_path):
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "1", "-m", "dldiy_core", "toy-train", "--preset",
                          "tiny", "--out", str(tmp_path / "r"), "--set", "train.device=cuda"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "backend nccl" in run.stderr and (tmp_path / "r/checkpoint.safetensors").exists()
