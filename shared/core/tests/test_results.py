"""Results files: figures with the command, commit, date and machine that gave them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from dldiy_core import UserError, bf16_isa, emit_results, read_results, write_results
from dldiy_core.results import command_line, git_commit


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.email", "t@example.org")
    git(root, "config", "user.name", "t")
    (root / "run.py").write_text("print(1)\n")
    git(root, "add", "run.py")
    git(root, "commit", "-q", "-m", "one")
    return root


def test_write_then_read_keeps_figures_and_records_how(tmp_path, repo):
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    path = write_results(tmp_path / "out" / "r.json",
                         {"speed": np.float32(2.5), "recalls": np.array([0.5, 0.25]),
                          "n": np.int64(3), "ok": np.bool_(True), "name": "x"},
                         command=["dldiy-x", "bench", "--json", "r.json"], source=repo / "run.py")
    record = read_results(path)
    assert record["figures"] == {"speed": 2.5, "recalls": [0.5, 0.25], "n": 3, "ok": True,
                                 "name": "x"}
    assert record["command"] == "dldiy-x bench --json r.json"
    assert record["commit"] == {"sha": git(repo, "rev-parse", "HEAD"), "dirty": False}
    date = datetime.fromisoformat(record["date"])
    assert date.tzinfo is not None and before <= date <= datetime.now(timezone.utc)
    m = record["machine"]
    assert m["cores"] >= 1 and m["threads"] >= 1 and m["torch"] and m["cpu"]
    assert "cuda" in m
    assert not list(path.parent.glob(".*tmp*"))  # written atomically, nothing left beside


def test_dirty_tree_and_untracked_or_outside_git(tmp_path, repo):
    (repo / "run.py").write_text("print(2)\n")
    assert git_commit(repo / "run.py")["dirty"] is True
    (repo / "new.py").write_text("")
    assert git_commit(repo / "new.py") is None  # not tracked: no commit to name
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git_commit(outside) is None
    assert read_results(write_results(outside / "r.json", {"a": 1}, source=outside)
                        )["commit"] is None


def test_command_defaults_to_argv_as_typed(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/some/venv/bin/dldiy-x", "bench", "--set", "a=b c"])
    assert command_line() == "dldiy-x bench --set 'a=b c'"


def test_emit_results_prints_figures_and_writes_the_record(tmp_path, capsys):
    emit_results({"a": 1.5}, tmp_path / "r.json", command="x bench")
    assert json.loads(capsys.readouterr().out) == {"a": 1.5}
    assert read_results(tmp_path / "r.json")["figures"] == {"a": 1.5}
    emit_results({"a": 2.0})  # no path: only printed
    assert json.loads(capsys.readouterr().out) == {"a": 2.0}


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = write_results(tmp_path / "r.json", {"a": 1}, command="x")
    with pytest.raises(ValueError, match="not finite"):
        write_results(path, {"a": float("nan")}, command="x")
    with pytest.raises(TypeError, match="not JSON"):
        write_results(path, {"a": object()}, command="x")
    assert read_results(path)["figures"] == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.parametrize("content, problem", [
    (None, "no such results file"),
    ("{not json", "not a results file"),
    ('{"speed": 2.5}', "not a results file"),
    ('{"format": "dldiy-results/1", "figures": {}}', "without command, commit, date, machine"),
    ('{"format": "dldiy-results/1", "command": "", "commit": null, "date": "", '
     '"machine": {}, "figures": [1]}', '"figures" is not an object'),
])
def test_read_refuses_what_is_not_a_results_file(tmp_path, content, problem):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=problem) as e:
        read_results(path)
    assert str(path) in str(e.value)


def test_commit_is_that_of_the_code_that_measured_not_of_its_launcher(tmp_path, repo):
    """A console script in an ignored venv calls the package's tracked code: the record names
    the package's commit (not null because the launcher is untracked)."""
    (repo / "lib.py").write_text("from dldiy_core import write_results\n"
                                 "def bench(path):\n    return write_results(path, {'a': 1})\n")
    (repo / ".gitignore").write_text("venv/\n")
    git(repo, "add", "lib.py", ".gitignore")
    git(repo, "commit", "-q", "-m", "lib")
    launcher = repo / "venv" / "bin" / "dldiy-x"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(f"import sys\nsys.path.insert(0, {str(repo)!r})\nimport lib\n"
                        "lib.bench(sys.argv[1])\n")
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, str(launcher), str(out)], check=True, cwd=tmp_path)
    record = read_results(out)
    assert record["commit"] == {"sha": git(repo, "rev-parse", "HEAD"), "dirty": False}
    assert record["command"] == f"dldiy-x {out}"


def test_write_results_replaces_only_a_results_file(tmp_path):
    """A results file is rewritten; any other existing file (a README passed by mistake) is
    refused with one line and left as it was."""
    import pytest

    from dldiy_core import UserError, write_results

    out = write_results(tmp_path / "r.json", {"a": 1})
    write_results(out, {"a": 2})
    readme = tmp_path / "README.md"
    readme.write_text("# keep me\n")
    with pytest.raises(UserError, match="README.md: exists and is not a results file"):
        write_results(readme, {"a": 1})
    assert readme.read_text() == "# keep me\n"


@pytest.mark.parametrize("flags,isa", [("fpu avx512_bf16 amx_bf16 amx_tile", "amx_bf16"),
                                       ("fpu avx512f avx512_bf16", "avx512_bf16"),
                                       ("fpu avx2 fma", "none")])
def test_bf16_isa_reads_the_cpu_flags(tmp_path, flags, isa):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert bf16_isa(info) == isa
    assert bf16_isa(tmp_path / "missing") == "unknown"
