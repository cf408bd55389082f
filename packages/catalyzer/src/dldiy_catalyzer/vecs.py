"""The BigANN / Deep1M vector formats: ``.fvecs`` (float32), ``.bvecs`` (uint8), ``.ivecs``
(int32). Each row is a little-endian int32 dimension ``d`` followed by ``d`` values.

Reading memory-maps the file, so a billion-row file costs no RAM until rows are touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dldiy_core import UserError, atomic_path

DTYPES = {".fvecs": np.dtype("<f4"), ".bvecs": np.dtype("u1"), ".ivecs": np.dtype("<i4")}


def _dtype(path: Path) -> np.dtype:
    try:
        return DTYPES[path.suffix]
    except KeyError:
        raise UserError(f"{path}: unknown vector format (expected .fvecs, .bvecs or .ivecs)"
                        ) from None


def read_vecs(path: str | os.PathLike, count: int | None = None) -> np.ndarray:
    """Memory-map a ``.fvecs/.bvecs/.ivecs`` file as ``[n, d]`` (first ``count`` rows)."""
    path = Path(path)
    dtype = _dtype(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    size = path.stat().st_size
    if size < 4:
        raise UserError(f"{path}: empty vector file")
    d = int(np.fromfile(path, dtype="<i4", count=1)[0])
    if d <= 0 or d > 1 << 20:
        raise UserError(f"{path}: bad dimension {d} in the first row header")
    row = 4 + d * dtype.itemsize
    if size % row:
        raise UserError(f"{path}: truncated or corrupt ({size} bytes is not a whole number of "
                        f"{row}-byte rows of dimension {d})")
    n = size // row if count is None else min(count, size // row)
    raw = np.memmap(path, dtype="u1", mode="r", shape=(n, row))
    heads = raw[:, :4].copy().view("<i4").ravel()
    if (heads != d).any():
        bad = int(np.flatnonzero(heads != d)[0])
        raise UserError(f"{path}: row {bad} has dimension {heads[bad]}, expected {d}")
    return raw[:, 4:].view(dtype)


def write_vecs(path: str | os.PathLike, x: np.ndarray) -> Path:
    """Write ``x: [n, d]`` in the format given by the file suffix (atomically)."""
    path = Path(path)
    dtype = _dtype(path)
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected a [n, d] array, got shape {x.shape}")
    n, d = x.shape
    rows = np.empty((n, 4 + d * dtype.itemsize), dtype="u1")
    rows[:, :4] = np.full((n, 1), d, dtype="<i4").view("u1")
    rows[:, 4:] = np.ascontiguousarray(x, dtype=dtype).view("u1").reshape(n, -1)
    with atomic_path(path) as tmp:
        rows.tofile(tmp)
    return path
