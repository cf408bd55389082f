"""Test helpers every package reuses: CLI runners, the bad-input checks, the config-bounds walk,
the kill-and-resume check, and tiny fixtures.

Bad input (a package's ``tests/test_bad_input.py``)::

    from dldiy_core.testing import assert_bad_input, assert_config_bounds, corrupted_bytes

    def test_config_bounds():
        assert_config_bounds(MuseConfig, PRESETS)     # every numeric field declares a range

    def test_bad_outputs(tmp_path):
        src = write_small_vec(tmp_path / "src.vec")
        for out, name in bad_outputs(tmp_path, [src]):    # the input, links, its folder...
            assert_bad_input(main, ["export", "--src", src, "--out", out], name,
                             inputs=[src])            # exit 2, one line, src unchanged
        for path, name in bad_inputs(tmp_path, "src.vec"):   # missing, a folder, empty...
            assert_bad_input(main, ["export", "--src", path, "--out", tmp_path / "o"], name,
                             absent=[tmp_path / "o"])
        with failing_writes(errno.ENOSPC):            # disk full at the end of the work
            assert_bad_input(main, [..., "--out", tmp_path / "o"], "o: cannot write",
                             absent=[tmp_path / "o"])

    @given(corrupted_bytes(VALID_VEC))                # property: any damage is refused cleanly
    def test_reader(blob): ...                        # with reads_or_refuses(read_vec, path)
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .config import ConfigError, field_bounds, resolve
from .errors import UserError, run_main
from .trainer import CHECKPOINT, METRICS


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(main: Callable[[Sequence[str] | None], int | None],
            argv: Sequence[str | os.PathLike]) -> CliResult:
    """Run a package's ``main(argv)`` in-process, as its console script would, capturing output
    (``argv`` items may be paths)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run_main(main, [os.fspath(a) for a in argv])
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_module(module: str, argv: Sequence[str | os.PathLike], *,
               env: dict[str, str] | None = None, timeout: float = 600,
               cwd: str | Path | None = None) -> CliResult:
    """Run ``python -m module argv`` in a subprocess."""
    p = subprocess.run([sys.executable, "-m", module, *map(os.fspath, argv)], capture_output=True,
                       text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)
    return CliResult(p.returncode, p.stdout, p.stderr)


_PROGRESS = re.compile(r"^(DEBUG|INFO) [\w.]+: ")


def assert_user_error(result: CliResult, *fragments: str) -> None:
    """Bad input: exit code 2, one line on stderr that mentions every fragment, no traceback.

    Progress lines logged before the failure (``INFO name: ...``) are not counted; warnings are.
    """
    lines = [line for line in result.err.splitlines()
             if line.strip() and not _PROGRESS.match(line)]
    assert result.code == 2, f"exit code {result.code}, stderr: {result.err!r}"
    assert "Traceback" not in result.err, result.err
    assert len(lines) == 1, f"expected one error line, got {lines}"
    for frag in fragments:
        assert frag in lines[0], f"{frag!r} not in {lines[0]!r}"


def snapshot(paths: Iterable[str | Path]) -> dict[str, str]:
    """SHA-256 of every file in ``paths`` (files, or folders walked recursively), keyed by path;
    compare two snapshots to prove that nothing was changed, added or removed."""
    out: dict[str, str] = {}
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if not f.is_dir():
                    out[str(f)] = _digest(f)
        else:
            out[str(p)] = _digest(p)
    return out


def _digest(path: Path) -> str:
    if not path.exists():
        return "missing"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        return f"unreadable ({e.strerror})"


def _temp_files(folders: Iterable[Path]) -> list[str]:
    found = []
    for folder in folders:
        if folder.is_dir():
            found += [str(p) for p in folder.rglob(".*.tmp-*")]
            found += [str(p) for p in folder.rglob(".dldiy-write-test-*")]
    return found


