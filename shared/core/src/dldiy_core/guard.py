"""Outputs never replace inputs or runs: the one rule every command follows.

1. An output never replaces one of the command's inputs: not the same path, not the same file
   through a symbolic or hard link, not a folder that contains an input, not an existing file
   inside an input folder. ``--force`` does not lift this.
2. An output never replaces a file of an existing run, and a folder that holds a run is refused
   unless the command resumes it (``--resume``) or the user passes ``--force``. A folder holds a
   run when it has all the files of one of :data:`RUN_MARKERS` (``checkpoint.safetensors``,
   ``best.safetensors`` or ``metrics.jsonl``); a package adds its own with :func:`add_run_marker`
   (e.g. ``add_run_marker("index.faiss", "meta.json")``).

A command declares its inputs (:func:`check_outputs` ``inputs=``, or by reading them with
:func:`~dldiy_core.io.check_input` / :func:`~dldiy_core.io.read_input` /
:func:`~dldiy_core.io.open_input`); they are remembered until the command ends
(:func:`~dldiy_core.errors.run_main`), and the atomic writer (:func:`~dldiy_core.io.atomic_path`)
refuses to replace any of them, whatever the code path. Register only what the command must
not change: a file it rewrites itself (its own run when resuming, a cache it updates) is read
with ``register=False``. Typical use in a CLI command (inputs first, then the outputs, then the
work, so a bad input leaves no empty output folder and a bad output costs no work)::

    add_output_args(parser, help="output .npy file")          # --out FILE and --force
    ...
    src = check_input(args.src, "source vectors")             # exists, readable: registered
    out = prepare_out_file(args.out, inputs=[args.run], force=args.force)
    with atomic_path(out) as tmp:
        np.save(tmp, result)

Every refusal is a :class:`~dldiy_core.errors.UserError` (one line, exit 2) naming the path.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import UserError, os_error

RUN_MARKERS: list[tuple[str, ...]] = [("checkpoint.safetensors",), ("best.safetensors",),
                                      ("metrics.jsonl",)]
"""A folder holds a run when it has every file of one of these groups (the Trainer's files: a run
killed before its first checkpoint already has ``metrics.jsonl``)."""

_inputs: list[Path] = []


def add_run_marker(*names: str) -> None:
    """Also treat a folder holding all of ``names`` as a run (e.g. ``"index.faiss"``)."""
    if not names:
        raise ValueError("add_run_marker needs at least one file name")
    if tuple(names) not in RUN_MARKERS:
        RUN_MARKERS.append(tuple(names))


def holds_run(folder: str | Path) -> str | None:
    """The marker files (``"checkpoint.safetensors"``) if ``folder`` holds a run, else None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for names in RUN_MARKERS:
        if all((folder / n).is_file() for n in names):
            return " + ".join(names)
    return None


@functools.lru_cache(maxsize=4096)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _real(path: str | os.PathLike) -> str:
    """``os.path.realpath``, the folder's part cached: thousands of inputs in one folder cost a
    lookup each (strings, not Path objects: this runs for every input and every write)."""
    path = os.fspath(path)
    if not os.path.isabs(path):
        path = os.path.join(os.getcwd(), path)
    folder, name = os.path.split(path)
    if name in ("", ".", "..") or os.path.islink(path):
        return os.path.realpath(path)
    return os.path.join(_real_folder(folder), name)


def _resolved(path: Path) -> Path:
    return Path(_real(path))


def _folders_above(real: str) -> Iterator[str]:
    folder = os.path.dirname(real)
    while True:
        yield folder
        up = os.path.dirname(folder)
        if up == folder:
            return
        folder = up


class _Inputs:
    """The registered inputs, indexed so that a check costs a few lookups however many there
    are (a corpus reader registers thousands of files, and every atomic write checks)."""

    def __init__(self) -> None:
        self.paths: dict[str, Path] = {}         # real path -> as given
        self.inodes: dict[tuple[int, int], Path] = {}   # (device, inode) -> as given
        self.ancestors: dict[str, Path] = {}     # real folder above an input -> that input

    def copy(self) -> _Inputs:
        new = _Inputs()
        new.paths, new.inodes, new.ancestors = (dict(self.paths), dict(self.inodes),
                                                dict(self.ancestors))
        return new

    def add(self, path: Path) -> None:
        real = _real(path)
        if real in self.paths:
            return
        self.paths[real] = path
        with contextlib.suppress(OSError):
            st = os.stat(real)
            self.inodes.setdefault((st.st_dev, st.st_ino), path)
        for folder in _folders_above(real):
            if folder in self.ancestors:
                break  # and every folder above it
            self.ancestors[folder] = path

    def conflict(self, out: Path) -> str | None:
        """Why writing ``out`` would harm a registered input (None: it would not)."""
        real = _real(out)
        if real in self.paths:
            return f"is the input {self.paths[real]}"
        if real in self.ancestors:
            return f"contains the input {self.ancestors[real]}"
        if not (os.path.lexists(out)):
            return None  # a new file replaces nothing
        with contextlib.suppress(OSError):
            st = os.stat(out)
            if (st.st_dev, st.st_ino) in self.inodes:
                return f"is the same file as the input {self.inodes[st.st_dev, st.st_ino]} (a link)"
        entry = os.path.join(_real(os.path.dirname(os.path.abspath(out))),  # its folder entry:
                             os.path.basename(out))                          # a link stays one
        for folder in (*_folders_above(real), *_folders_above(entry)):
            if folder in self.paths:
                return f"is a file of the input {self.paths[folder]}"
        return None


