"""Checkpoints without pickle: tensors in safetensors, everything else as JSON in its header.

A state tree may hold dicts (any int/str keys), lists, tuples, None, bool, int, float, str,
torch tensors and numpy arrays: that covers module, optimizer, scheduler and RNG states.
Files are written atomically, so a run killed mid-save keeps its previous checkpoint, and carry
a SHA-256 of the header and every tensor's bytes, verified on load: a flipped bit or an edited
field is refused instead of resumed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import UserError
from .io import atomic_path, check_input

FORMAT = "dldiy-checkpoint/2"
LEGACY = "dldiy-checkpoint/1"  # written before checksums; read as is


class CheckpointError(UserError):
    """Missing, corrupt or incompatible checkpoint."""


def _encode(obj: Any, tensors: dict[str, torch.Tensor], key: str) -> Any:
    """Replace tensors/arrays by references into ``tensors``; keep JSON types; mark the rest."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)):
        return obj if not isinstance(obj, float) or np.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, torch.Tensor):
        name = f"{len(tensors)}:{key}"  # the counter keeps names unique whatever the keys
        tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": name}
    if isinstance(obj, np.ndarray):
        dtype = obj.dtype.str
        arr = obj.astype(np.int64) if obj.dtype in (np.uint32, np.uint16) else obj
        name = f"{len(tensors)}:{key}"
        tensors[name] = torch.from_numpy(np.ascontiguousarray(arr)).clone()
        return {"__ndarray__": name, "dtype": dtype}
    if isinstance(obj, np.generic):
        return _encode(obj.item(), tensors, key)
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, tensors, f"{key}/{i}") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"__tuple__": items}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, f"{key}/{k}") for k, v in obj.items()}
        if all(isinstance(k, (str, int)) for k in obj):
            return {"__items__": [[k, _encode(v, tensors, f"{key}/{k}")] for k, v in obj.items()]}
    raise TypeError(f"checkpoint state at '{key}': cannot store {type(obj).__name__}")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return tensors[obj["__ndarray__"]].numpy().astype(np.dtype(obj["dtype"]))
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def checksum(header: str, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the JSON header and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256(header.encode())
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a state tree to ``path`` (``.safetensors``), atomically, with its checksum."""
    tensors: dict[str, torch.Tensor] = {}
    header = json.dumps(_encode(state, tensors, ""))
    meta = {"format": FORMAT, "state": header, "sha256": checksum(header, tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a state tree written by :func:`save_checkpoint` (problems: :class:`CheckpointError`)."""
    path = Path(path)
    try:  # not registered as an input: a resumed run rewrites its checkpoint
        check_input(path, "checkpoint", register=False)
    except UserError as e:
        raise CheckpointError(str(e)) from None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open API)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        detail = " ".join(str(e).split())[:200]
        raise CheckpointError(f"{path}: not a readable checkpoint ({detail})") from None
    if meta.get("format") not in (FORMAT, LEGACY):
        raise CheckpointError(f"{path}: not a dldiy checkpoint (format {meta.get('format')!r}, "
                              f"expected {FORMAT!r})")
    if meta["format"] == FORMAT and meta.get("sha256") != checksum(meta.get("state", ""), tensors):
        raise CheckpointError(f"{path}: checksum mismatch (the file was changed or damaged "
                              "after it was written)")
    try:
        return _decode(json.loads(meta["state"]), tensors)
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint header ({e})") from None


def load_module_state(module: torch.nn.Module, state: dict, source: str | Path) -> None:
    """``module.load_state_dict`` with a one-line :class:`CheckpointError` on any mismatch."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise CheckpointError(f"{source}: does not fit the model ({detail[:300]})") from None
