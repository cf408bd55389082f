"""tools/test: CONTRIBUTING's rules (core API, commands), skips under CI, the summary line."""

import os
import re
import sys
import textwrap
import time

import pytest
from conftest import TOOLS, run_tool, write_core, write_package

sys.path.insert(0, str(TOOLS))
import _checks  # noqa: E402

LAST = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$")


def last_line(p):
    line = p.stdout.strip().splitlines()[-1]
    m = LAST.match(line)
    assert m, f"last line is not 'N passed, N failed, N skipped': {line!r}"
    return tuple(map(int, m.groups()))


@pytest.mark.parametrize("source, tests, problem", [
    ("from dldiy_core import Report, Trainer\n", False, None),
    ("from dldiy_core import Report, secret_helper\n", False, "dldiy_core.secret_helper, which"),
    ("from dldiy_core.io import atomic_path\n", False, "submodule dldiy_core.io"),
    ("import dldiy_core.trainer\n", False, "submodule dldiy_core.trainer"),
    ("import dldiy_core as dc\nx = dc.Report\n", False, None),
    ("import dldiy_core as dc\nx = dc.trainer.Trainer\n", False, "dldiy_core.trainer, which"),
    ("from dldiy_core.testing import run_cli\n", True, None),
    ("from dldiy_core import testing\n", True, None),
    ("from dldiy_core.testing import run_cli\n", False, "submodule dldiy_core.testing"),
    ("def f():\n    from dldiy_core.checkpoint import x\n", False, "dldiy_core.checkpoint"),
])
def test_core_api_check(tmp_path, source, tests, problem):
    pkg = tmp_path / "packages" / "p"
    where = pkg / ("tests" if tests else "src/dldiy_p") / "m.py"
    where.parent.mkdir(parents=True)
    where.write_text(source)
    found = _checks.core_api_problems(pkg, {"Report", "Trainer"}, tmp_path)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0] and "m.py:" in found[0], found


def test_core_all_reads_the_literal_list(tmp_path):
    init = tmp_path / "__init__.py"
    init.write_text('from .a import b\n__all__ = ["b", "c"]\n')
    assert _checks.core_all(init) == {"b", "c"}


def test_api_step_fails_on_a_name_outside_all_and_names_the_file(fixture_repo):
    write_core(fixture_repo, ("ArgumentParser", "Report", "run_main", "write_results",
                              "write_wav"))
    ok = run_tool("test", "--only", "api", root=fixture_repo)
    assert ok.returncode == 0 and last_line(ok) == (2, 0, 0), ok.stdout
    write_package(fixture_repo, "sneaky", imports="from dldiy_core.io import atomic_path")
    bad = run_tool("test", "--only", "api", root=fixture_repo)
    assert bad.returncode == 1 and last_line(bad) == (2, 1, 0)
    assert "core API sneaky" in bad.stdout and "__main__.py" in bad.stdout
    # one package's problem does not block another's author: --package limits the check
    assert run_tool("test", "--only", "api", "--package", "tiny", root=fixture_repo
                    ).returncode == 0


def test_commands_step_needs_demo_train_eval_bench_or_a_declared_reason(fixture_repo):
    write_package(fixture_repo, "notrain", commands=("eval",))
    write_package(fixture_repo, "inference", commands=("eval",), tool=textwrap.dedent("""
        [tool.dldiy]
        commands-exempt = { train = "the paper trains nothing: pretrained models only" }
        """))
    p = run_tool("test", "--only", "commands", root=fixture_repo)
    assert p.returncode == 1 and last_line(p) == (3, 1, 0), p.stdout
    assert "commands notrain" in p.stdout and "no 'train' command" in p.stdout
    assert re.search(r"commands inference\s+ok", p.stdout)


SUITE = '''
import pytest

def test_passes():
    assert True

@pytest.mark.gpu
def test_on_cuda():
    import torch
    assert torch.cuda.is_available()

{extra}
'''


