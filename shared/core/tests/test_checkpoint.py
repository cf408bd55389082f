import math
import random

import numpy as np
import pytest
import torch

from dldiy_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_of_optimizer_rng_and_plain_types(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {"model": model.state_dict(), "opt": opt.state_dict(),
             "np": np.random.get_state(), "py": random.getstate(), "torch": torch.get_rng_state(),
             "misc": {1: "int key", "x": [1.5, None, True, math.inf], "t": (1, 2)}}
    save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert back["misc"] == state["misc"]
    assert back["py"] == state["py"]
    assert back["np"][0] == "MT19937" and np.array_equal(back["np"][1], state["np"][1])
    assert back["np"][1].dtype == np.uint32
    assert torch.equal(back["torch"], state["torch"])
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1.0)
    opt2.load_state_dict(back["opt"])
    assert opt2.param_groups[0]["lr"] == 0.1
    assert torch.equal(opt2.state[opt2.param_groups[0]["params"][0]]["exp_avg"],
                       opt.state[model.weight]["exp_avg"])
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_refuses_objects_it_would_have_to_pickle(tmp_path):
    with pytest.raises(TypeError, match="cannot store object"):
        save_checkpoint(tmp_path / "c.safetensors", {"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_missing_truncated_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="nope.safetensors: checkpoint not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    path = save_checkpoint(tmp_path / "c.safetensors", {"w": torch.zeros(100)})
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.safetensors")
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="other.safetensors: not a dldiy checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")


def test_keys_that_look_alike_keep_their_own_tensors(tmp_path):
    state = {"a": {1: torch.zeros(1), "1": torch.ones(1)}, "b/c": torch.full((1,), 2.0),
             "b": {"c": torch.full((1,), 3.0)}}
    back = load_checkpoint(save_checkpoint(tmp_path / "c.safetensors", state))
    assert back["a"][1].item() == 0 and back["a"]["1"].item() == 1
    assert back["b/c"].item() == 2 and back["b"]["c"].item() == 3


def test_a_folder_named_like_a_checkpoint_is_not_reported_missing(tmp_path):
    from dldiy_core.checkpoint import CheckpointError, load_checkpoint
    (tmp_path / "x.safetensors").mkdir()
    with pytest.raises(CheckpointError, match="is a folder, expected a file"):
        load_checkpoint(tmp_path / "x.safetensors")
