"""Results files: the figures of a bench or an experiment, with what produced them.

Every ``bench --json FILE`` and experiment-like command writes one JSON object::

    {"format": "dldiy-results/1",
     "command": "dldiy-catalyzer bench --json ...",   # as typed (or as given)
     "commit": {"sha": "...", "dirty": false} | null,  # null outside a git work tree
     "date": "2026-12-02T14:03:11+00:00",              # UTC
     "machine": {"cpu": ..., "cores": ..., "torch": ..., "threads": ..., "cuda": ...},
     "figures": {...}}                                 # what the command measured

The README result tables of the repository are generated from such files (``tools/results``),
so a figure always comes with the command, the code and the machine that gave it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import UserError
from .io import atomic_write_text

FORMAT = "dldiy-results/1"
KEYS = ("format", "command", "commit", "date", "machine", "figures")


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a user typed it: ``sys.argv`` with the program's name instead of its path
    (``python -m <package>`` when run as a module)."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    prog = Path(argv[0]).name
    if prog == "__main__.py":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = spec.name.removesuffix(".__main__") if spec else Path(argv[0]).parent.name
        return shlex.join(["python", "-m", module, *argv[1:]])
    return shlex.join([prog, *argv[1:]])


def _git(where: Path, *args: str) -> str | None:
    try:
        p = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def _caller_file() -> str | None:
    """The file of the innermost calling frame outside this module."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else None


def git_commit(source: str | Path | None = None) -> dict[str, Any] | None:
    """``{"sha": HEAD, "dirty": bool}`` of the git work tree holding ``source`` (a file or a
    folder; default: the source file of the code that called into this module, i.e. the
    package that measured the figures); ``None`` when it is not tracked by git (e.g. installed
    from a wheel) or git is missing. ``dirty``: tracked files differ from HEAD (untracked files
    do not count)."""
    if source is None:
        source = _caller_file() or Path.cwd()
    where = Path(source).resolve()
    folder = where if where.is_dir() else where.parent
    if not folder.is_dir():
        return None
    sha = _git(folder, "rev-parse", "--verify", "HEAD")
    if not sha:
        return None
    if where.is_file() and _git(folder, "ls-files", "--error-unmatch", where.name) is None:
        return None  # a file git does not track (an installed copy inside a work tree)
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "dirty": bool(status) if status is not None else None}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bf16_isa(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's bf16 matrix instructions, from ``cpuinfo`` (Linux): ``amx_bf16`` (tiles,
    several times the fp32 FMA rate), ``avx512_bf16`` (dot products, at most twice it),
    ``none``, or ``unknown`` where the file cannot be read."""
    try:
        flags = set(Path(cpuinfo).read_text().split())
    except OSError:
        return "unknown"
    return next((f for f in ("amx_bf16", "avx512_bf16") if f in flags), "none")


def machine() -> dict[str, Any]:
    """The machine a figure was measured on: CPU model, cores, torch version and threads, CUDA
    device (``None`` without one), Python and OS."""
    import torch

    cuda = None
    if torch.cuda.is_available():
        cuda = {"device": torch.cuda.get_device_name(), "count": torch.cuda.device_count(),
                "cuda": torch.version.cuda}
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "usable_cores": usable,
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cuda": cuda,
            "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}"}


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars and arrays become numbers and lists, paths strings;
    NaN and infinities are refused (JSON has none)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"figure {value!r} is not finite")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"figure of type {type(value).__name__} is not JSON: {value!r}")


def results_record(figures: Mapping[str, Any], *, command: str | Sequence[str] | None = None,
                   source: str | Path | None = None) -> dict[str, Any]:
    """The results object for ``figures`` (see the module docstring); ``command`` defaults to
    the running command line, ``source`` (for the commit) to the running program."""
    if not isinstance(figures, Mapping):
        raise TypeError("figures must be a mapping of names to values")
    if command is not None and not isinstance(command, str):
        command = shlex.join(command)
    return {"format": FORMAT, "command": command_line() if command is None else command,
            "commit": git_commit(source),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "figures": _plain(figures)}


def _is_results_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return f'"format": "{FORMAT}"'.encode() in head


def write_results(path: str | Path, figures: Mapping[str, Any], *,
                  command: str | Sequence[str] | None = None,
                  source: str | Path | None = None) -> Path:
    """Write ``figures`` and what produced them to ``path`` as JSON, atomically (a reader never
    sees half a file; an interrupted run leaves the previous file). An existing file is replaced
    only when it is itself a results file (a README or a data file given by mistake is refused,
    one line). Returns ``path``."""
    if Path(path).is_file() and not _is_results_file(Path(path)):
        raise UserError(f"{path}: exists and is not a results file; refusing to replace it")
    record = results_record(figures, command=command, source=source)
    return atomic_write_text(path, json.dumps(record, indent=2, allow_nan=False) + "\n")


def emit_results(figures: Mapping[str, Any], path: str | Path | None = None, *,
                 command: str | Sequence[str] | None = None) -> None:
    """A command's ending: print ``figures`` as JSON, and write the results file to ``path``
    when given (``bench --json FILE``)."""
    print(json.dumps(_plain(figures), indent=2))
    if path:
        write_results(path, figures, command=command)


def read_results(path: str | Path) -> dict[str, Any]:
    """Read a results file; a missing, unreadable or malformed file is a ``UserError`` naming
    it."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a results file ({e})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise UserError(f"{path}: not a results file (no \"format\": \"{FORMAT}\")")
    missing = [k for k in KEYS if k not in record]
    if missing:
        raise UserError(f"{path}: results file without {', '.join(missing)}")
    if not isinstance(record["figures"], dict):
        raise UserError(f"{path}: \"figures\" is not an object")
    return record
