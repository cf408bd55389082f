"""Checkpoints without pickle: tensors in safetensors, everything else as JSON in its header.

A state tree may hold dicts (any int/str keys), lists, tuples, None, bool, int, float, str,
torch tensors and numpy arrays: that covers module, optimizer, scheduler and RNG states.
Files are written atomically, so a run killed mid-save keeps its previous checkpoint, and carry
a SHA-256 of the header and every tensor's bytes, verified on load: a flipped bit or an edited
field is refused instead of resumed. ``load_checkpoint(path, mmap=("points",))`` leaves the
tensors under the named top-level keys in the file, as read-only ``np.memmap`` views (an index of
a billion vectors is never copied into memory); the checksum is then streamed over the file.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
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
DTYPES = {"BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16,
          "U16": torch.uint16, "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32,
          "U32": torch.uint32, "F32": torch.float32, "I64": torch.int64, "U64": torch.uint64,
          "F64": torch.float64, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}
"""safetensors dtype codes read by the memory-mapped path."""
NUMPY = {t: np.dtype(n) for t, n in [
    (torch.bool, "bool"), (torch.uint8, "u1"), (torch.int8, "i1"), (torch.int16, "<i2"),
    (torch.uint16, "<u2"), (torch.float16, "<f2"), (torch.int32, "<i4"), (torch.uint32, "<u4"),
    (torch.float32, "<f4"), (torch.int64, "<i8"), (torch.uint64, "<u8"), (torch.float64, "<f8")]}
"""Tensors that can stay memory-mapped (bfloat16 and float8 have no numpy type: read)."""
MAX_HEADER = 100_000_000  # safetensors' own limit
HASH_CHUNK = 1 << 24  # bytes hashed at a time: a memory-mapped tensor is read page by page


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
        t, dtype = tensors[obj["__ndarray__"]], np.dtype(obj["dtype"])
        if isinstance(t, np.ndarray):  # memory-mapped: a view when no conversion is needed
            return t if t.dtype == dtype else np.array(t, dtype=dtype)
        return t.numpy().astype(dtype)
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


Raw = tuple[torch.dtype, tuple[int, ...], np.ndarray]
"""A tensor as the checksum sees it: dtype, shape and its bytes (``[nbytes]`` uint8)."""


def _digest(header: str, tensors: dict[str, Raw]) -> str:
    h = hashlib.sha256(header.encode())
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        h.update(f"\0{name}\0{dtype}\0{shape}\0".encode())
        for i in range(0, data.size, HASH_CHUNK):
            h.update(data[i:i + HASH_CHUNK])
    return h.hexdigest()


def checksum(header: str, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the JSON header and every tensor's name, dtype, shape and bytes."""
    return _digest(header, {name: (t.dtype, tuple(t.shape),
                                   t.reshape(-1).view(torch.uint8).numpy())
                            for name, t in tensors.items()})


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a state tree to ``path`` (``.safetensors``), atomically, with its checksum."""
    tensors: dict[str, torch.Tensor] = {}
    header = json.dumps(_encode(state, tensors, ""))
    meta = {"format": FORMAT, "state": header, "sha256": checksum(header, tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def _map_file(path: Path) -> tuple[dict[str, str], dict[str, Raw]]:
    """The metadata and tensors of a safetensors file, as read-only views of one memory map;
    the header and offsets checked as safetensors checks them (``ValueError`` otherwise)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("shorter than a safetensors header")
        n = int.from_bytes(head, "little")
        if not 2 <= n <= min(size - 8, MAX_HEADER):
            raise ValueError(f"header of {n} bytes in a file of {size}")
        header = json.loads(f.read(n).decode())
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise ValueError("metadata is not a string map")
    whole = np.memmap(path, dtype=np.uint8, mode="r")
    base, end_of_last, tensors = 8 + n, 0, {}
    spans = sorted((tuple(int(v) for v in info["data_offsets"]), name, info)
                   for name, info in header.items())
    for (start, end), name, info in spans:
        dtype = DTYPES[info["dtype"]]
        shape = tuple(int(s) for s in info["shape"])
        if min(shape, default=0) < 0 or start != end_of_last or \
                end - start != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"tensor {name!r}: offsets {start}..{end} do not fit its shape "
                             f"{shape} or the file")
        tensors[name], end_of_last = (dtype, shape, whole[base + start:base + end]), end
    if base + end_of_last != size:
        raise ValueError(f"tensor data ends at byte {base + end_of_last} of a file of {size}")
    return meta, tensors


class _Mapped(dict):
    """Tensors of a memory-mapped file by name: read-only numpy views (``mapped``), else torch
    tensors read into memory; converted when first asked for."""

    def __init__(self, raw: dict[str, Raw], mapped: bool) -> None:
        super().__init__()
        self.raw, self.mapped = raw, mapped

    def __missing__(self, name: str) -> torch.Tensor | np.ndarray:
        dtype, shape, data = self.raw[name]
        if self.mapped and dtype in NUMPY:
            t = data.view(NUMPY[dtype]).reshape(shape)
        elif data.size:
            t = torch.from_numpy(np.array(data)).view(dtype).reshape(shape)
        else:
            t = torch.empty(shape, dtype=dtype)
        self[name] = t
        return t


def load_checkpoint(path: str | Path, mmap: Iterable[str] = ()) -> dict[str, Any]:
    """Read a state tree written by :func:`save_checkpoint` (problems: :class:`CheckpointError`).

    ``mmap``: top-level keys whose tensors and arrays stay in the file, as read-only
    ``np.memmap`` views (arrays saved as uint16/uint32 and tensors without a numpy dtype,
    bfloat16 and float8, are read); the rest is read into memory, the checksum is streamed over
    the file (its pages stay file-backed) and every refusal is the same as without ``mmap``.
    """
    path = Path(path)
    mapped = frozenset([mmap] if isinstance(mmap, str) else mmap)
    try:  # not registered as an input: a resumed run rewrites its checkpoint
        check_input(path, "checkpoint", register=False)
    except UserError as e:
        raise CheckpointError(str(e)) from None
    try:
        if mapped:
            meta, raw = _map_file(path)
        else:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open API)
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError, TypeError,
            OverflowError) as e:
        detail = " ".join(str(e).split())[:200]
        raise CheckpointError(f"{path}: not a readable checkpoint ({detail})") from None
    if meta.get("format") not in (FORMAT, LEGACY):
        raise CheckpointError(f"{path}: not a dldiy checkpoint (format {meta.get('format')!r}, "
                              f"expected {FORMAT!r})")
    if meta["format"] == FORMAT and meta.get("sha256") != (
            _digest(meta.get("state", ""), raw) if mapped
            else checksum(meta.get("state", ""), tensors)):
        raise CheckpointError(f"{path}: checksum mismatch (the file was changed or damaged "
                              "after it was written)")
    try:
        tree = json.loads(meta["state"])
        if not mapped:
            return _decode(tree, tensors)
        read, views = _Mapped(raw, False), _Mapped(raw, True)
        if not isinstance(tree, dict) or any(k.startswith("__") for k in tree):
            return _decode(tree, read)  # not a tree of string keys (a damaged header)
        return {k: _decode(v, views if k in mapped else read) for k, v in tree.items()}
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint header ({e})") from None


def load_module_state(module: torch.nn.Module, state: dict, source: str | Path) -> None:
    """``module.load_state_dict`` with a one-line :class:`CheckpointError` on any mismatch."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise CheckpointError(f"{source}: does not fit the model ({detail[:300]})") from None
