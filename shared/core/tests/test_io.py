"""OS errors on reading and writing are one line naming the path; a failed write leaves the old
file intact and nothing half-written; outputs never replace inputs or runs (dldiy_core.guard)."""

import errno
import os
import pathlib
import sys

import pytest

from dldiy_core import (
    UserError,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    check_input,
    check_outputs,
    guard,
    holds_run,
    make_dir,
    open_input,
    os_error,
    prepare_out_dir,
    prepare_out_file,
    read_input,
    run_main,
)
from dldiy_core.guard import input_scope, register_inputs, registered_inputs


@pytest.fixture(autouse=True)
def fresh_inputs():
    with input_scope(fresh=True):
        yield


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or "write-test" in p.name)


def fail_with(code, text):
    def raise_(*args, **kwargs):
        raise OSError(code, text)
    return raise_


# ---- atomic writes ------------------------------------------------------------------------

def test_atomic_write_replaces_and_keeps_the_suffix_of_the_temporary(tmp_path):
    out = tmp_path / "sub" / "x.npy"
    atomic_write_bytes(out, b"old")
    with atomic_path(out) as tmp:
        assert tmp.parent == out.parent and tmp.suffix == ".npy" and ".tmp-" in tmp.name
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new" and leftovers(out.parent) == []


def half_then(code):
    real = pathlib.Path.write_bytes

    def write_bytes(self, data):
        real(self, data[: len(data) // 2])
        raise OSError(code, os.strerror(code))
    return write_bytes


@pytest.mark.parametrize("code, why", [
    (errno.ENOSPC, "no space left on device"),
    (errno.EDQUOT, "disk quota exceeded"),
    (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied"),
    (errno.EIO, "input/output error"),
])
def test_failed_write_keeps_the_old_file_and_names_the_destination(tmp_path, monkeypatch,
                                                                   code, why):
    out = tmp_path / "data.bin"
    out.write_bytes(b"old contents")
    monkeypatch.setattr(pathlib.Path, "write_bytes", half_then(code))
    with pytest.raises(UserError) as e:
        atomic_write_bytes(out, b"new contents that do not fit")
    assert str(e.value) == f"{out}: cannot write ({why})"
    assert out.read_bytes() == b"old contents" and leftovers(tmp_path) == []


@pytest.mark.parametrize("target", ["fsync", "replace"])
def test_disk_full_at_fsync_or_rename(tmp_path, monkeypatch, target):
    out = tmp_path / "m.json"
    out.write_text("{}")
    monkeypatch.setattr(os, target, fail_with(errno.ENOSPC, "No space left on device"))
    with pytest.raises(UserError, match=r"m.json: cannot write \(no space left on device\)"):
        atomic_write_text(out, '{"a": 1}')
    monkeypatch.undo()
    assert out.read_text() == "{}" and leftovers(tmp_path) == []


def test_a_short_write_on_a_full_disk_says_so(tmp_path, monkeypatch):
    """numpy reports a full disk as an OSError without errno ("N requested and M written")."""
    out = tmp_path / "x.npy"
    out.write_bytes(b"old")

    class Full:
        f_bavail, f_frsize = 0, 4096
    monkeypatch.setattr(os, "statvfs", lambda path: Full())
    with pytest.raises(UserError, match=r"x.npy: cannot write \(no space left on device\)$"), \
            atomic_path(out) as tmp:
        tmp.write_bytes(b"12")
        raise OSError("800000 requested and 8176 written")
    monkeypatch.undo()
    with pytest.raises(UserError, match=r"x.npy: cannot write \(800000 requested"), \
            atomic_path(out) as tmp:
        raise OSError("800000 requested and 8176 written")
    assert out.read_bytes() == b"old" and leftovers(tmp_path) == []


@pytest.mark.parametrize("message, why", [
    ("Error while serializing: I/O error: No space left on device (os error 28)",
     "no space left on device"),
    ("Error in faiss::FileIOWriter: write error in x: 0 != 1 (Read-only file system)",
     "read-only file system"),
])
def test_a_library_error_wrapping_an_os_error_is_one_line(tmp_path, message, why):
    class LibraryError(Exception):
        pass
    out = tmp_path / "ck.safetensors"
    out.write_bytes(b"old")
    with pytest.raises(UserError, match=rf"ck.safetensors: cannot write \({why}\)$"), \
            atomic_path(out) as tmp:
        tmp.write_bytes(b"half")
        raise LibraryError(message)
    with pytest.raises(ValueError, match="unrelated"), atomic_path(out):
        raise ValueError("unrelated")
    with pytest.raises(LibraryError, match="No such file"), atomic_path(out):
        raise LibraryError("cannot open x.idx: No such file or directory (os error 2)")
    assert out.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_a_checkpoint_save_on_a_full_disk(tmp_path, monkeypatch):
    """safetensors writes in Rust: a full disk is its own exception, made one line here."""
    import torch

    from dldiy_core import load_checkpoint, save_checkpoint
    out = tmp_path / "checkpoint.safetensors"
    save_checkpoint(out, {"w": torch.zeros(3)})
    monkeypatch.setattr(os, "fsync", fail_with(errno.ENOSPC, "No space left on device"))
    with pytest.raises(UserError, match=r"checkpoint.safetensors: cannot write \(no space"):
        save_checkpoint(out, {"w": torch.ones(3)})
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(out)["w"], torch.zeros(3)) and leftovers(tmp_path) == []


def test_write_where_a_folder_or_a_file_is_in_the_way(tmp_path):
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(UserError, match=r"dir.json: is a folder, expected a file"):
        atomic_write_text(tmp_path / "dir.json", "x")
    (tmp_path / "file").write_text("keep")
    with pytest.raises(UserError, match=r"file: exists and is not a folder"):
        atomic_write_text(tmp_path / "file" / "sub" / "x.json", "x")
    assert (tmp_path / "file").read_text() == "keep"


def test_folder_creation_errors(tmp_path, monkeypatch):
    def mkdir(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))
    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    with pytest.raises(UserError, match=r"new: cannot create folder \(permission denied\)"):
        atomic_write_text(tmp_path / "new" / "x.txt", "x")
    with pytest.raises(UserError, match=r"run: cannot create folder \(permission denied\)"):
        prepare_out_dir(tmp_path / "run")


def test_a_read_only_output_folder_fails_before_any_work(tmp_path, monkeypatch):
    real_open = open

    def ro_open(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, mode, *args, **kwargs)
    monkeypatch.setattr("builtins.open", ro_open)
    with pytest.raises(UserError, match=r"out: cannot write \(read-only file system\)"):
        prepare_out_dir(tmp_path / "out")
    with pytest.raises(UserError, match=r"r.json: cannot write \(read-only file system\)"):
        prepare_out_file(tmp_path / "r.json")
    monkeypatch.undo()
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "out") == []