def assert_bad_input(main: Callable[[Sequence[str] | None], int | None] | str,
                     argv: Sequence[str | os.PathLike], *fragments: str,
                     inputs: Iterable[str | Path] = (),
                     absent: Iterable[str | Path] = (),
                     env: dict[str, str] | None = None) -> CliResult:
    """Run one bad-input case of a CLI and check the whole contract:

    exit code 2, exactly one line on stderr containing every fragment (the file or setting at
    fault: give at least one), no traceback, every file of ``inputs`` (files or folders)
    byte-identical afterwards, nothing at the ``absent`` paths (outputs that must not appear), and
    no temporary file left beside them. ``main``: a package's ``main`` (run in-process) or a
    module name (``python -m`` in a subprocess, with ``env``).
    """
    assert fragments, "name the file or setting the error line must mention"
    inputs, absent = [Path(p) for p in inputs], [Path(p) for p in absent]
    before = snapshot(inputs)
    leftovers = set(_temp_files(inputs + [p.parent for p in absent]))
    result = run_cli(main, argv) if callable(main) else run_module(main, argv, env=env)
    assert_user_error(result, *fragments)
    new = set(_temp_files(inputs + [p.parent for p in absent])) - leftovers
    assert not new, f"refused command left temporary files: {sorted(new)}"
    after = snapshot(inputs)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"inputs changed by a refused command: {changed}"
    present = [str(p) for p in absent if p.exists() or p.is_symlink()]
    assert not present, f"refused command left outputs: {present}"
    return result


def bad_outputs(tmp_path: str | Path, inputs: Iterable[str | Path], *,
                runs: Iterable[str | Path] = (), folder: bool = False) -> list[tuple[Path, str]]:
    """The ``--out`` values a command must refuse, each with the name its error must mention.

    For each input file: the file, a symbolic link and a hard link to it, its folder; for each
    run folder: the folder and its checkpoint; a path under a file; and, for a file output
    (``folder=False``), an existing folder, for a folder output (``folder=True``), an existing
    file. Links and the obstacles are made under ``tmp_path/bad-outputs``::

        for out, name in bad_outputs(tmp_path, [src], runs=[run]):
            assert_bad_input(main, ["export", "--src", src, "--out", out], name,
                             inputs=[src, run])
    """
    base = Path(tmp_path) / "bad-outputs"
    base.mkdir(parents=True, exist_ok=True)
    cases: list[tuple[Path, str]] = []
    for i, inp in enumerate(map(Path, inputs)):
        cases.append((inp, inp.name))
        if inp.is_file():
            link, hard = base / f"symlink-{i}-{inp.name}", base / f"hardlink-{i}-{inp.name}"
            if not link.is_symlink():
                link.symlink_to(inp.resolve())
            cases.append((link, link.name))
            try:
                if not hard.exists():
                    os.link(inp, hard)
                cases.append((hard, hard.name))
            except OSError:  # another file system: no hard link possible
                pass
            cases.append((inp.parent, inp.parent.name))
    for run in map(Path, runs):
        cases.append((run, run.name))
        files = [run / "checkpoint.safetensors", run / "metrics.jsonl"]
        cases += [(f, f.name) for f in files if f.is_file()][:1]
    (base / "a-file").write_text("not a folder\n")
    cases.append((base / "a-file" / "out", "a-file"))
    if folder:
        cases.append((base / "a-file", "a-file"))
    else:
        (base / "a-folder").mkdir(exist_ok=True)
        cases.append((base / "a-folder", "a-folder"))
    return cases


def bad_inputs(tmp_path: str | Path, name: str = "input.bin", *,
               empty: bool = True) -> list[tuple[Path, str]]:
    """Input paths a command must refuse with one line naming ``name``: a missing file, a folder
    of that name, a path under a file, and (``empty=True``, when the format cannot be empty) an
    empty file. Made under ``tmp_path/bad-inputs``; content damage is :func:`corrupted_bytes`'."""
    base = Path(tmp_path) / "bad-inputs"
    (base / "folder" / name).mkdir(parents=True, exist_ok=True)
    (base / "missing").mkdir(exist_ok=True)
    (base / "a-file").write_text("not a folder\n")
    cases = [(base / "missing" / name, name), (base / "folder" / name, name),
             (base / "a-file" / name, name)]
    if empty:
        (base / "empty").mkdir(exist_ok=True)
        (base / "empty" / name).write_bytes(b"")
        cases.append((base / "empty" / name, name))
    return cases


