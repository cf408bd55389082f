"""Checks of CONTRIBUTING.md's rules that tools/test runs (standard library only).

- ``core_api_problems``: a paper package imports from ``dldiy_core`` only the names in
  ``dldiy_core.__all__`` and no submodule (its tests may also use ``dldiy_core.testing``).
- ``command_problems``: a paper package's command line offers ``demo --out``, ``train``,
  ``eval`` and ``bench --json`` (read from its ``--help``), unless its pyproject declares why
  it does not (``[tool.dldiy] commands-exempt = {train = "the paper trains nothing"}``).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

CORE = "dldiy_core"
TEST_MODULES = {"dldiy_core.testing"}  # test helpers, for tests only
COMMANDS = {"demo": ("--out", "--force"), "train": (), "eval": (), "bench": ("--json",)}
"""Every package's commands and the options each must show (tools/demo passes --force)."""


def core_all(core_init: Path) -> set[str]:
    """The names of ``__all__`` in core's ``__init__.py`` (a literal list or tuple)."""
    tree = ast.parse(core_init.read_text(), str(core_init))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return set(ast.literal_eval(node.value))
    raise ValueError(f"{core_init}: no literal __all__")


def _problems_in(path: Path, allowed: set[str], tests: bool, root: Path) -> list[str]:
    rel = path.relative_to(root) if path.is_relative_to(root) else path
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (SyntaxError, UnicodeDecodeError) as e:
        return [f"{rel}: cannot be parsed ({e})"]
    found, aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == CORE or node.module.startswith(CORE + ".")):
            if node.module != CORE:
                if not (tests and node.module in TEST_MODULES):
                    found.append(f"{rel}:{node.lineno}: imports the submodule {node.module} "
                                 f"(use `from {CORE} import ...` with names in __all__)")
                continue
            for a in node.names:
                if a.name == "*":
                    continue  # a star import only brings __all__
                if a.name not in allowed and not (tests and f"{CORE}.{a.name}" in TEST_MODULES):
                    found.append(f"{rel}:{node.lineno}: imports {CORE}.{a.name}, which is not "
                                 f"in {CORE}.__all__")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == CORE:
                    aliases.add(a.asname or CORE)
                elif a.name.startswith(CORE + ".") and not (tests and a.name in TEST_MODULES):
                    found.append(f"{rel}:{node.lineno}: imports the submodule {a.name}")
    if aliases:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in aliases and node.attr not in allowed \
                    and node.attr not in ("__version__", "__all__"):
                found.append(f"{rel}:{node.lineno}: uses {CORE}.{node.attr}, which is not in "
                             f"{CORE}.__all__")
    return found


def core_api_problems(package: Path, allowed: set[str], root: Path) -> list[str]:
    """Imports of ``dldiy_core`` in ``package``'s sources and tests that break the rule."""
    problems = []
    for sub, tests in (("src", False), ("tests", True)):
        for path in sorted((package / sub).rglob("*.py")):
            problems += _problems_in(path, allowed, tests, root)
    return problems


HELP_SCRIPT = r"""
import contextlib, io, json, runpy, sys
module = sys.argv[1]
for args in json.loads(sys.argv[2]):
    buf, code = io.StringIO(), 0
    sys.argv = [module, *args, "--help"]
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception as e:  # a broken CLI is reported, not raised
            code, _ = 1, print(f"{type(e).__name__}: {e}")
    print("\0" + json.dumps({"args": args, "code": code, "text": buf.getvalue()}))
"""


def helps(python: str, module: str, commands: list[list[str]], cwd: Path
          ) -> list[tuple[int, str]]:
    """``--help`` of ``python -m module`` and of each of ``commands``, in one process."""
    try:
        p = subprocess.run([python, "-c", HELP_SCRIPT, module, json.dumps(commands)],
                           capture_output=True, text=True, timeout=600, cwd=cwd)
    except subprocess.TimeoutExpired:
        return [(124, "timed out")] * len(commands)
    found = {}
    for chunk in p.stdout.split("\0")[1:]:
        line = chunk.splitlines()[0] if chunk else ""
        try:
            item = json.loads(line)
        except ValueError:
            continue
        found[tuple(item["args"])] = (item["code"], item["text"])
    missing = (p.returncode or 1, (p.stdout + p.stderr).strip()[-500:])
    return [found.get(tuple(c), missing) for c in commands]


def command_problems(python: str, module: str, cwd: Path,
                     exempt: dict[str, str] | None = None) -> list[str]:
    """What ``python -m module`` lacks among the commands every package offers; ``exempt``:
    commands a package declares it does not offer, with the reason
    (``[tool.dldiy] commands-exempt = {train = "..."}``)."""
    exempt = exempt or {}
    wanted = [c for c in COMMANDS if c not in exempt]
    with_option = [c for c in wanted if COMMANDS[c]]
    (code, text), *subs = helps(python, module, [[], *[[c] for c in with_option]], cwd)
    if code:
        return [f"python -m {module} --help: exit {code}: {text.strip()[-500:]}"]
    usage = text.split("\n\n", 1)[0]
    offered = set()
    for group in re.findall(r"\{([\w,-]+)\}", usage):
        offered |= set(group.split(","))
    problems = [f"python -m {module}: no '{c}' command (every package offers "
                f"{', '.join(COMMANDS)}, or declares why not in [tool.dldiy] commands-exempt)"
                for c in wanted if c not in offered]
    for cmd, (code, text) in zip(with_option, subs, strict=True):
        missing = [o for o in COMMANDS[cmd] if code or o not in text]
        if cmd in offered and missing:
            problems.append(f"python -m {module} {cmd}: no {missing[0]} option" +
                            (f" (--help: exit {code})" if code else ""))
    problems += [f"[tool.dldiy] commands-exempt: '{c}' needs a reason" for c, why in
                 exempt.items() if not (isinstance(why, str) and why.strip())]
    problems += [f"[tool.dldiy] commands-exempt: '{c}' is not one of {', '.join(COMMANDS)}"
                 for c in exempt if c not in COMMANDS]
    return problems