def write_suite(root, extra=""):
    (root / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.pytest.ini_options]
        addopts = "--strict-markers -m 'not slow and not integration and not gpu'"
        markers = ["slow: s", "integration: i", "gpu: g"]
        """))
    (root / "packages" / "tiny" / "tests" / "test_x.py").write_text(SUITE.format(extra=extra))


def no_cuda():
    import torch
    return not torch.cuda.is_available()


@pytest.mark.skipif(not no_cuda(), reason="checks the CPU-only behaviour")
def test_gpu_tests_skip_visibly_and_are_expected_under_ci(fixture_repo):
    write_suite(fixture_repo)
    args = ("--only", "tests", "--package", "tiny")
    for env in ({"CI": ""}, {"CI": "true"}):
        p = run_tool("test", *args, root=fixture_repo, env=env)
        assert p.returncode == 0, p.stdout
        assert last_line(p) == (1, 0, 1)
        assert "1 gpu test(s) skipped: no CUDA device" in p.stdout


@pytest.mark.skipif(not no_cuda(), reason="checks the CPU-only behaviour")
def test_an_unexpected_skip_fails_under_ci_only(fixture_repo):
    write_suite(fixture_repo, extra='''
def test_needs_a_tool():
    pytest.skip("chromium missing")
''')
    args = ("--only", "tests", "--package", "tiny")
    local = run_tool("test", *args, root=fixture_repo, env={"CI": ""})
    assert local.returncode == 0 and last_line(local) == (1, 0, 2)
    assert "skipped packages/tiny/tests/test_x.py::test_needs_a_tool: chromium missing" \
        in local.stdout.replace(str(fixture_repo) + "/", "")
    ci = run_tool("test", *args, root=fixture_repo, env={"CI": "true"})
    assert ci.returncode == 1 and last_line(ci) == (1, 1, 1), ci.stdout
    assert "unexpected skip" in ci.stdout and "chromium missing" in ci.stdout


@pytest.mark.skipif(not no_cuda(), reason="checks the CPU-only behaviour")
def test_gpu_option_fails_without_cuda(fixture_repo):
    write_suite(fixture_repo)
    p = run_tool("test", "--gpu", "--package", "tiny", root=fixture_repo)
    assert p.returncode == 1 and "CUDA device" in p.stdout and "FAILED" in p.stdout
    assert last_line(p) == (0, 1, 0)


def test_a_stuck_test_fails_with_its_stack_and_the_suite_goes_on(fixture_repo):
    write_suite(fixture_repo, extra='''
def test_stuck():
    import time
    time.sleep(120)
''')
    p = run_tool("test", "--only", "tests", "--package", "tiny", "--test-limit", "2",
                 root=fixture_repo)
    assert p.returncode == 1 and last_line(p) == (1, 1, 1), p.stdout
    assert "Timeout" in p.stdout and "time.sleep(120)" in p.stdout


def assert_gone(pid):
    """The process ``pid`` ends within 5 s."""
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)


@pytest.mark.parametrize("stuck", [True, False])
def test_a_suites_processes_go_with_it(fixture_repo, tmp_path, stuck):
    """Stuck past --suite-limit, the suite is killed with what it started; ended, what it left
    running (say a crashed worker's game engine) is killed too."""
    pid_file = tmp_path / "worker.pid"
    write_suite(fixture_repo, extra=f'''
def test_starts_a_process():
    import subprocess, time
    worker = subprocess.Popen(["sleep", "300"])
    open({str(pid_file)!r}, "w").write(str(worker.pid))
    time.sleep(300 if {stuck} else 0)
''')
    p = run_tool("test", "--only", "tests", "--package", "tiny", "--suite-limit", "8",
                 root=fixture_repo)
    if stuck:
        assert p.returncode == 1 and "killed after 8 s" in p.stdout, p.stdout
    else:
        assert p.returncode == 0 and last_line(p) == (2, 0, 1), p.stdout
    assert_gone(int(pid_file.read_text()))