_inputs = _Inputs()


def register_inputs(*paths: str | Path) -> None:
    """Remember ``paths`` as inputs of the running command (outputs may not replace them)."""
    for p in paths:
        _inputs.add(p if isinstance(p, Path) else Path(p))


def registered_inputs() -> list[Path]:
    """The inputs registered so far by the running command."""
    return list(_inputs.paths.values())


@contextlib.contextmanager
def input_scope(fresh: bool = False) -> Iterator[None]:
    """Inputs registered inside are forgotten on exit (:func:`run_main` wraps each command);
    ``fresh``: start with none registered."""
    global _inputs
    saved = _inputs
    _inputs = _Inputs() if fresh else saved.copy()
    _real_folder.cache_clear()  # folders may have changed since the last command
    try:
        yield
    finally:
        _inputs = saved


def check_not_input(path: str | Path) -> None:
    """Refuse to write ``path`` if that would replace a registered input (see the module doc)."""
    path = Path(path)
    why = _inputs.conflict(path)
    if why:
        raise UserError(f"{path}: {why}; outputs never replace inputs, choose another output")


def _run_above(path: Path) -> Path | None:
    for folder in _resolved(path).parents:
        if holds_run(folder):
            return folder
    return None


def check_outputs(outputs: Iterable[str | Path | None], inputs: Iterable[str | Path | None] = (),
                  *, force: bool = False, resume: bool = False) -> None:
    """Refuse outputs that would replace an input or a run (rules in the module doc).

    ``outputs``: files or folders the command will write (None entries are skipped); ``inputs``:
    files or folders it reads (registered, together with those read through
    :mod:`dldiy_core.io`). ``resume``: an output folder holding a run is continued;
    ``force``: a run (folder, or a file inside one) may be replaced. Neither lifts rule 1.
    """
    register_inputs(*(p for p in inputs if p is not None))
    for out in outputs:
        if out is None:
            continue
        out = Path(out)
        check_not_input(out)
        if force:
            continue
        marker = holds_run(out)
        if marker and not resume:
            raise UserError(f"{out}: already holds a run ({marker}); resume it, replace it with "
                            "--force, or choose another folder")
        if out.is_file() and (run := _run_above(out)) is not None:
            raise UserError(f"{out}: is a file of the run in {run}; choose another output "
                            "(or --force to replace it)")


def _probe_writable(folder: Path, shown: Path) -> None:
    probe = folder / f".dldiy-write-test-{os.getpid()}"
    try:
        with open(probe, "wb"):
            pass
        probe.unlink()
    except OSError as e:
        raise os_error(e, shown, "write") from None


def make_dir(path: str | Path) -> Path:
    """``mkdir -p path`` with one-line errors (a file in the way, permission, read-only...)."""
    path = Path(path)
    for p in (path, *path.parents):  # name the file in the way, not the folder under it
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                raise UserError(f"{p}: exists and is not a folder")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise os_error(e, path, "create folder") from None
    return path


def prepare_out_dir(path: str | Path, inputs: Iterable[str | Path | None] = (), *,
                    force: bool = False, resume: bool = False) -> Path:
    """Check an output folder (:func:`check_outputs`), create it and make sure it is writable.

    Call it before any long work, so a bad ``--out`` fails in a second, not after an hour.
    """
    path = Path(path)
    check_outputs([path], inputs, force=force, resume=resume)
    make_dir(path)
    _probe_writable(path, path)
    return path


def prepare_out_file(path: str | Path, inputs: Iterable[str | Path | None] = (), *,
                     force: bool = False) -> Path:
    """Check an output file (:func:`check_outputs`), create its folder and make sure the file
    can be written there; write it later with :func:`~dldiy_core.io.atomic_path`."""
    path = Path(path)
    check_outputs([path], inputs, force=force)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a file")
    make_dir(path.parent)
    _probe_writable(path.parent, path)
    return path