@contextlib.contextmanager
def failing_writes(code: int = errno.ENOSPC) -> Iterator[None]:
    """Every atomic write (:func:`~dldiy_core.io.atomic_path`: checkpoints, configs, results,
    package outputs) fails with OS error ``code`` (default: disk full) when it commits."""
    real = os.fsync

    def fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))
    os.fsync = fsync
    try:
        yield
    finally:
        os.fsync = real


def _numeric(tp: Any) -> type | None:
    """int or float if annotation ``tp`` holds numbers (also optional, list or tuple of them)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in (int, float):
        return tp
    if origin in (list, tuple, typing.Union, types.UnionType):
        kinds = {_numeric(a) for a in args if a is not type(None) and a is not Ellipsis}
        kinds.discard(None)
        return float if float in kinds else (int if kinds else None)
    return None


def config_fields(cls: type, prefix: str = "") -> list[tuple[str, dataclasses.Field, Any]]:
    """Every leaf field of config class ``cls`` (nested sections walked): ``(key, field, type)``."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key, tp = f"{prefix}.{f.name}" if prefix else f.name, hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += config_fields(tp, key)
        else:
            out.append((key, f, tp))
    return out


def _out_of_range(bounds: Any, kind: type) -> list[float]:
    """Values just outside each declared bound, and the non-finite ones a float refuses."""
    values: list[float] = []
    if bounds.ge is not None:
        values.append(math.nextafter(bounds.ge, -math.inf) if kind is float
                      else math.ceil(bounds.ge) - 1)
    if bounds.gt is not None:
        values.append(bounds.gt if kind is float else math.floor(bounds.gt))
    if bounds.le is not None:
        values.append(math.nextafter(bounds.le, math.inf) if kind is float
                      else math.floor(bounds.le) + 1)
    if bounds.lt is not None:
        values.append(bounds.lt if kind is float else math.ceil(bounds.lt))
    if kind is float and bounds.finite:
        values += [math.nan, math.inf, -math.inf]
    return values


def assert_config_bounds(cls: type, presets: Mapping[str, Mapping] | None = None) -> int:
    """Walk every setting of config class ``cls`` (nested sections too) and check its range.

    - every numeric field (int, float, optional or list of them) declares its range with
      :func:`~dldiy_core.config.bounded`, so a package cannot forget one;
    - the defaults and every preset are within range;
    - for each declared bound, the value just outside it (below ``ge``, ``gt`` itself, above
      ``le``, ``lt`` itself) and, for floats, NaN and +-inf, given as ``--set key=value``, raise
      a :class:`~dldiy_core.config.ConfigError` that names the key.

    Returns the number of out-of-range cases checked.
    """
    presets = presets or {}
    resolve(cls, presets)
    for name in presets:
        resolve(cls, presets, name)
    undeclared = [key for key, f, tp in config_fields(cls)
                  if _numeric(tp) and field_bounds(f) is None]
    assert not undeclared, (f"{cls.__name__}: numeric settings without a declared range "
                            f"(use dldiy_core.bounded): {', '.join(undeclared)}")
    cases = 0
    for key, f, tp in config_fields(cls):
        kind, bounds = _numeric(tp), field_bounds(f)
        if kind is None or bounds is None:
            continue
        many = typing.get_origin(tp) in (list, tuple) or tp in (list, tuple)
        for v in _out_of_range(bounds, kind):
            text = repr(float(v)) if kind is float else str(int(v))  # repr: exact, "nan", "inf"
            expr = f"{key}=[{text}]" if many and math.isfinite(v) else f"{key}={text}"
            try:
                resolve(cls, presets, None, None, [expr])
            except ConfigError as e:
                assert f"'{key}'" in str(e) or f"{key}=" in str(e), \
                    f"--set {expr}: the error does not name the key: {e}"
            else:
                raise AssertionError(f"--set {expr} was accepted (declared {bounds.describe()})")
            cases += 1
    return cases