def test_permission_denied_for_real_when_not_root(tmp_path, monkeypatch):
    """Root ignores permission bits, so as root the error is simulated at the open."""
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x.txt").write_text("old")
    locked.chmod(0o555)
    if os.geteuid() == 0:
        monkeypatch.setattr(pathlib.Path, "write_bytes", half_then(errno.EACCES))
    try:
        with pytest.raises(UserError, match=r"x.txt: cannot write \(permission denied\)"):
            atomic_write_text(locked / "x.txt", "new")
    finally:
        locked.chmod(0o755)
    assert (locked / "x.txt").read_text() == "old" and leftovers(locked) == []


def test_an_error_of_another_file_inside_the_block_names_that_file(tmp_path):
    with pytest.raises(UserError, match=r"missing.bin: cannot read \(not found\)"), \
            atomic_path(tmp_path / "out.bin") as tmp:
        tmp.write_bytes((tmp_path / "missing.bin").read_bytes())
    assert not (tmp_path / "out.bin").exists() and leftovers(tmp_path) == []


def test_interrupt_inside_the_block_leaves_nothing(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert (tmp_path / "a.txt").read_text() == "old" and leftovers(tmp_path) == []


# ---- reading inputs -----------------------------------------------------------------------

def test_input_errors_name_the_file(tmp_path, monkeypatch):
    (tmp_path / "f.vec").write_text("1 2\n")
    (tmp_path / "d.vec").mkdir()
    with pytest.raises(UserError, match=r"nope.vec: source vectors not found$"):
        read_input(tmp_path / "nope.vec", "source vectors")
    with pytest.raises(UserError, match=r"d.vec: is a folder, expected a file \(input\)"):
        check_input(tmp_path / "d.vec")
    with pytest.raises(UserError, match=r"f.vec/x: cannot read input \(a file stands where"):
        check_input(tmp_path / "f.vec" / "x")
    with pytest.raises(UserError, match=r"f.vec: is a file, expected a folder \(run\)"):
        check_input(tmp_path / "f.vec", "run", folder=True)
    with pytest.raises(UserError, match=r"none: run folder not found"):
        check_input(tmp_path / "none", "run", folder=True)
    monkeypatch.setattr("builtins.open", fail_with(errno.EACCES, "Permission denied"))
    with pytest.raises(UserError, match=r"f.vec: cannot read input \(permission denied\)"):
        check_input(tmp_path / "f.vec")


def test_read_errors_while_reading(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(b"RIFF")
    assert read_input(path, register=False) == b"RIFF" and registered_inputs() == []
    with pytest.raises(UserError, match=r"a.wav: cannot read audio \(input/output error\)"), \
            open_input(path, "rb", "audio"):
        raise OSError(errno.EIO, "Input/output error")
    with pytest.raises(ValueError, match="for reading"), open_input(path, "wb"):
        pass
    with open_input(path, "r", encoding="latin-1") as f:
        assert f.read() == "RIFF"
    assert read_input(path) == b"RIFF"
    assert registered_inputs() == [path]


# ---- outputs never replace inputs ---------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    (tmp_path / "data").mkdir()
    base = tmp_path / "data" / "base.fvecs"
    base.write_bytes(b"base vectors")
    return tmp_path, base


def refused(outputs, inputs, fragment, **kw):
    with pytest.raises(UserError) as e:
        check_outputs(outputs, inputs, **kw)
    assert fragment in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_an_output_never_replaces_an_input(files, monkeypatch):
    tmp, base = files
    refused([base], [base], "base.fvecs: is the input")
    monkeypatch.chdir(tmp)
    refused(["data/../data/base.fvecs"], [base], "is the input")
    (tmp / "link.fvecs").symlink_to(base)
    refused([tmp / "link.fvecs"], [base], "is the input")
    refused([base], [tmp / "link.fvecs"], "is the input")
    os.link(base, tmp / "hard.fvecs")
    refused([tmp / "hard.fvecs"], [base], "is the same file as the input")
    refused([tmp / "data"], [base], "data: contains the input")
    refused([tmp], [base], "contains the input")
    (tmp / "data" / "other.txt").write_text("x")
    refused([tmp / "data" / "other.txt"], [tmp / "data"], "is a file of the input")
    for flags in ({"force": True}, {"resume": True}):
        refused([base], [base], "is the input", **flags)
    (tmp / "elsewhere.txt").write_text("y")
    (tmp / "data" / "link.txt").symlink_to(tmp / "elsewhere.txt")
    refused([tmp / "data" / "link.txt"], [tmp / "data"], "is a file of the input")
    (tmp / "alias").symlink_to(tmp / "data")
    refused([tmp / "data" / "other.txt"], [tmp / "alias"], "is a file of the input")
    refused([tmp / "alias" / "other.txt"], [tmp / "data"], "is a file of the input")
    check_outputs([tmp / "data" / "new.txt", tmp / "out.fvecs", None], [tmp / "data", None])
    assert (tmp / "hard.fvecs").read_bytes() == b"base vectors"


def test_the_writer_refuses_a_registered_input_whatever_the_code_path(files):
    tmp, base = files
    read_input(base)
    with pytest.raises(UserError, match="base.fvecs: is the input .*outputs never replace"):
        atomic_write_bytes(base, b"index")
    register_inputs(tmp / "data")
    (tmp / "data" / "q.ivecs").write_bytes(b"q")
    with pytest.raises(UserError, match="q.ivecs: is a file of the input"):
        atomic_write_bytes(tmp / "data" / "q.ivecs", b"ids")
    assert base.read_bytes() == b"base vectors" and (tmp / "data" / "q.ivecs").read_bytes() == b"q"


def test_inputs_are_forgotten_when_the_command_ends(files):
    tmp, base = files

    def main(argv):
        read_input(base)
        assert registered_inputs() == [base]
    assert run_main(main, []) == 0
    assert registered_inputs() == []
    atomic_write_bytes(base, b"rewritten outside a command that read it")


# ---- runs -----------------------------------------------------------------------------------

def make_run(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_text("{}")
    return folder


def test_a_run_folder_is_refused_unless_resume_or_force(tmp_path):
    run = make_run(tmp_path / "run", "checkpoint.safetensors")
    refused([run], [], "run: already holds a run (checkpoint.safetensors); resume it, "
                       "replace it with --force")
    check_outputs([run], resume=True)
    check_outputs([run], force=True)
    refused([run / "checkpoint.safetensors"], [], "is a file of the run in")
    check_outputs([run / "checkpoint.safetensors"], force=True)
    check_outputs([run / "index.bin"])  # a new file beside a run replaces nothing
    logged = make_run(tmp_path / "logged", "config.json", "metrics.jsonl")
    refused([logged], [], "already holds a run (metrics.jsonl)")
    refused([logged / "config.json"], [], "is a file of the run")
    assert holds_run(make_run(tmp_path / "best", "best.safetensors")) == "best.safetensors"
    assert holds_run(make_run(tmp_path / "half", "config.json", "report.html")) is None
    check_outputs([tmp_path / "half", tmp_path / "half" / "config.json"])


def test_run_markers_are_extensible(tmp_path, monkeypatch):
    monkeypatch.setattr(guard, "RUN_MARKERS", list(guard.RUN_MARKERS))
    index = make_run(tmp_path / "index", "index.faiss", "meta.json")
    assert holds_run(index) is None
    guard.add_run_marker("index.faiss", "meta.json")
    guard.add_run_marker("index.faiss", "meta.json")
    assert holds_run(index) == "index.faiss + meta.json"
    assert guard.RUN_MARKERS.count(("index.faiss", "meta.json")) == 1
    refused([index], [], "already holds a run (index.faiss + meta.json)")


def test_prepare_out_dir_and_file(tmp_path):
    assert prepare_out_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="f: exists and is not a folder"):
        prepare_out_dir(tmp_path / "f")
    with pytest.raises(UserError, match="f: exists and is not a folder"):
        prepare_out_file(tmp_path / "f" / "out.json")
    with pytest.raises(UserError, match="a: is a folder, expected a file"):
        prepare_out_file(tmp_path / "a")
    assert prepare_out_file(tmp_path / "new" / "o.json") == tmp_path / "new" / "o.json"
    assert not (tmp_path / "new" / "o.json").exists() and leftovers(tmp_path / "new") == []
    assert make_dir(tmp_path / "a") == tmp_path / "a"


# ---- one line for every OS error -------------------------------------------------------------

@pytest.mark.parametrize("err, line", [
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "x.npy"), "x.npy: not found"),
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
    (OSError(errno.ENOTDIR, "Not a directory", "a/b"),
     "a/b: a file stands where a folder is expected"),
    (OSError(errno.ENOMEM + 1000, "Strange Thing", "z"), "z: strange thing"),
])
def test_os_error_lines(err, line):
    assert str(os_error(err)) == line
    assert str(os_error(err, "p", "read")).startswith("p: cannot read (")


