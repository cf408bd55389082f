"""Outputs never replace inputs or runs: the core's guard, with this package's run folders.

A folder holds a run of this package when it holds a report (``summary.json``, ``index.html``,
``report.md``) or a study page (``study.json``, ``index.html``): writing there again needs
``--force``, and no output may be or contain an input (``--force`` does not lift that).
"""

from __future__ import annotations

from dldiy_core import add_run_marker, check_input, prepare_out_dir, prepare_out_file

RUN_FILES = [("summary.json", "index.html", "report.md"), ("study.json", "index.html")]

for _names in RUN_FILES:
    add_run_marker(*_names)

__all__ = ["RUN_FILES", "check_input", "prepare_out_dir", "prepare_out_file"]
