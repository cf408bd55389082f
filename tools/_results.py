"""README result tables generated from committed results files (tools/results; standard library).

A README marks a generated part with a template in an HTML comment, followed by what the
template gives, up to ``<!-- /results -->``. A block (a table, or any lines)::

    <!-- results f=results/bench-fashion-mnist.json g=results/bench-glove50.json
    | recall@10 | Fashion-MNIST | GloVe-50 |
    |---|---|---|
    | catalyzer + lattice | {f.recall10_lattice64:.3f} | {g.recall10_lattice64:.3f} |
    -->
    (generated lines)
    <!-- /results -->

or inline, inside a sentence or a table cell::

    <!-- results f=results/bench.json: {f.speedup:.0f}x --><!-- /results -->

``<!-- results pending ALIAS=PATH ...``: a section waiting for results files that do not
exist yet; it must stay empty, and becomes an error once they exist (drop ``pending`` then).

``ALIAS=PATH``: a results file (written by ``dldiy_core.write_results``), relative to the README's
folder. ``{ALIAS.KEY.KEY:FORMAT}``: a figure of that file (keys into its ``figures``; an integer
indexes a list; ``*`` takes every item of a list, written comma-separated; ``#`` counts them),
formatted with a Python format spec (``.3f``, ``,.0f``, ``.1%``). ``{ALIAS.$date}``,
``{ALIAS.$command}``, ``{ALIAS.$machine.cpu}``: what the file records beside its figures. A
figure the file lacks is an error, never an empty cell.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import _repo

FORMAT = "dldiy-results/1"
OPEN = "<!-- results"
CLOSE = "<!-- /results -->"
MARKER = re.compile(r"<!-- results(?P<spec>.*?)-->(?P<body>.*?)<!-- /results -->", re.S)
FIELD = re.compile(r"\{(?P<alias>[A-Za-z_]\w*)\.(?P<path>[^{}:\s]+)(?::(?P<fmt>[^{}]*))?\}")


class ResultsError(Exception):
    """A marker that cannot be rendered: the message names the README, line and problem."""


@dataclass
class Section:
    readme: Path
    line: int
    sources: dict[str, Path]
    template: str
    inline: bool
    body: str
    start: int  # offsets of the generated body in the README text
    end: int
    pending: bool = False  # waits for its results files: shows nothing until they exist


def parse(readme: Path, text: str | None = None) -> list[Section]:
    """The marked sections of ``readme``."""
    text = readme.read_text() if text is None else text
    sections = []
    for m in MARKER.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        spec = m.group("spec")
        where = f"{_rel(readme)}:{line}"
        if OPEN in spec or OPEN in m.group("body"):
            raise ResultsError(f"{where}: a results marker opens before the previous one closes")
        first, nl, rest = spec.partition("\n")
        if nl:  # block: sources on the first line, the template below
            head, template, inline = first, rest.rstrip("\n"), False
        else:
            head, colon, template = first.partition(": ")
            if not colon:
                raise ResultsError(f"{where}: an inline results marker needs "
                                   "'ALIAS=PATH ...: TEMPLATE'")
            template, inline = template.rstrip(" "), True
        sources, tokens = {}, head.split()
        pending = tokens[:1] == ["pending"]
        for token in tokens[pending:]:
            alias, eq, path = token.partition("=")
            if not eq or not alias.isidentifier() or not path:
                raise ResultsError(f"{where}: '{token}' is not ALIAS=PATH")
            sources[alias] = readme.parent / path
        if not sources:
            raise ResultsError(f"{where}: no results file named (ALIAS=PATH)")
        sections.append(Section(readme, line, sources, template, inline, m.group("body"),
                                m.start("body"), m.end("body"), pending))
    stray = text.count(OPEN) - len(sections)
    if stray:
        line = text.count("\n", 0, text.find(CLOSE if stray < 0 else OPEN)) + 1
        raise ResultsError(f"{_rel(readme)}: {abs(stray)} results marker(s) without their "
                           f"{'opening' if stray < 0 else CLOSE} (near line {line})")
    return sections


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(_repo.REPO))
    except ValueError:
        return str(path)


def load(path: Path, cache: dict[Path, dict]) -> dict:
    if path not in cache:
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise ResultsError(f"{_rel(path)}: no such results file") from None
        except (OSError, ValueError) as e:
            raise ResultsError(f"{_rel(path)}: not a results file ({e})") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT \
                or not isinstance(record.get("figures"), dict):
            raise ResultsError(f"{_rel(path)}: not a results file (written by "
                               "dldiy_core.write_results: format, command, ..., figures)")
        cache[path] = record
    return cache[path]


def lookup(record: dict, path: str) -> object:
    """The value at a dotted ``path`` of ``record["figures"]`` (``$key`` for the record
    itself); ``*`` maps over a list. KeyError names the part that is missing."""
    parts = path.split(".")
    if parts[0].startswith("$"):
        value, parts = record.get(parts[0][1:], KeyError), parts[1:]
        if value is KeyError:
            raise KeyError(path)
    else:
        value = record["figures"]
    return _walk(value, parts, path)


def _walk(value: object, parts: list[str], path: str) -> object:
    for i, part in enumerate(parts):
        if part == "#":
            if not isinstance(value, list | dict):
                raise KeyError(f"{path} ('#' counts a list)")
            return len(value)
        if part == "*":
            if not isinstance(value, list):
                raise KeyError(f"{path} ('*' needs a list)")
            return [_walk(v, parts[i + 1:], path) for v in value]
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() \
                and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(path)
    return value


def fmt(value: object, spec: str) -> str:
    if isinstance(value, list):
        return ", ".join(fmt(v, spec) for v in value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    return format(value, spec) if spec else (f"{value:.4g}" if isinstance(value, float)
                                             else str(value))


def render(section: Section, cache: dict[Path, dict]) -> str:
    where = f"{_rel(section.readme)}:{section.line}"

    def field(m: re.Match) -> str:
        alias = m.group("alias")
        if alias not in section.sources:
            return m.group(0)  # not a field: literal braces
        record = load(section.sources[alias], cache)
        try:
            value = lookup(record, m.group("path"))
        except KeyError:
            raise ResultsError(f"{where}: {_rel(section.sources[alias])} has no figure "
                               f"'{m.group('path')}'") from None
        try:
            return fmt(value, m.group("fmt") or "")
        except (ValueError, TypeError) as e:
            raise ResultsError(f"{where}: {m.group(0)}: {e}") from None

    if section.pending:
        there = [_rel(p) for p in section.sources.values() if p.exists()]
        if there:
            raise ResultsError(f"{where}: {', '.join(there)} exist(s) now: remove 'pending' "
                               "from the marker and run tools/results")
        if section.body.strip():
            raise ResultsError(f"{where}: a pending section shows nothing until its results "
                               "exist (empty it)")
        return section.body
    for path in section.sources.values():
        load(path, cache)  # every file named must exist, used or not
    out = FIELD.sub(field, section.template)
    return out if section.inline else f"\n{out}\n"


def readmes(root: Path, packages: list[str] | None = None) -> list[Path]:
    """The README.md files that may hold results: the repository's and each package's (only
    those of ``packages``, by short name, when given)."""
    pkgs = _repo.packages(root)
    if packages:
        found = [p.path / "README.md" for p in _repo.select(pkgs, packages)]
    else:
        found = [root / "README.md"] + [p.path / "README.md" for p in pkgs]
    return [p for p in found if p.exists()]


def untracked(paths: list[Path], root: Path) -> list[Path]:
    """Those of ``paths`` git does not track (none when ``root`` is not a git work tree)."""
    if not paths:
        return []
    p = subprocess.run(["git", "-C", str(root), "ls-files", "--", *map(str, paths)],
                       capture_output=True, text=True)
    if p.returncode:
        return []
    tracked = {(root / line).resolve() for line in p.stdout.splitlines()}
    return [path for path in paths if path.resolve() not in tracked]


@dataclass
class Outcome:
    readme: Path
    sections: int
    stale: list[int]        # line numbers of sections whose text differs from their JSON
    errors: list[str]
    new_text: str | None    # the README with every section regenerated (None on errors)


def examine(readme: Path, cache: dict[Path, dict]) -> Outcome:
    text = readme.read_text()
    try:
        sections = parse(readme, text)
    except ResultsError as e:
        return Outcome(readme, 0, [], [str(e)], None)
    errors, stale, pieces, pos = [], [], [], 0
    for s in sections:
        try:
            body = render(s, cache)
        except ResultsError as e:
            errors.append(str(e))
            body = s.body
        if body != s.body:
            stale.append(s.line)
        pieces += [text[pos:s.start], body]
        pos = s.end
    pieces.append(text[pos:])
    return Outcome(readme, len(sections), stale, errors, None if errors else "".join(pieces))


def check(root: Path, write: bool, packages: list[str] | None = None
          ) -> tuple[list[Outcome], list[str]]:
    """Examine (and with ``write``, regenerate) every README (or those of ``packages``); also
    name the results files the READMEs use that git does not track."""
    cache: dict[Path, dict] = {}
    outcomes = [examine(r, cache) for r in readmes(root, packages)]
    if write:
        for o in outcomes:
            if o.new_text is not None and o.stale:
                o.readme.write_text(o.new_text)
    used = sorted({p for o in outcomes for p in cache if p.exists()})
    problems = [f"{_rel(p)}: not committed (git add it: README figures come from committed "
                "results)" for p in untracked(used, root)]
    return outcomes, problems