def test_run_main_turns_a_stray_os_error_into_one_line(capsys):
    def full(argv):
        with open("/dev/full", "w") as f:
            f.write("x" * 10000)
    assert run_main(full) == 2
    err = capsys.readouterr().err
    assert err == "error: /dev/full: no space left on device\n" or \
        err == "error: no space left on device\n"

    def missing(argv):
        pathlib.Path("/nonexistent/run/config.json").read_text()
    assert run_main(missing) == 2
    assert capsys.readouterr().err == "error: /nonexistent/run/config.json: not found\n"

    def two_lines(argv):
        raise UserError("x.vec: bad header\n  expected 2 fields")
    assert run_main(two_lines) == 2
    assert capsys.readouterr().err == "error: x.vec: bad header   expected 2 fields\n"

    def interrupted(argv):
        raise KeyboardInterrupt
    assert run_main(interrupted) == 130
    assert capsys.readouterr().err == "interrupted\n"
    assert sys.exc_info() == (None, None, None)


def test_many_inputs_cost_little_per_write(tmp_path):
    """A corpus reader registers thousands of files; each atomic write still checks in O(1)."""
    import time

    corpus = tmp_path / "corpus"
    register_inputs(*(corpus / f"spk{i // 100}" / f"u{i}.wav" for i in range(5000)))
    register_inputs(*(corpus / f"spk{i // 100}" / f"u{i}.wav" for i in range(5000)))
    assert len(registered_inputs()) == 5000
    t = time.perf_counter()
    for i in range(500):
        guard.check_not_input(tmp_path / "features" / f"u{i}.npy")
    assert time.perf_counter() - t < 5.0
    with pytest.raises(UserError, match="spk3: contains the input"):
        guard.check_not_input(corpus / "spk3")


def test_read_idx_round_trip_and_bad_files(tmp_path):
    """idx images and labels (gzipped or not) keep their shape; bad files are one line."""
    import gzip
    import struct

    import numpy as np

    from dldiy_core import read_idx

    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 3, 4) + images.tobytes()
    (tmp_path / "im.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "im").write_bytes(raw)
    for name in ("im.gz", "im"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), images)
    labels = b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes([7, 0, 9])
    (tmp_path / "lab").write_bytes(labels)
    assert read_idx(tmp_path / "lab").tolist() == [7, 0, 9]
    bad = {"short": raw[:-1], "magic": b"\x00\x00\x0d\x03" + raw[4:], "gz": b"\x1f\x8bxx",
           "header": raw[:9]}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError, match=f"{name}: "):
            read_idx(tmp_path / name)
