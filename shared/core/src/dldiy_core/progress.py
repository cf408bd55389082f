"""Logging setup and progress bars (tqdm, silent when stderr is not a terminal)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def setup_logging(verbose: bool = False) -> None:
    """Plain ``LEVEL name: message`` lines on stderr for CLI programs."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar that shows only on an interactive terminal (never in CI logs or pipes)."""
    disable = not (enabled and sys.stderr.isatty())
    return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True,
                leave=False, **kwargs)
