"""A fixture repository with tiny paper packages, written fresh for each test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]

MAIN = '''
"""A tiny paper package: demo writes a real report, bench writes JSON."""
import json, os, sys
import numpy as np
from dldiy_core import ArgumentParser, Report, run_main, write_results, write_wav
{extra_import}

def main(argv=None):
    p = ArgumentParser(prog="{name}")
    sub = p.add_subparsers(dest="cmd", required=True)
    demo = sub.add_parser("demo")
    demo.add_argument("--out", required=True)
    demo.add_argument("--force", action="store_true")
    sub.add_parser("bench").add_argument("--json", required=True)
    for command in {commands}:
        sub.add_parser(command)
    args = p.parse_args(argv)
    if os.environ.get("TINY_FAIL") == "{name}":
        raise RuntimeError("demo broke")
    if args.cmd == "bench":
        write_results(args.json, {{"speed_x": 2.5, "baseline_x": 1.0}})
        return 0
    r = Report(args.out, "{name} demo")
    r.headline("accuracy", 0.93)
    x = np.arange(10)
    r.line_plot("curve", {{"train": (x, x ** 2)}}, xlabel="step")
    r.audio("tone", np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440), 16000, "a tone")
    r.table(["k", "v"], [["a", 1.5]])
    r.write()
    return 0

if __name__ == "__main__":
    sys.exit(run_main(main))
'''


def write_package(root: Path, name: str, core_req: str = "dldiy-core>=0.1,<0.2",
                  imports: str = "", commands: tuple[str, ...] = ("train", "eval"),
                  tool: str = "") -> Path:
    pkg = root / "packages" / name
    src = pkg / "src" / f"dldiy_{name}"
    src.mkdir(parents=True)
    (pkg / "tests").mkdir()
    (pkg / "README.md").write_text(f"# dldiy-{name}\n")
    (pkg / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "dldiy-{name}"
        version = "0.1.0"
        description = "fixture"
        readme = "README.md"
        requires-python = ">=3.10"
        dependencies = ["{core_req}"]
        [tool.poetry]
        packages = [{{ include = "dldiy_{name}", from = "src" }}]
        [build-system]
        requires = ["poetry-core>=2.0"]
        build-backend = "poetry.core.masonry.api"
        """) + tool)
    (src / "__init__.py").write_text(f'"""dldiy_{name}."""\n')
    (src / "__main__.py").write_text(MAIN.format(name=name, extra_import=imports,
                                                 commands=repr(list(commands))))
    return pkg


@pytest.fixture
def fixture_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in ("tiny", "small"):
        write_package(root, name)
    return root


def run_tool(tool: str, *args: str, root: Path, env: dict | None = None
             ) -> subprocess.CompletedProcess:
    """Run tools/<tool> against ``root`` with its packages importable."""
    paths = [str(p) for p in sorted(root.glob("packages/*/src"))]
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **(env or {})}
    return subprocess.run([sys.executable, str(TOOLS / tool), *args, "--root", str(root),
                           "--no-setup"], capture_output=True, text=True, env=environ,
                          timeout=600)


def write_core(root: Path, names: tuple[str, ...]) -> Path:
    """A fixture shared/core whose ``__all__`` is ``names`` (enough for the core API check)."""
    core = root / "shared" / "core"
    src = core / "src" / "dldiy_core"
    src.mkdir(parents=True)
    (core / "pyproject.toml").write_text('[project]\nname = "dldiy-core"\nversion = "0.1.0"\n')
    (src / "__init__.py").write_text(f'"""fixture core."""\n__all__ = {list(names)!r}\n')
    return core


def write_results_file(path: Path, figures: dict, command: str = "x bench") -> Path:
    """A results file as dldiy_core.write_results writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": "dldiy-results/1", "command": command, "commit": None,
                                "date": "2026-01-01T00:00:00+00:00", "machine": {"cpu": "x"},
                                "figures": figures}))
    return path
