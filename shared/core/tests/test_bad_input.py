"""The bad-input suite helpers, on a small CLI built the way packages build theirs, and on the
core's own toy trainer: exit 2, one line naming the file or setting, inputs unchanged."""

import errno
import json
import os
import pathlib
import sys
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dldiy_core import (
    Commands,
    UserError,
    add_output_args,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    bounded,
    check_input,
    config_from_args,
    prepare_out_dir,
    prepare_out_file,
    read_input,
)
from dldiy_core.testing import (
    assert_bad_input,
    assert_config_bounds,
    bad_inputs,
    bad_outputs,
    corrupted_bytes,
    failing_writes,
    reads_or_refuses,
    run_cli,
    snapshot,
)


@dataclass
class Cfg:
    repeat: int = bounded(2, ge=1, le=8)
    gain: float = bounded(1.0, gt=0)


PRESETS = {"quick": {}}


def read_records(path):
    """A tiny reader: a header line ``N`` then N lines of numbers; damage is one clear line."""
    text = read_input(path, "records").decode(errors="replace")
    lines = text.split("\n")
    try:
        n = int(lines[0])
    except ValueError:
        raise UserError(f"{path}: bad header {lines[0][:20]!r} (expected a row count)") from None
    rows = [r for r in lines[1:] if r]
    if n < 0 or len(rows) != n:
        raise UserError(f"{path}: header announces {n} rows, file has {len(rows)}")
    try:
        return [float(r) for r in rows]
    except ValueError:
        raise UserError(f"{path}: a row is not a number") from None


def cmd_scale(args) -> int:
    cfg = config_from_args(Cfg, PRESETS, args)
    rows = read_records(args.src)
    out = prepare_out_file(args.out, inputs=[args.src], force=args.force)
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(str(r * cfg.gain) for r in rows * cfg.repeat))
    return 0


def cmd_train(args) -> int:
    cfg = config_from_args(Cfg, PRESETS, args)
    src = check_input(args.src, "records")  # inputs first, then outputs, then the work
    rows = read_records(src)
    out = prepare_out_dir(args.out, inputs=[src], force=args.force, resume=args.resume)
    atomic_write_text(out / "config.json", json.dumps({"repeat": cfg.repeat}))
    atomic_write_text(out / "metrics.jsonl", "{}\n")
    atomic_write_bytes(out / "checkpoint.safetensors", str(rows * cfg.repeat).encode())
    return 0


CLI = Commands("dldiy-tiny", "a tiny CLI", presets=PRESETS, default_preset="quick")
c = CLI.add("scale", cmd_scale, "scale records")
c.add_argument("--src", required=True)
add_output_args(c, help="output records")
c = CLI.add("train", cmd_train, "a run")
c.add_argument("--src", required=True)
add_output_args(c, help="run folder", resume=True)
main = CLI.main


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "data" / "x.rec"
    path.parent.mkdir()
    path.write_text("3\n1\n2\n3\n")
    return path


@pytest.fixture
def run(tmp_path, src):
    assert run_cli(main, ["train", "--src", str(src), "--out", str(tmp_path / "run")]).code == 0
    return tmp_path / "run"


def test_good_commands_work(tmp_path, src, run):
    assert run_cli(main, ["scale", "--src", str(src), "--out", str(tmp_path / "y")]).code == 0
    assert (tmp_path / "y").read_text().split() == ["1.0", "2.0", "3.0"] * 2
    assert run_cli(main, ["train", "--src", str(src), "--out", str(run), "--resume"]).code == 0
    r = run_cli(main, ["train", "--src", str(src), "--out", str(run), "--force", "--set",
                       "repeat=3"])
    assert r.code == 0 and json.loads((run / "config.json").read_text()) == {"repeat": 3}


