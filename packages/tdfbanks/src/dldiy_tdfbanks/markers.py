"""The files that make a folder hold a run of this package, besides the Trainer's own
(:data:`dldiy_core.RUN_MARKERS`): outputs never replace a file of one, and a command writing
into one needs ``--resume`` or ``--force``."""

from __future__ import annotations

from dldiy_core import add_run_marker

EXPERIMENT_MARKER = "experiment-config.json"
"""Written first into an ``experiment`` folder (the settings, checked on ``--resume``)."""
BUILD_MARKER = "build-config.json"
"""Written first into a corpus that ``data build`` synthesizes (the build settings)."""

add_run_marker(EXPERIMENT_MARKER)
add_run_marker(BUILD_MARKER)
