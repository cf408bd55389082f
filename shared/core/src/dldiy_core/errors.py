"""Bad input as one clear line: the exception every package raises for user mistakes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


class UserError(Exception):
    """A problem with the user's input (file, config, flag), reported as one line, exit code 2.

    The message names the thing and the problem, e.g. ``"run/ckpt.safetensors: truncated file"``.
    """

    exit_code = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def run_main(main: Callable[[Sequence[str] | None], int | None],
             argv: Sequence[str] | None = None) -> int:
    """Run a CLI ``main``; a :class:`UserError` becomes ``error: ...`` on stderr and exit 2."""
    try:
        return int(main(argv) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
