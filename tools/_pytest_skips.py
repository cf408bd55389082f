"""pytest plugin loaded by tools/test (``-p _pytest_skips``): GPU tests skip visibly, skips are
recorded.

- Tests marked ``gpu`` are skipped with the reason ``needs a CUDA device`` when torch sees none
  (so a CPU run lists them as skipped instead of silently leaving them out).
- ``--dldiy-skips FILE``: one JSON line per skipped test or module, ``{"nodeid", "reason",
  "gpu", "cuda"}`` (``gpu``: the test is marked gpu; ``cuda``: for gpu tests, whether torch
  sees a CUDA device). tools/test reads it to tell expected skips (gpu tests on a machine
  without CUDA) from unexpected ones (anything else), which fail under CI.
"""

from __future__ import annotations

import json

import pytest

NO_CUDA = "needs a CUDA device (tools/test --gpu on a CUDA machine)"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--dldiy-skips", metavar="FILE", default=None,
                     help="write one JSON line per skipped test (tools/test)")


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu and not _cuda():
        for item in gpu:
            item.add_marker(pytest.mark.skip(reason=NO_CUDA))


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _record(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> None:
    path = config.getoption("--dldiy-skips")
    if not path or not report.skipped:
        return
    gpu = "gpu" in getattr(report, "keywords", {})
    line = {"nodeid": report.nodeid, "reason": _reason(report), "gpu": gpu,
            "cuda": _cuda() if gpu else None}
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # a skip is reported once, in the setup phase (or in call, for pytest.skip() in the test)
    if report.skipped and report.when in ("setup", "call"):
        _record(_CONFIG[0], report)


@pytest.hookimpl(trylast=True)
def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _record(_CONFIG[0], report)


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG[:] = [config]
