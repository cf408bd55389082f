"""Bad input as one clear line: the exception every package raises for user mistakes.

- :class:`UserError` (``"<file or setting>: <problem>"``): printed as one ``error: ...`` line on
  stderr by :func:`run_main`, exit code 2, no traceback.
- :func:`os_error` turns an ``OSError`` (missing file, permission, is-a-folder, read-only file
  system, disk full, a file where a folder is expected) into a :class:`UserError` naming the path.
- :func:`run_main` also turns any ``OSError`` that escaped into that one line (last resort: code
  that reads or writes should convert its own errors with :func:`os_error`, naming the path).
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


class UserError(Exception):
    """A problem with the user's input (file, config, flag), reported as one line, exit code 2.

    The message names the thing and the problem, e.g. ``"run/ckpt.safetensors: truncated file"``.
    """

    exit_code = 2


_REASONS = {
    errno.ENOENT: "not found",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder, expected a file",
    errno.ENOTDIR: "a file stands where a folder is expected",
    errno.EEXIST: "already exists",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.ENAMETOOLONG: "name too long",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EIO: "input/output error",
    errno.ENOTEMPTY: "folder not empty",
    errno.EXDEV: "cannot move across file systems",
    errno.EBUSY: "busy",
}


def os_error(err: OSError, path: str | Path | None = None, action: str | None = None) -> UserError:
    """The one-line :class:`UserError` for an ``OSError``: ``"<path>: cannot <action> (<why>)"``.

    ``path`` defaults to the file the error names; ``action`` (``"read"``, ``"write"``,
    ``"create folder"``...) is left out when None::

        try:
            data = path.read_bytes()
        except OSError as e:
            raise os_error(e, path, "read") from None
    """
    where = path if path is not None else (err.filename if err.filename is not None else "")
    why = _REASONS.get(err.errno) if err.errno is not None else None
    why = why or (err.strerror or str(err) or type(err).__name__).lower()
    text = f"cannot {action} ({why})" if action else why
    return UserError(f"{where}: {text}" if str(where) else text)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _one_line(message: object) -> str:
    return " ".join(str(message).split("\n")).strip()


def run_main(main: Callable[[Sequence[str] | None], int | None],
             argv: Sequence[str] | None = None) -> int:
    """Run a CLI ``main``: a :class:`UserError` becomes ``error: ...`` on stderr and exit 2.

    An ``OSError`` nobody converted becomes the same one line (``error: <path>: <why>``, exit
    2); Ctrl-C prints ``interrupted`` (exit 130). The inputs a command registers
    (:mod:`dldiy_core.guard`) are forgotten when it ends.
    """
    from .guard import input_scope

    try:
        with input_scope():
            return int(main(argv) or 0)
    except UserError as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print(f"error: {_one_line(os_error(e))}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
