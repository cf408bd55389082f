"""``load_checkpoint(path, mmap=keys)``: tensors under the keys as read-only memmaps of the file,
the rest read, with the refusals and checksum of the plain load."""

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from safetensors.torch import save_file

from dldiy_core.checkpoint import LEGACY, CheckpointError, load_checkpoint, save_checkpoint
from dldiy_core.testing import corrupted_bytes, reads_or_refuses


def state() -> dict:
    g = torch.Generator().manual_seed(0)
    return {"points": torch.randint(-128, 127, (50, 8), dtype=torch.int8, generator=g),
            "vectors": torch.randn(50, 6, generator=g),
            "arrays": {"f64": np.linspace(0, 1, 7), "u32": np.arange(5, dtype=np.uint32),
                       "bool": torch.tensor([True, False]), "empty": torch.zeros(0, 3),
                       "scalar": torch.tensor(2.5), "bf16": torch.ones(4, dtype=torch.bfloat16),
                       "nested": [(torch.arange(3), {1: np.ones((2, 2), np.float32)})]},
            "model": torch.nn.Linear(3, 2).state_dict(),
            "misc": {1: "int key", "x": [1.5, None, True, math.inf], "t": (1, 2)}}


def same(a, b) -> bool:
    """Equal trees, tensors compared as numpy arrays (a memmap stands for a tensor)."""
    if isinstance(a, (torch.Tensor, np.ndarray)):
        if isinstance(a, torch.Tensor) and a.dtype == torch.bfloat16:
            return isinstance(b, torch.Tensor) and torch.equal(a, b)
        na = a.numpy() if isinstance(a, torch.Tensor) else a
        nb = b.numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
        return na.dtype == nb.dtype and na.shape == nb.shape and np.array_equal(na, nb)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return a == b


def test_mapped_values_equal_the_plain_load(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", state())
    plain = load_checkpoint(path)
    mapped = load_checkpoint(path, mmap=("points", "vectors", "arrays", "absent"))
    assert same(plain, mapped) and mapped.keys() == plain.keys()
    for a in (mapped["points"], mapped["vectors"], mapped["arrays"]["f64"],
              mapped["arrays"]["bool"], mapped["arrays"]["nested"][0][1][1]):
        assert isinstance(a, np.memmap) and not a.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        mapped["points"][0, 0] = 1
    # converted arrays and tensors without a numpy dtype are read; other keys are torch tensors
    assert not isinstance(mapped["arrays"]["u32"], np.memmap)
    assert mapped["arrays"]["u32"].dtype == np.uint32
    assert isinstance(mapped["arrays"]["bf16"], torch.Tensor)
    assert all(isinstance(t, torch.Tensor) for t in mapped["model"].values())
    mapped["model"]["weight"].add_(1)  # read into memory: writable, the file is untouched
    assert same(load_checkpoint(path, mmap="points"), plain)  # a single key as a string
    assert isinstance(load_checkpoint(path, mmap="points")["points"], np.memmap)


def test_legacy_checkpoints_are_read_without_a_checksum_by_both(tmp_path):
    tensors = {"0:/w": torch.arange(4.0)}
    meta = {"format": LEGACY, "state": json.dumps({"w": {"__tensor__": "0:/w"}, "n": 3})}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    for mmap in ((), ("w",)):
        back = load_checkpoint(tmp_path / "old.safetensors", mmap=mmap)
        assert back["n"] == 3 and np.array_equal(np.asarray(back["w"]), np.arange(4.0))
    assert isinstance(load_checkpoint(tmp_path / "old.safetensors", mmap=["w"])["w"], np.memmap)


def refusal(path, mmap) -> str:
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, mmap=mmap)
    text = str(e.value)
    assert "\n" not in text and path.name in text
    return text.split(" (")[0]


def test_damaged_files_are_refused_alike(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", state())
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    damaged = {"flipped": data[:-5] + bytes([data[-5] ^ 1]) + data[-4:],
               "cut": data[:len(data) - 10], "junk": data + b"xx", "empty": b"",
               "huge_header": (len(data)).to_bytes(8, "little") + data[8:]}
    name = next(k for k in header if k != "__metadata__")
    for key, offsets in [("gap", lambda a, b: [a + 1, b + 1]), ("short", lambda a, b: [a, b - 1])]:
        h = json.loads(data[8:8 + n])
        h[name]["data_offsets"] = offsets(*h[name]["data_offsets"])
        text = json.dumps(h, separators=(",", ":")).encode()
        assert len(text) <= n
        damaged[key] = data[:8] + text.ljust(n) + data[8 + n:]
    meta = dict(header["__metadata__"])
    for key, change in [("edited", {"state": meta["state"].replace("int key", "int kex")}),
                        ("foreign", {"format": "other/1"}), ("bad_state", {"state": "{"})]:
        h = dict(header, __metadata__={**meta, **change})
        text = json.dumps(h).encode()
        damaged[key] = len(text).to_bytes(8, "little") + text + data[8 + n:]
    expected = {"flipped": "checksum mismatch", "edited": "checksum mismatch",
                "foreign": "not a dldiy checkpoint", "bad_state": "checksum mismatch"}
    for key, blob in damaged.items():
        p = tmp_path / f"{key}.safetensors"
        p.write_bytes(blob)
        plain, mapped = refusal(p, ()), refusal(p, ("points", "vectors"))
        assert plain == mapped, key
        assert plain.endswith(expected.get(key, "not a readable checkpoint")), (key, plain)
    missing = tmp_path / "missing.safetensors"
    assert refusal(missing, ()) == refusal(missing, ("points",))


def test_a_bad_header_behind_a_valid_checksum_is_one_line(tmp_path):
    from dldiy_core.checkpoint import FORMAT, checksum
    for bad in ("[1, 2", '{"__items__": 5}', '{"a": {"__tensor__": "nope"}}'):
        meta = {"format": FORMAT, "state": bad, "sha256": checksum(bad, {})}
        save_file({}, str(tmp_path / "h.safetensors"), metadata=meta)
        for mmap in ((), ("a",)):
            assert refusal(tmp_path / "h.safetensors", mmap).endswith("corrupt checkpoint header")


def small_checkpoint() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return save_checkpoint(Path(tmp) / "c.safetensors",
                               {"p": torch.arange(6, dtype=torch.int8),
                                "m": {"w": torch.ones(2, 2)}, "x": [1, "a"]}).read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted_bytes(small_checkpoint()))
def test_any_damage_is_read_or_refused_as_by_the_plain_load(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "c.safetensors"
    path.write_bytes(blob)
    plain = reads_or_refuses(load_checkpoint, path)
    mapped = reads_or_refuses(load_checkpoint, path, mmap=("p", "m"))
    assert (plain is None) == (mapped is None)
    if plain is not None:
        assert same(plain, mapped)
