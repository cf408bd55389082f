import json
import subprocess
import sys

import pytest
from conftest import TOOLS, run_tool, write_package

sys.path.insert(0, str(TOOLS))
import _packaging  # noqa: E402


@pytest.mark.parametrize("tool", ["setup", "test", "demo", "bench", "results", "check-wheel",
                                  "changed-packages"])
def test_every_tool_has_help(tool):
    p = subprocess.run([str(TOOLS / tool), "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "usage" in p.stdout.lower()


def test_demo_runs_each_package_and_gathers_one_page(fixture_repo, tmp_path):
    out = tmp_path / "demo"
    p = run_tool("demo", "--out", str(out), root=fixture_repo)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"report: {out / 'index.html'}" in p.stdout
    assert "demo small" in p.stdout and "demo tiny" in p.stdout
    page = (out / "index.html").read_text()
    for name in ("small", "tiny"):
        assert f'<section id="{name}">' in page
        assert f'src="{name}/curve.png"' in page and f'src="{name}/tone.wav"' in page
        assert (out / name / "curve.png").stat().st_size > 1000
    assert "0.93" in page and "accuracy" in page


def test_demo_failure_is_reported_on_the_page_and_in_the_exit_code(fixture_repo, tmp_path):
    out = tmp_path / "demo"
    p = run_tool("demo", "--out", str(out), root=fixture_repo, env={"TINY_FAIL": "tiny"})
    assert p.returncode == 1
    assert "demo tiny" in p.stdout and "FAILED" in p.stdout
    page = (out / "index.html").read_text()
    assert "demo broke" in page and '<section id="small">' in page


def test_bench_writes_json_per_package_and_a_table(fixture_repo, tmp_path):
    out = tmp_path / "bench"
    p = run_tool("bench", "--out", str(out), "--package", "tiny", root=fixture_repo)
    assert p.returncode == 0, p.stdout + p.stderr
    record = json.loads((out / "tiny.json").read_text())
    assert record["figures"]["speed_x"] == 2.5 and record["command"].endswith("tiny.json")
    assert any(line.split()[:3] == ["tiny", "speed_x", "2.5"] for line in p.stdout.splitlines())
    assert not (out / "small.json").exists()


def test_import_contracts_catch_one_package_importing_another(fixture_repo):
    ok = run_tool("test", "--only", "imports", root=fixture_repo)
    assert ok.returncode == 0 and "1 passed, 0 failed, 0 skipped" in ok.stdout, ok.stdout
    write_package(fixture_repo, "leaky", imports="import dldiy_tiny")
    bad = run_tool("test", "--only", "imports", root=fixture_repo)
    assert bad.returncode == 1 and "0 passed, 1 failed, 0 skipped" in bad.stdout
    assert "dldiy_leaky" in bad.stdout and "dldiy_tiny" in bad.stdout


@pytest.mark.parametrize("requirement, problem", [
    ("dldiy-core>=0.1,<0.2", None),
    ("dldiy-core~=0.1", None),
    ("dldiy-core>=0.1", "not a bounded version range"),
    ("dldiy-core @ file:///work/shared/core", "direct file requirement"),
])
def test_wheel_requirement_checks(tmp_path, requirement, problem):
    pkg = write_package(tmp_path, "wheely", core_req=requirement)
    wheel = _packaging.build_wheel(pkg, tmp_path)
    problems = _packaging.wheel_problems(wheel, needs_core=True)
    assert (problems == []) if problem is None else (problem in problems[0])


def test_changed_packages_selects_all_on_core_or_tools_changes(fixture_repo):
    def changed(*files):
        p = subprocess.run([str(TOOLS / "changed-packages"), "--root", str(fixture_repo),
                            "--files", *files], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    assert changed("packages/tiny/src/dldiy_tiny/__init__.py") == ["tiny"]
    assert changed("README.md") == []
    assert changed("shared/core/src/dldiy_core/trainer.py") == ["tools", "small", "tiny"]
    assert changed("tools/test", "packages/tiny/x") == ["tools", "small", "tiny"]
