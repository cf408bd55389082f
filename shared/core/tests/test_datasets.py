"""Any map-style dataset trains, and item randomness is reproducible (resume, workers)."""

import random

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, StackDataset, Subset, TensorDataset, random_split

from dldiy_core import TrainConfig, Trainer
from dldiy_core.testing import assert_same_weights
from dldiy_core.toy import mlp, mse_loss, planted_regression


class Augmented(Dataset):
    """Draws torch, numpy and python random numbers per item (an augmentation)."""

    def __init__(self, n=192):
        self.x, self.y = planted_regression(n, 8, 2).tensors

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        shift = 0.1 * torch.randn(8) + 0.05 * np.random.normal() + 0.05 * random.random()
        return self.x[i] + shift, self.y[i]


def run(out, data, **train):
    torch.manual_seed(0)
    model = mlp(8, 16, 2, dropout=0.2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    cfg = TrainConfig(**{"batch_size": 32, "progress": False, "device": "cpu", **train})
    trainer = Trainer(model, opt, mse_loss, cfg, out)
    return trainer, trainer.fit(data)


@pytest.mark.parametrize("wrap", ["subset", "stack", "random_split", "tensordataset"])
def test_any_map_style_dataset_trains(wrap):
    x, y = planted_regression(256, 8, 2).tensors
    data = {"subset": lambda: Subset(TensorDataset(x, y), list(range(0, 256, 2))),
            "stack": lambda: StackDataset(x, y),
            "random_split": lambda: random_split(TensorDataset(x, y), [0.75, 0.25],
                                                 torch.Generator().manual_seed(0))[0],
            "tensordataset": lambda: TensorDataset(x, y)}[wrap]()
    _, history = run(None, data, epochs=4, log_every=2)
    assert history[-1]["loss"] < history[0]["loss"]


def test_item_randomness_same_with_workers_and_across_resume(tmp_path):
    data = Augmented()
    run(tmp_path / "w0", data, epochs=3)
    run(tmp_path / "w2", data, epochs=3, num_workers=2)
    assert_same_weights(tmp_path / "w0/checkpoint.safetensors",
                        tmp_path / "w2/checkpoint.safetensors")
    run(tmp_path / "part", data, epochs=3, num_workers=2, max_steps=8)
    torch.manual_seed(123)  # the resumed run's generators come from the checkpoint
    model = mlp(8, 16, 2, dropout=0.2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    cfg = TrainConfig(batch_size=32, progress=False, device="cpu", epochs=3, num_workers=2)
    Trainer(model, opt, mse_loss, cfg, tmp_path / "part").fit(data, resume=True)
    assert_same_weights(tmp_path / "w0/checkpoint.safetensors",
                        tmp_path / "part/checkpoint.safetensors")


def test_item_fetch_leaves_the_training_generators_alone():
    data = Augmented(64)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    from dldiy_core import DatasetBatches
    next(iter(DatasetBatches(data, 16).batches(0, 0)))
    assert torch.equal(torch.rand(3), expected)
