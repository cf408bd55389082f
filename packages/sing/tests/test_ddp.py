"""Two torchrun processes (gloo, CPU): each takes half of every LSTM-stage batch, and the three
stages end on the weights of one process with the same global batch."""

import subprocess
import sys

import pytest
import torch

from dldiy_core import load_checkpoint
from dldiy_sing.train import EmbeddedNotes, sequence_batches


def test_each_process_takes_its_half_of_every_chunked_batch(tmp_path, monkeypatch):
    import numpy as np

    np.save(tmp_path / "e.npy", np.zeros((12, 2, 3), np.float32))
    labels = tuple(torch.arange(12) for _ in range(3))
    notes = EmbeddedNotes(labels, tmp_path / "e.npy")
    whole = [(b[0].tolist(), c) for b, c in sequence_batches(notes, 4, 3, seed=1).batches(0, 0)]
    shares = []
    for r in (0, 1):
        monkeypatch.setenv("RANK", str(r))
        monkeypatch.setenv("WORLD_SIZE", "2")
        shares.append([(b[0].tolist(), c) for b, c in
                       sequence_batches(notes, 4, 3, seed=1).batches(0, 0)])
    assert len(shares[0]) == len(shares[1]) == len(whole) == 9  # 3 batches x 3 chunks
    for (a, ca), (b, cb), (w, cw) in zip(*shares, whole, strict=True):
        assert ca == cb == cw and len(a) == len(b) == 2
        assert sorted(a + b) == sorted(w) and not set(a) & set(b)


@pytest.mark.slow
def test_two_processes_reach_the_weights_of_one(nsynth_dir, tmp_path):
    args = ["train", "--preset", "tiny", "--set", f"data.path={nsynth_dir}",
            "--set", "train.drop_last=true"]
    one = subprocess.run([sys.executable, "-m", "dldiy_sing", *args, "--out", str(tmp_path / "1")],
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "dldiy_sing", *args,
                          "--out", str(tmp_path / "2")], capture_output=True, text=True,
                         timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    for stage in ("ae", "seq", "sing"):
        a = load_checkpoint(tmp_path / "1" / stage / "checkpoint.safetensors")["model"]
        b = load_checkpoint(tmp_path / "2" / stage / "checkpoint.safetensors")["model"]
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4, msg=f"{stage} {k}")
