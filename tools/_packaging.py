"""Wheel checks shared by tools/test and tools/check-wheel (standard library only)."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import _repo


def wheel_problems(wheel: Path, needs_core: bool) -> list[str]:
    """What is wrong with a wheel's requirements: direct file requirements, or (for paper
    packages) a dldiy-core requirement that is missing or not a bounded version range."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [line.split(":", 1)[1].strip() for line in z.read(meta).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    problems = [f"{wheel.name}: direct file requirement '{r}'" for r in requires if "@" in r]
    if needs_core:
        core = [r for r in requires if r.split(";")[0].replace("_", "-").startswith("dldiy-core")]
        spec = core[0].split(";")[0][len("dldiy-core"):].strip(" ()") if core else ""
        if not core:
            problems.append(f"{wheel.name}: does not require dldiy-core")
        elif not ("<" in spec and ">" in spec or "~=" in spec):
            problems.append(f"{wheel.name}: dldiy-core requirement '{core[0]}' is not a "
                            "bounded version range (e.g. >=0.1,<0.2)")
    return problems


def build_wheel(path: Path, out: Path) -> Path:
    """Build the wheel of the project in ``path`` with poetry-core into ``out``."""
    code = ("import os, sys; from poetry.core.masonry.api import build_wheel; "
            "os.chdir(sys.argv[1]); print(build_wheel(sys.argv[2]))")
    p = subprocess.run([_repo.venv_bin("python"), "-c", code, str(path), str(out)],
                       capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])
    return out / p.stdout.strip().splitlines()[-1]


def core_alone(wheel: Path, tmp: Path) -> str:
    """Install the core wheel into an empty venv; import it from outside the repository.

    Its third-party dependencies come from .venv's site-packages on PYTHONPATH (torch is
    gigabytes); dldiy_core itself must come from the new venv.
    """
    venv = tmp / "empty-venv"
    # the same interpreter as .venv, whose site-packages lends the heavy dependencies
    subprocess.run([_repo.venv_bin("python"), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    p = subprocess.run([_repo.venv_bin("python"), "-m", "pip", "--python", str(venv / "bin/python"),
                        "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True)
    if p.returncode:
        return p.stderr[-2000:]
    site = subprocess.run([_repo.venv_bin("python"), "-c", "import site; "
                           "print(site.getsitepackages()[0])"], capture_output=True,
                          text=True).stdout.strip()
    check = ("import dldiy_core, sys; assert dldiy_core.__file__.startswith(sys.prefix), "
             "dldiy_core.__file__; from dldiy_core import *; print(dldiy_core.__version__)")
    p = subprocess.run([str(venv / "bin/python"), "-c", check], capture_output=True, text=True,
                       cwd=tmp, env={**os.environ, "PYTHONPATH": site})
    return "" if p.returncode == 0 else p.stderr[-2000:]
