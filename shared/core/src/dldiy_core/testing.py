"""Test helpers every package reuses: CLI runners, the bad-input check, the kill-and-resume
check, and tiny fixtures."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .errors import run_main
from .trainer import CHECKPOINT, METRICS


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str]) -> CliResult:
    """Run a package's ``main(argv)`` in-process, as its console script would, capturing output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run_main(main, list(argv))
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_module(module: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
               timeout: float = 600, cwd: str | Path | None = None) -> CliResult:
    """Run ``python -m module argv`` in a subprocess."""
    p = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)
    return CliResult(p.returncode, p.stdout, p.stderr)


def assert_user_error(result: CliResult, *fragments: str) -> None:
    """Bad input: exit code 2, one line on stderr that mentions every fragment, no traceback."""
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert result.code == 2, f"exit code {result.code}, stderr: {result.err!r}"
    assert "Traceback" not in result.err, result.err
    assert len(lines) == 1, f"expected one error line, got {lines}"
    for frag in fragments:
        assert frag in lines[0], f"{frag!r} not in {lines[0]!r}"


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
