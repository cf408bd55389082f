"""Command-line plumbing every package CLI shares: subcommands, logging, JSON output, and the
output flags (:func:`add_output_args`: ``--out`` with ``--force``, optionally ``--resume``)."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .config import add_config_args
from .errors import ArgumentParser, run_main
from .io import atomic_write_text
from .progress import setup_logging


class Commands:
    """``prog SUBCOMMAND ...`` where each subcommand runs ``fn(args) -> exit code``.

    >>> cli = Commands("dldiy-x", __doc__, presets=PRESETS, default_preset="quick")
    >>> c = cli.add("train", cmd_train, "train a model"); c.add_argument("--out")
    >>> def main(argv=None): return cli.main(argv)
    """

    def __init__(self, prog: str, description: str | None, *,
                 presets: Mapping[str, Mapping] | None = None, default_preset: str | None = None,
                 quiet_loggers: Sequence[str] = ()):
        self.parser = ArgumentParser(prog=prog, description=description)
        self.parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        self.sub = self.parser.add_subparsers(dest="command", required=True)
        self.presets, self.default_preset = presets or {}, default_preset
        self.quiet_loggers = quiet_loggers

    def add(self, name: str, fn: Callable[[Any], int], help: str, *, config: bool = True,
            parent: Any = None, aliases: Sequence[str] = (),
            default_preset: str | None = None) -> ArgumentParser:
        """A subcommand (of ``parent``'s subparsers if given); ``config`` adds --preset/--set
        (``default_preset`` overrides the program's default for this command)."""
        c = (parent or self.sub).add_parser(name, help=help, description=help,
                                            aliases=list(aliases))
        if config:
            add_config_args(c, self.presets, default_preset or self.default_preset)
        c.set_defaults(fn=fn)
        return c

    def _run(self, argv: Sequence[str] | None) -> int:
        args = self.parser.parse_args(argv)
        setup_logging(args.verbose)
        if not args.verbose:
            for name in self.quiet_loggers:
                logging.getLogger(name).setLevel(logging.WARNING)
        return args.fn(args)

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Parse and run; bad input is one line on stderr and exit code 2."""
        return run_main(self._run, argv)


def add_output_args(parser: argparse.ArgumentParser, *, flag: str = "--out",
                    help: str = "output folder", required: bool = True,
                    resume: bool = False) -> None:
    """Add ``--out`` (``flag``), ``--force`` and, with ``resume=True``, ``--resume`` (exclusive).

    Call it once per output flag (``--out``, then ``--json`` with ``required=False``): ``--force``
    and ``--resume`` are added once. The command then checks its outputs with
    :func:`~dldiy_core.guard.prepare_out_dir` / :func:`~dldiy_core.guard.prepare_out_file`
    (``force=args.force``, ``resume=args.resume``): an output never replaces an input (even with
    ``--force``) and a run only with ``--force``.
    """
    parser.add_argument(flag, required=required, help=help)
    have = parser._option_string_actions  # the flags this parser already has
    wanted = [("--resume", resume), ("--force", True)]
    if all(name in have or not want for name, want in wanted):
        return
    group = parser.add_mutually_exclusive_group()
    if resume and "--resume" not in have:
        group.add_argument("--resume", action="store_true",
                           help=f"continue the run in {flag.lstrip('-').upper()}")
    if "--force" not in have:
        group.add_argument("--force", action="store_true",
                           help="replace a run (or a file of one) already there; inputs are "
                                "never replaced")


def emit_json(data: Mapping[str, Any], path: str | None = None) -> None:
    """Print ``data`` as JSON, and write it to ``path`` (atomically) when given."""
    text = json.dumps(data, indent=2)
    if path:
        atomic_write_text(path, text + "\n")
    print(text)