def test_outputs_never_replace_inputs_or_runs(tmp_path, src, run):
    (tmp_path / "link").symlink_to(src)
    os.link(src, tmp_path / "hard")
    s, t = ["scale", "--src", str(src)], ["train", "--src", str(src)]
    cases = [
        (s + ["--out", str(src)], "x.rec: is the input"),
        (s + ["--out", str(src), "--force"], "x.rec: is the input"),
        (s + ["--out", str(tmp_path / "link")], "link: is the input"),
        (s + ["--out", str(tmp_path / "hard")], "hard: is the same file as the input"),
        (s + ["--out", str(run / "checkpoint.safetensors")], "is a file of the run"),
        (t + ["--out", str(src.parent)], "data: contains the input"),
        (t + ["--out", str(src.parent), "--force"], "data: contains the input"),
        (t + ["--out", str(run)], "run: already holds a run"),
        (t + ["--out", str(run), "--resume", "--force"], "not allowed with argument"),
    ]
    for argv, fragment in cases:
        assert_bad_input(main, argv, fragment, inputs=[src.parent, run])


def test_every_bad_output_is_refused(tmp_path, src, run):
    cases = bad_outputs(tmp_path, [src], runs=[run])
    assert len(cases) == 8
    for out, name in cases:
        assert_bad_input(main, ["scale", "--src", str(src), "--out", str(out)], name,
                         inputs=[src.parent, run, tmp_path / "bad-outputs"])
    for out, name in bad_outputs(tmp_path, [src], runs=[run], folder=True):
        assert_bad_input(main, ["train", "--src", str(src), "--out", str(out)], name,
                         inputs=[src.parent, run, tmp_path / "bad-outputs"])


def test_every_bad_input_is_refused(tmp_path):
    cases = bad_inputs(tmp_path, "x.rec")
    assert len(cases) == 4
    for path, name in cases:
        assert_bad_input(main, ["scale", "--src", path, "--out", tmp_path / "y"], name,
                         inputs=[tmp_path / "bad-inputs"], absent=[tmp_path / "y"])
        assert_bad_input(main, ["train", "--src", path, "--out", tmp_path / "r"], name,
                         inputs=[tmp_path / "bad-inputs"], absent=[tmp_path / "r"])


def test_a_full_disk_at_the_end_keeps_the_old_outputs(tmp_path, src, run):
    before = snapshot([run])
    with failing_writes():
        assert_bad_input(main, ["train", "--src", str(src), "--out", str(run), "--force"],
                         "no space left on device", inputs=[src])
        assert_bad_input(main, ["scale", "--src", str(src), "--out", str(tmp_path / "y")],
                         "y: cannot write (no space left", inputs=[src], absent=[tmp_path / "y"])
    assert snapshot([run]) == before
    with failing_writes(errno.EROFS):
        assert_bad_input(main, ["scale", "--src", str(src), "--out", str(tmp_path / "y")],
                         "y: cannot write (read-only file system)", absent=[tmp_path / "y"])


def test_os_errors_are_one_line(tmp_path, src, monkeypatch):
    (tmp_path / "file").write_text("in the way")
    (tmp_path / "folder.rec").mkdir()
    s = ["scale", "--src", str(src), "--out"]
    cases = [
        (s + [str(tmp_path / "file" / "y")], "file: exists and is not a folder"),
        (s + [str(tmp_path / "folder.rec")], "folder.rec: is a folder, expected a file"),
        (["scale", "--src", str(tmp_path / "nope"), "--out", str(tmp_path / "y")],
         "nope: records not found"),
        (["scale", "--src", str(tmp_path / "folder.rec"), "--out", str(tmp_path / "y")],
         "folder.rec: is a folder"),
        (["train", "--src", str(src), "--out", str(tmp_path / "file")],
         "file: exists and is not a folder"),
    ]
    for argv, fragment in cases:
        assert_bad_input(main, argv, fragment, inputs=[src, tmp_path / "file"],
                         absent=[tmp_path / "y"])
    real = pathlib.Path.write_text

    def full(self, data, *args, **kwargs):
        real(self, data[:3], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")
    (tmp_path / "y").write_text("old")
    monkeypatch.setattr(pathlib.Path, "write_text", full)
    assert_bad_input(main, s + [str(tmp_path / "y")], "y: cannot write (no space left",
                     inputs=[src, tmp_path / "y"])


def test_bad_settings_are_refused_before_any_work(tmp_path, src):
    for sets, fragment in [("repeat=0", "'repeat': 0 is out of range"),
                           ("repeat=9", "'repeat': 9 is out of range (must be >= 1 and <= 8)"),
                           ("gain=nan", "'gain': nan is not a number"),
                           ("gain=-1", "'gain': -1.0 is out of range")]:
        assert_bad_input(main, ["train", "--src", str(src), "--out", str(tmp_path / "r"),
                                "--set", sets], fragment, inputs=[src], absent=[tmp_path / "r"])
    assert assert_config_bounds(Cfg, PRESETS) == 2 + 4


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.one_of(corrupted_bytes(b"3\n1\n2\n3\n"), st.binary(max_size=40)))
def test_damaged_inputs_are_read_or_refused(tmp_path, blob):
    path = tmp_path / "d.rec"
    path.write_bytes(blob)
    rows = reads_or_refuses(read_records, path)
    if rows is None:
        assert_bad_input(main, ["scale", "--src", str(path), "--out", str(tmp_path / "o")],
                         "d.rec", inputs=[path], absent=[tmp_path / "o"])


