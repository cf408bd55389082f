"""Memory-mapped reading of a core checkpoint (safetensors + JSON header, no pickle).

``dldiy_core.load_checkpoint`` copies every tensor into memory; an index of a billion vectors
must not. :func:`read_mapped` reads the same file format (``dldiy-checkpoint/2``), verifies
the same SHA-256 (streamed over the file, so its pages stay file-backed and evictable), and
returns large arrays as read-only ``np.memmap`` views of the file.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dldiy_core import CheckpointError, UserError, check_input

CORE_FORMAT = "dldiy-checkpoint/2"
DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
"""safetensors dtype codes readable here (bf16 has no numpy type: not used by indexes)."""
HASH_CHUNK = 1 << 24


def torch_dtype_name(a: np.ndarray) -> str:
    """The dtype as the core's checksum writes it (``torch.float32``...)."""
    return str(torch.from_numpy(np.empty(0, dtype=a.dtype)).dtype)


def update_hash(h: Any, a: np.ndarray) -> None:
    """Feed an array's bytes (C order) to ``h`` in chunks (a memmap is read page by page)."""
    flat = a.reshape(-1).view(np.uint8) if a.size else a
    for i in range(0, flat.size, HASH_CHUNK):
        h.update(memoryview(np.ascontiguousarray(flat[i:i + HASH_CHUNK])))


def _arrays(path: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("shorter than a safetensors header")
        n = int.from_bytes(head, "little")
        if not 2 <= n <= min(size - 8, 100 << 20):
            raise ValueError(f"header of {n} bytes in a file of {size}")
        header = json.loads(f.read(n))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise ValueError("metadata is not a string map")
    arrays, base = {}, 8 + n
    for name, info in header.items():
        dtype = np.dtype(DTYPES[info["dtype"]])
        shape = tuple(int(s) for s in info["shape"])
        start, end = (int(v) for v in info["data_offsets"])
        if min(shape, default=0) < 0 or not 0 <= start <= end <= size - base or \
                end - start != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"tensor {name!r}: offsets {start}..{end} do not fit its shape "
                             f"{shape} or the file")
        arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=base + start,
                                 shape=shape) if end > start else np.empty(shape, dtype)
    return meta, arrays


def _decode(obj: Any, arrays: dict[str, np.ndarray], mapped: bool = False) -> Any:
    """The core's JSON state tree with its tensors: torch tensors (copies), or read-only
    memmaps under the top-level keys chosen by :func:`read_mapped`."""
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        a = arrays[obj["__tensor__"]]
        return a if mapped else torch.from_numpy(np.array(a))
    if "__ndarray__" in obj:
        return np.array(arrays[obj["__ndarray__"]]).astype(np.dtype(obj["dtype"]))
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__tuple__" in obj:
        return tuple(_decode(v, arrays) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _decode(v, arrays) for k, v in obj["__items__"]}
    return {k: _decode(v, arrays) for k, v in obj.items()}


def read_mapped(path: str | Path, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """The state tree of a checkpoint written by ``dldiy_core.save_checkpoint``; the tensors
    directly under the top-level ``keys`` stay memory-mapped (read-only ``np.memmap``), the
    others are read into torch tensors. Refused (one :class:`CheckpointError` line) as the
    core refuses."""
    path = Path(path)
    try:
        check_input(path, "checkpoint", register=False)
    except UserError as e:  # missing, a folder, unreadable
        raise CheckpointError(str(e)) from None
    try:
        meta, arrays = _arrays(path)
    except (OSError, ValueError, KeyError, TypeError, OverflowError,
            json.JSONDecodeError, UnicodeDecodeError) as e:
        detail = " ".join(str(e).split())[:200]
        raise CheckpointError(f"{path}: not a readable checkpoint ({detail})") from None
    if meta.get("format") != CORE_FORMAT:
        raise CheckpointError(f"{path}: not a dldiy checkpoint (format {meta.get('format')!r}, "
                              f"expected {CORE_FORMAT!r})")
    h = hashlib.sha256(meta.get("state", "").encode())
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"\0{name}\0{torch_dtype_name(a)}\0{tuple(a.shape)}\0".encode())
        update_hash(h, a)
    if meta.get("sha256") != h.hexdigest():
        raise CheckpointError(f"{path}: checksum mismatch (the file was changed or damaged "
                              "after it was written)")
    try:
        tree = json.loads(meta["state"])
        if not isinstance(tree, dict):
            return _decode(tree, arrays)
        return {k: _decode(v, arrays, k in keys) for k, v in tree.items()}
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint header ({e})") from None