def corrupted_bytes(data: bytes) -> Any:
    """A hypothesis strategy of damaged copies of a valid file's bytes ``data``: truncated,
    a byte flipped, bytes overwritten, junk appended, emptied. Needs ``hypothesis``."""
    from hypothesis import strategies as st

    n = len(data)
    if n == 0:
        return st.binary(max_size=64)

    def flip(t: tuple[int, int]) -> bytes:
        i, mask = t
        return data[:i] + bytes([data[i] ^ mask]) + data[i + 1:]

    def overwrite(t: tuple[int, bytes]) -> bytes:
        i, junk = t
        return data[:i] + junk + data[i + len(junk):]

    return st.one_of(
        st.integers(0, n - 1).map(lambda k: data[:k]),
        st.tuples(st.integers(0, n - 1), st.integers(1, 255)).map(flip),
        st.tuples(st.integers(0, n - 1), st.binary(min_size=1, max_size=16)).map(overwrite),
        st.binary(min_size=1, max_size=64).map(lambda junk: data + junk),
    )


def reads_or_refuses(read: Callable[..., Any], path: str | Path, *args: Any,
                     **kwargs: Any) -> Any:
    """Call ``read(path, ...)``: the result if it reads, None if it refuses with a one-line
    :class:`~dldiy_core.errors.UserError` naming the file; any other exception fails the test."""
    try:
        return read(path, *args, **kwargs)
    except UserError as e:
        text = str(e)
        assert "\n" not in text, f"multi-line error: {text!r}"
        assert Path(path).name in text, f"error does not name {Path(path).name}: {text!r}"
        return None


def list_files(folder: str | Path) -> set[str]:
    """Relative paths of all files under ``folder`` (to check nothing was left behind)."""
    root = Path(folder)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() \
        else set()


def last_logged_step(run_dir: str | Path) -> int:
    path = Path(run_dir) / METRICS
    if not path.exists():
        return 0
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines()
             if line.strip().endswith("}")]
    return max(steps, default=0)


def kill_and_resume(start: Sequence[str], resume: Sequence[str], run_dir: str | Path, *,
                    kill_after_step: int, timeout: float = 300) -> subprocess.CompletedProcess:
    """Start ``start``, SIGKILL it once a checkpoint exists and ``kill_after_step`` steps are
    logged, then run ``resume`` to the end. Compare the result with an uninterrupted run."""
    run_dir = Path(run_dir)
    proc = subprocess.Popen(list(start), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while not ((run_dir / CHECKPOINT).exists() and
                   last_logged_step(run_dir) >= kill_after_step):
            if proc.poll() is not None:
                raise AssertionError(f"run ended before it could be killed: "
                                     f"{proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("run did not reach the kill point in time")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"run was not killed (exit {proc.returncode})"
    return subprocess.run(list(resume), capture_output=True, text=True, timeout=timeout,
                          check=True)


def assert_same_weights(a: str | Path, b: str | Path, atol: float = 0.0) -> None:
    """The ``model`` tensors of two checkpoints are equal (``atol=0``: bit for bit)."""
    ma, mb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert ma.keys() == mb.keys()
    for k in ma:
        if atol == 0:
            assert torch.equal(ma[k], mb[k]), f"{k} differs: max {(ma[k] - mb[k]).abs().max()}"
        else:
            torch.testing.assert_close(ma[k], mb[k], atol=atol, rtol=0, msg=f"{k} differs")


def clustered_points(n: int, d: int, k: int = 8, spread: float = 0.1,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 points around ``k`` random centres in ``d`` dims, and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    labels = rng.integers(0, k, size=n)
    x = centres[labels] + spread * rng.normal(size=(n, d))
    return x.astype(np.float32), labels


def sine_wave(freq: float, seconds: float, sample_rate: int = 16000,
              amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine tone ``[T]`` (a tiny audio fixture)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
