"""The BigANN / Deep1M vector formats: ``.fvecs`` (float32), ``.bvecs`` (uint8), ``.ivecs``
(int32). Each row is a little-endian int32 dimension ``d`` followed by ``d`` values.

Reading memory-maps the file, so a billion-row file costs no RAM until rows are touched, and
opening one reads only its size and first and last row headers (:func:`read_vecs`).
:func:`read_vectors` is the checked reader of every command: ``.fvecs/.bvecs/.ivecs`` or
``.npy``, a non-empty numeric ``[n, d]`` matrix without NaN or inf (the first bad row is named
by its row number in the file). Damaged or unreadable files are one
:class:`~dldiy_core.UserError` line naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dldiy_core import UserError, atomic_path, check_input, os_error

DTYPES = {".fvecs": np.dtype("<f4"), ".bvecs": np.dtype("u1"), ".ivecs": np.dtype("<i4")}
MAX_DIM = 1 << 20
CHUNK = 1 << 16
"""Rows checked at a time (the finiteness check never loads a whole memory-mapped file)."""


def _dtype(path: Path) -> np.dtype:
    try:
        return DTYPES[path.suffix]
    except KeyError:
        raise UserError(f"{path}: unknown vector format (expected .fvecs, .bvecs or .ivecs)"
                        ) from None


def _open_vecs(path: Path, what: str) -> tuple[np.memmap, int, np.dtype]:
    """``(rows [n, 4 + d * itemsize] uint8 memmap, d, dtype)``; reads the file size and the
    first row's header only (they give ``n`` and ``d``), plus the last row's header."""
    dtype = _dtype(path)
    check_input(path, what)
    try:
        size = path.stat().st_size
        if size < 4:
            raise UserError(f"{path}: empty vector file")
        d = int(np.fromfile(path, dtype="<i4", count=1)[0])
        if d <= 0 or d > MAX_DIM:
            raise UserError(f"{path}: bad dimension {d} in the first row header (not a "
                            f"{path.suffix} file?)")
        row = 4 + d * dtype.itemsize
        if size % row:
            raise UserError(f"{path}: truncated or corrupt ({size} bytes is not a whole number "
                            f"of {row}-byte rows of dimension {d})")
        raw = np.memmap(path, dtype="u1", mode="r", shape=(size // row, row))
        last = int(raw[-1, :4].copy().view("<i4")[0])
    except OSError as e:
        raise os_error(e, path, f"read {what}") from None
    if last != d:
        raise UserError(f"{path}: row {len(raw) - 1} has dimension {last}, expected {d}")
    return raw, d, dtype


def vecs_shape(path: str | os.PathLike, what: str = "vector file") -> tuple[int, int]:
    """``(n, d)`` of a ``.fvecs/.bvecs/.ivecs`` file from its size and first header."""
    raw, d, _ = _open_vecs(Path(path), what)
    return len(raw), d


def read_vecs(path: str | os.PathLike, count: int | None = None, what: str = "vector file"
              ) -> np.ndarray:
    """Memory-map a ``.fvecs/.bvecs/.ivecs`` file as ``[n, d]`` (first ``count`` rows).

    Only the file size and the first and last row headers are read: nothing is a pass over
    the rows, so a billion-row file opens at once. :func:`check_vecs_rows` checks the headers
    (and values) of the rows a caller uses; :func:`read_vectors` checks every row.
    """
    raw, _, dtype = _open_vecs(Path(path), what)
    n = len(raw) if count is None else min(count, len(raw))
    return raw[:n, 4:].view(dtype)


def check_vecs_rows(path: str | os.PathLike, stop: int | None = None,
                    what: str = "vector file") -> None:
    """Every row header of the first ``stop`` rows equals the first (a file whose rows
    disagree is refused naming the row), and their values are finite; in chunks of
    :data:`CHUNK` rows, so a memory-mapped file is never loaded whole."""
    path = Path(path)
    raw, d, dtype = _open_vecs(path, what)
    stop = len(raw) if stop is None else min(stop, len(raw))
    try:
        for i in range(0, stop, CHUNK):
            heads = raw[i:min(i + CHUNK, stop), :4].copy().view("<i4").ravel()
            if (heads != d).any():
                bad = int(np.flatnonzero(heads != d)[0])
                raise UserError(f"{path}: row {i + bad} has dimension {heads[bad]}, "
                                f"expected {d}")
        check_finite(raw[:stop, 4:].view(dtype), str(path))
    except OSError as e:  # a memory-mapped file that shrank or went away
        raise os_error(e, path, f"read {what}") from None


def read_npy(path: str | os.PathLike, what: str = "vector file") -> np.ndarray:
    """Memory-map a ``.npy`` matrix (never unpickles)."""
    path = check_input(path, what)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as e:
        raise os_error(e, path, f"read {what}") from None
    except Exception as e:  # noqa: BLE001 (numpy's header parser raises ValueError,
        # SyntaxError, tokenize errors... for a damaged header: all mean "not a .npy file")
        detail = " ".join(str(e).split())[:120]
        raise UserError(f"{path}: not a readable .npy file ({detail})") from None


def check_finite(x: np.ndarray, what: str, offset: int = 0) -> None:
    """NaN/inf vectors are bad input: name the first bad row (``offset``: row number of
    ``x[0]`` in the file), in chunks so a memory-mapped file is never loaded whole."""
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if x.dtype.kind in "biu":
        return
    first, count = None, 0
    for i in range(0, len(x), CHUNK):
        bad = ~np.isfinite(np.asarray(x[i:i + CHUNK], dtype=np.float32)).all(axis=1)
        if bad.any():
            count += int(bad.sum())
            if first is None:
                first = offset + i + int(np.flatnonzero(bad)[0])
    if first is not None:
        raise UserError(f"{what}: row {first} has NaN or inf values ({count} bad rows)")


def read_vectors(path: str | os.PathLike, what: str = "vector file") -> np.ndarray:
    """``.fvecs/.bvecs/.ivecs`` or ``.npy`` -> ``[n, d]`` (memory-mapped), checked: numeric,
    two-dimensional, at least one row and one dimension, every value finite."""
    path = Path(path)
    if path.suffix in DTYPES:
        x = read_vecs(path, what=what)
        check_vecs_rows(path, what=what)  # headers and values, one chunked pass
        return x
    if path.suffix != ".npy":
        raise UserError(f"{path}: unknown vector file type (expected .fvecs, .bvecs, .ivecs "
                        "or .npy)")
    x = read_npy(path, what)
    if x.dtype.kind not in "biuf":
        raise UserError(f"{path}: holds {x.dtype} values, expected numbers (float or int)")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise UserError(f"{path}: expected a non-empty [n, d] array, got shape {x.shape}")
    try:
        check_finite(x, str(path))
    except OSError as e:  # a memory-mapped file that shrank or went away
        raise os_error(e, path, f"read {what}") from None
    return x


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
