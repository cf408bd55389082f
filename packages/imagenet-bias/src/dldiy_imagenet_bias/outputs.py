"""Outputs never replace inputs or runs: the core's guard (``prepare_out_dir`` and friends),
with a small stand-in for a core that predates it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import dldiy_core
from dldiy_core import UserError

# A folder this package wrote holds a run: a report, or a study page.
RUN_FILES = [("summary.json", "index.html", "report.md"), ("study.json", "index.html")]

if hasattr(dldiy_core, "prepare_out_dir"):
    for names in RUN_FILES:
        dldiy_core.add_run_marker(*names)


def _holds_run(folder: Path) -> bool:
    return any(all((folder / n).is_file() for n in names) for names in RUN_FILES)


def prepare_out_dir(path: str | Path, inputs: Iterable[str | Path | None] = (), *,
                    force: bool = False) -> Path:
    """Check and create an output folder: never one that holds or is an input, nor (without
    ``force``) one that holds a run; errors are one line."""
    if hasattr(dldiy_core, "prepare_out_dir"):
        return dldiy_core.prepare_out_dir(path, inputs, force=force)
    path = Path(path)
    for inp in (Path(i) for i in inputs if i is not None):
        ro, ri = path.resolve(), inp.resolve()
        if ro == ri or ro in ri.parents:
            raise UserError(f"{path}: contains the input {inp}; choose another output")
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: exists and is not a folder")
    if _holds_run(path) and not force:
        raise UserError(f"{path}: already holds a run; replace it with --force, or choose "
                        f"another folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror})") from None
    return path


def prepare_out_file(path: str | Path, inputs: Iterable[str | Path | None] = (), *,
                     force: bool = False) -> Path:
    """Check an output file: never an input or inside a run (unless ``force``)."""
    if hasattr(dldiy_core, "prepare_out_file"):
        return dldiy_core.prepare_out_file(path, inputs, force=force)
    path = Path(path)
    for inp in (Path(i) for i in inputs if i is not None):
        if path.resolve() == inp.resolve():
            raise UserError(f"{path}: is the input {inp}; outputs never replace inputs")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{path.parent}: cannot create folder ({e.strerror})") from None
    return path


def check_input(path: str | Path, what: str = "input", *, folder: bool = False) -> Path:
    """An input that exists and can be read (registered with the core's guard when it has one)."""
    if hasattr(dldiy_core, "check_input"):
        return dldiy_core.check_input(path, what, folder=folder)
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: {what} not found")
    if folder != path.is_dir():
        raise UserError(f"{path}: expected a {'folder' if folder else 'file'} ({what})")
    return path
