"""Restarts picked by the unsupervised criterion (``--restarts N``, section 3.5).

The paper selects among its adversarial runs with the mean CSLS cosine criterion, which reads
no dictionary; ``align`` does the same: ``restarts`` unsupervised runs with seeds ``seed``,
``seed + 1``... each initialised and refined, and the run with the best criterion is kept.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from .align import Alignment
from .config import MuseConfig
from .dictionary import mean_csls_cosine

log = logging.getLogger(__name__)


def align_with_restarts(cfg: MuseConfig, pair, show_progress: bool = True) -> Alignment:
    """``pipeline.align`` once, or ``cfg.restarts`` times (unsupervised mode only), keeping
    the run with the best criterion; its history ends with one ``restart`` record per run
    (``seed``, ``restart_criterion``, ``seconds``, ``kept``)."""
    from .pipeline import align

    if cfg.mode != "unsupervised" or cfg.restarts == 1:
        return align(cfg, pair, show_progress)
    best, best_crit, kept, records = None, -float("inf"), 0, []
    for r in range(cfg.restarts):
        seed = cfg.seed + r
        t0 = time.perf_counter()
        run = align(dataclasses.replace(cfg, seed=seed, restarts=1), pair, show_progress)
        crit = mean_csls_cosine(run.map(pair.src.vectors), run.map_tgt(pair.tgt.vectors))
        records.append({"step": "restart", "seed": seed, "restart_criterion": crit,
                        "seconds": round(time.perf_counter() - t0, 1)})
        log.info("restart %d/%d (seed %d): criterion %.4f", r + 1, cfg.restarts, seed, crit)
        if crit > best_crit:  # the first of equals is kept
            best, best_crit, kept = run, crit, r
    for r, rec in enumerate(records):
        rec["kept"] = r == kept
    best.history = best.history + records
    return best
