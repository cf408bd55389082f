"""toy-train as a user runs it: log lines off a terminal, and bad resumes refused cleanly."""

import hashlib

import pytest

from dldiy_core.__main__ import main
from dldiy_core.testing import assert_user_error, run_cli, run_module

TINY = ["toy-train", "--preset", "tiny", "--set", "train.log_every=4"]


def snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_plain_progress_lines_when_stderr_is_not_a_terminal(tmp_path):
    r = run_module("dldiy_core", [*TINY, "--out", str(tmp_path / "r")])
    assert r.code == 0, r.err
    lines = [x for x in r.err.splitlines() if "steps/s" in x]
    assert len(lines) == 2 and "step 4/8" in lines[0] and "ETA" in lines[0], r.err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    r = run_cli(main, [*TINY, "--out", str(out)])
    assert r.code == 0, r.err
    return out


def damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[:len(data) // 2]
    elif how == "flipped weight bit":
        data[-5] ^= 0x10
    else:  # an edited step in the JSON header
        edited = data.replace(b'\\"step\\": 8', b'\\"step\\": 2')
        assert edited != data
        data = edited
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how, message", [
    ("truncated", "not a readable checkpoint"),
    ("flipped weight bit", "checksum mismatch"),
    ("edited step", "checksum mismatch"),
])
def test_damaged_checkpoint_is_refused_and_nothing_changes(run_dir, tmp_path, how, message):
    run = tmp_path / "copy"
    run.mkdir()
    for p in run_dir.iterdir():
        (run / p.name).write_bytes(p.read_bytes())
    damage(run / "checkpoint.safetensors", how)
    before = snapshot(run)
    r = run_cli(main, [*TINY, "--out", str(run), "--resume", "--set", "train.epochs=2"])
    assert_user_error(r, "checkpoint.safetensors", message)
    assert snapshot(run) == before


@pytest.mark.parametrize("args, message", [
    (["--resume"], "checkpoint not found"),
    (["--resume", "--set", "hidden=32"], "different config (hidden: 16 -> 32)"),
    (["--resume", "--set", "train.precision=bf16"], "train.precision"),
    ([], "already holds a run"),
])
def test_bad_resume_is_one_line_and_changes_nothing(run_dir, tmp_path, args, message):
    out = tmp_path / "empty" if args == ["--resume"] else run_dir
    out.mkdir(exist_ok=True)
    before = snapshot(out)
    assert_user_error(run_cli(main, [*TINY, "--out", str(out), *args]), message)
    assert snapshot(out) == before


def test_force_replaces_a_run(run_dir, tmp_path):
    r = run_cli(main, [*TINY, "--out", str(run_dir), "--force", "--set", "train.epochs=2"])
    assert r.code == 0, r.err
    assert "trained 16 steps" in r.out
