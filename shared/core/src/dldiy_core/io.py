"""Reading inputs and writing outputs safely, every OS error one line naming the path.

Writing: :func:`atomic_path` (and :func:`atomic_write_bytes` / :func:`atomic_write_text`) write
to a temporary file beside the destination, then rename it: readers never see a half-written
file, and a failure (disk full, permission, read-only file system, a file where a folder is
expected, the destination a folder) leaves the old file intact, no temporary file behind, and
raises one :class:`~dldiy_core.errors.UserError` naming the destination. They refuse to replace
an input of the running command (:mod:`dldiy_core.guard`).

Reading: :func:`check_input` (for libraries that take a path), :func:`open_input` and
:func:`read_input` check that the input exists, is a file (or a folder when asked) and can be
read, raise one line naming it otherwise, and register it as an input of the command;
:func:`read_idx` reads MNIST-style idx files (Fashion-MNIST) through them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import UserError, os_error
from .guard import check_not_input, make_dir, register_inputs


def _tmp_name(path: Path) -> Path:
    # same folder (so the rename is atomic), hidden, and the same suffix (np.save, soundfile...)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it goes.

    Readers never see a half-written file, and a crash leaves the old file intact. OS errors
    (also those raised while the body writes the temporary file, and those a library wraps in
    its own exception: safetensors' ``"(os error 28)"``, faiss' ``"(No space left on device)"``)
    become one :class:`~dldiy_core.errors.UserError` naming ``path``::

        with atomic_path(out) as tmp:
            np.save(tmp, x)
    """
    path = Path(path)
    check_not_input(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a file")
    make_dir(path.parent)
    tmp = _tmp_name(path)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        other = e.filename is not None and Path(os.fsdecode(e.filename)) not in (tmp, path)
        if e.errno is None and not other and _disk_full(path.parent):  # numpy's short write
            e = OSError(errno.ENOSPC, f"no space left on device: {e}")
        raise os_error(e, None if other else path, "read" if other else "write") from None
    except Exception as e:  # a library's own error wrapping an OS error (safetensors, faiss...)
        inner = _wrapped_os_error(e)
        if inner is None:
            raise
        raise os_error(inner, path, "write") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


_WRAPPED = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
            errno.EFBIG)
"""Write failures recognised inside another library's exception (not "not found": that is
more likely an input the library read than the file it wrote)."""


def _wrapped_os_error(e: Exception) -> OSError | None:
    """The OS error inside another library's exception: Rust's ``"... (os error 28)"``
    (safetensors) or a C library's ``"... (No space left on device)"`` (faiss)."""
    if isinstance(e, UserError):
        return None
    text = str(e)
    m = re.search(r"\(os error (\d+)\)", text)
    if m and int(m.group(1)) in _WRAPPED:
        code = int(m.group(1))
        return OSError(code, os.strerror(code))
    for code in _WRAPPED:
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code))
    return None


def _disk_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    return atomic_write_bytes(path, text.encode())


def check_input(path: str | Path, what: str = "input", *, folder: bool = False,
                register: bool = True) -> Path:
    """Check that input ``path`` exists, is a file (``folder=True``: a folder) and can be read;
    register it as an input of the command (outputs may not replace it). Returns ``Path(path)``.

    ``register=False`` for a file the command itself will rewrite (a run's own checkpoint when
    resuming): the one-line errors without the protection.

    For libraries that take a path (``np.load``, ``soundfile.read``...); errors are one line,
    e.g. ``"base.fvecs: input not found"``, ``"x.fvecs: is a folder, expected a file (input)"``.
    """
    path = Path(path)
    try:
        if folder:
            if not path.exists():
                raise UserError(f"{path}: {what} folder not found")
            if not path.is_dir():
                raise UserError(f"{path}: is a file, expected a folder ({what})")
            os.listdir(path)
        else:
            if path.is_dir():
                raise UserError(f"{path}: is a folder, expected a file ({what})")
            with open(path, "rb"):
                pass
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found") from None
    except OSError as e:
        raise os_error(e, path, f"read {what}") from None
    if register:
        register_inputs(path)
    return path


@contextlib.contextmanager
def open_input(path: str | Path, mode: str = "rb", what: str = "input", *,
               register: bool = True, **kwargs: Any) -> Iterator[IO[Any]]:
    """``open(path, mode)`` for reading an input, with :func:`check_input`'s one-line errors
    (also for OS errors while reading inside the block)."""
    if any(c in mode for c in "wax+"):
        raise ValueError(f"open_input is for reading, got mode {mode!r}")
    path = check_input(path, what, register=register)
    try:
        with open(path, mode, **kwargs) as f:
            yield f
    except OSError as e:
        raise os_error(e, path, f"read {what}") from None


def read_input(path: str | Path, what: str = "input", *, register: bool = True) -> bytes:
    """The bytes of input file ``path`` (one-line errors, registered as an input)."""
    with open_input(path, "rb", what, register=register) as f:
        return f.read()


def read_idx(path: str | Path, what: str = "idx file") -> np.ndarray:
    """An MNIST-style idx file of unsigned bytes, gzipped or not (Fashion-MNIST's
    ``*-idx3-ubyte.gz`` images ``[n, rows, cols]``, ``*-idx1-ubyte.gz`` labels ``[n]``), as
    ``uint8`` with the header's shape; a bad or truncated file is one line naming it."""
    import gzip
    import zlib

    raw = read_input(path, what)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise UserError(f"{path}: not a readable gzip file ({e})") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or not 1 <= raw[3] <= 4:
        raise UserError(f"{path}: not an idx file of unsigned bytes ({what})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise UserError(f"{path}: truncated idx header ({what})")
    shape = tuple(int(v) for v in np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4"))
    if len(raw) - 4 - 4 * ndim != int(np.prod(shape)):
        raise UserError(f"{path}: idx header says {'x'.join(map(str, shape))} bytes, file has "
                        f"{len(raw) - 4 - 4 * ndim} ({what}: truncated?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def data_cache(package: str) -> Path:
    """Where ``package`` caches the data it builds: ``$DLDIY_DATA/<package>``, by default
    ``~/.cache/dldiy/<package>``."""
    return Path(os.environ.get("DLDIY_DATA", Path.home() / ".cache" / "dldiy")) / package