# ---- the helper itself fails when the contract is broken -----------------------------------

def test_assert_bad_input_catches_every_breach(tmp_path, src):
    def changes_input(argv):
        src.write_text("0\n")
        raise UserError(f"{src}: bad")

    def two_lines(argv):
        print("warning: something", file=sys.stderr)
        raise UserError(f"{src}: bad")

    def traceback(argv):
        raise RuntimeError("boom")

    def leaves_output(argv):
        (tmp_path / "out").write_text("half")
        raise UserError(f"{src}: bad")

    def leaves_temp(argv):
        (src.parent / ".x.rec.tmp-1-abc").write_text("half")
        raise UserError(f"{src}: bad")

    def succeeds(argv):
        return 0
    for fn, message in [(changes_input, "inputs changed"), (two_lines, "one error line"),
                        (traceback, "boom"), (leaves_output, "left outputs"),
                        (leaves_temp, "temporary files"), (succeeds, "exit code 0")]:
        with pytest.raises((AssertionError, RuntimeError), match=message):
            assert_bad_input(fn, [], "x.rec", inputs=[src.parent], absent=[tmp_path / "out"])
    with pytest.raises(AssertionError, match="not in"):
        assert_bad_input(lambda argv: (_ for _ in ()).throw(UserError("vague")), [], "x.rec")
    with pytest.raises(AssertionError, match="name the file or setting"):
        assert_bad_input(main, ["scale"])


def test_snapshot_sees_content_added_and_removed_files(tmp_path, src):
    before = snapshot([src.parent])
    (src.parent / "new").write_text("x")
    assert snapshot([src.parent]) != before
    (src.parent / "new").unlink()
    assert snapshot([src.parent]) == before
    src.write_text("3\n1\n2\n4\n")
    assert snapshot([src.parent]) != before


def test_toy_trainer_output_under_a_file_is_one_line(tmp_path):
    from dldiy_core.toy import main as toy_main

    (tmp_path / "file").write_text("keep")
    assert_bad_input(toy_main, ["--out", str(tmp_path / "file" / "run"), "--preset", "tiny"],
                     "file", inputs=[tmp_path / "file"])


def test_toy_trainer_on_a_full_disk_is_one_line(tmp_path):
    from dldiy_core.toy import main as toy_main

    with failing_writes():
        assert_bad_input(toy_main, ["--out", tmp_path / "run", "--preset", "tiny"],
                         "cannot write (no space left on device)")
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()


def test_progress_lines_before_the_error_are_not_counted():
    from dldiy_core.testing import CliResult, assert_user_error

    assert_user_error(CliResult(2, "", "INFO dldiy_core.trainer: step 3/3\nerror: x: full\n"),
                      "x: full")
    with pytest.raises(AssertionError, match="one error line"):
        assert_user_error(CliResult(2, "", "WARNING m: odd\nerror: x: full\n"), "x: full")
