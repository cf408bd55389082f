"""``dldiy-muse study``: how often does unsupervised alignment succeed? (paper, section 4)

Runs the unsupervised pipeline (initialisation, then refinement) once per seed on one pair
and reports, per seed, P@1 by NN and CSLS after the initialisation and after refinement, and
the unsupervised criterion of the map kept; beside them, supervised Procrustes on the same
split. A seed succeeds when its P@1 (CSLS) reaches ``SUCCESS_RATIO`` of the supervised one,
the paper's claim being that unsupervised alignment matches or beats supervision. The seed
with the best criterion is also named: restarts selected without any dictionary.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from dldiy_core import UserError, to_dict, write_results

from .align import fit_seed
from .config import MuseConfig
from .dictionary import mean_csls_cosine
from .pipeline import (
    Pair,
    evaluate,
    initialize,
    load_pair,
    pair_isomorphism,
    pair_name,
    refine_from,
    seed_ids,
)

log = logging.getLogger(__name__)
SUCCESS_RATIO = 0.9


def _scores(s: dict) -> dict:
    return {k: s[k] for k in ("nn_p@1", "csls_p@1", "csls_p@10")}


def supervised_baseline(cfg: MuseConfig, pair: Pair) -> dict:
    """Procrustes on the training dictionary, no refinement: P@k and its criterion."""
    t0 = time.perf_counter()
    sup = fit_seed(pair.src.vectors, pair.tgt.vectors,
                   seed_ids(dataclasses.replace(cfg, mode="supervised"), pair))
    seconds = time.perf_counter() - t0
    scores = evaluate(sup, pair)
    return {**_scores(scores), "queries": scores["queries"], "coverage": scores["coverage"],
            "train_pairs": sup.history[0]["pairs"], "criterion": sup.history[0]["criterion"],
            "seconds": round(seconds, 1)}


def seeded_baseline(cfg: MuseConfig, pair: Pair, mode: str) -> dict | None:
    """Procrustes on a seed dictionary (``supervised`` or ``identical`` strings), then
    ``cfg.refine``'s refinements: P@k, criterion, seed size and time; None where the seed is
    refused (identical strings on a pair whose gold dictionary they are)."""
    run_cfg = dataclasses.replace(cfg, mode=mode)
    t0 = time.perf_counter()
    try:
        seed = fit_seed(pair.src.vectors, pair.tgt.vectors, seed_ids(run_cfg, pair))
    except UserError as e:
        log.info("no %s baseline: %s", mode, e)
        return None
    final = refine_from(run_cfg, pair, seed, show_progress=False)
    seconds = time.perf_counter() - t0
    return {**_scores(evaluate(final, pair)), "seed_pairs": seed.history[0]["pairs"],
            "criterion": mean_csls_cosine(final.map(pair.src.vectors),
                                          final.map_tgt(pair.tgt.vectors)),
            "seconds": round(seconds, 1)}


def run_seed(cfg: MuseConfig, pair: Pair, seed: int, show_progress: bool = False) -> dict:
    """One unsupervised run: its scores after the initialisation and after refinement."""
    run_cfg = dataclasses.replace(cfg, mode="unsupervised", seed=seed)
    t0 = time.perf_counter()
    init = initialize(run_cfg, pair, show_progress)
    t1 = time.perf_counter()
    final = refine_from(cfg, pair, init, show_progress)
    t2 = time.perf_counter()
    init_scores, final_scores = evaluate(init, pair), evaluate(final, pair)
    return {"seed": seed, **_scores(final_scores),
            "criterion": mean_csls_cosine(final.map(pair.src.vectors),
                                          final.map_tgt(pair.tgt.vectors)),
            "init": {**_scores(init_scores),
                     "criterion": mean_csls_cosine(init.map(pair.src.vectors),
                                                   pair.tgt.vectors)},
            "init_seconds": round(t1 - t0, 1), "refine_seconds": round(t2 - t1, 1),
            "seconds": round(t2 - t0, 1)}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def check_resumable(previous: dict, cfg: MuseConfig, source: str = "--resume") -> None:
    """An earlier study continues only with the same pair, initialisation and settings (a
    setting the file does not name is one added since, at its default)."""
    if previous.get("pair") != pair_name(cfg) or previous.get("init") != cfg.init:
        raise UserError(f"{source}: the file is a study of {previous.get('pair')} "
                        f"({previous.get('init')}), not {pair_name(cfg)} ({cfg.init})")
    old, new = _flat(previous.get("config", {})), _flat(to_dict(cfg))
    differ = sorted(k for k in old if k in new and old[k] != new[k] and k != "seed")
    if differ:
        raise UserError(f"{source}: the file was run with other settings ("
                        + ", ".join(f"{k}={old[k]!r}, now {new[k]!r}" for k in differ) + ")")


def study(cfg: MuseConfig, seeds: int, json_path: str | Path | None = None,
          show_progress: bool = True, pair: Pair | None = None,
          previous: dict | None = None) -> dict:
    """``seeds`` unsupervised runs (seeds 0..N-1) and the supervised baseline; the summary is
    rewritten to ``json_path`` after every seed, so a long study can be stopped and read.
    ``pair`` defaults to the configured one (``load_pair``). ``previous``: the figures of an
    earlier study of the same settings (:func:`check_resumable`), whose baselines and seeds
    are kept; only the missing seeds run (``--resume``)."""
    if seeds < 1:
        raise UserError(f"--seeds {seeds}: at least one seed is needed")
    pair = pair or load_pair(cfg)
    t0 = time.perf_counter()
    if previous is not None:
        check_resumable(previous, cfg)
        out = {**previous, "runs": list(previous.get("runs", []))}
        t0 -= previous.get("seconds", 0.0)
    else:
        out = {"pair": pair_name(cfg), "init": cfg.init, "config": to_dict(cfg),
               "supervised": supervised_baseline(cfg, pair),
               "supervised_refined": seeded_baseline(cfg, pair, "supervised"),
               "identical": seeded_baseline(cfg, pair, "identical"),
               "isomorphism": pair_isomorphism(pair), "runs": []}
    target = SUCCESS_RATIO * out["supervised"]["csls_p@1"]
    out["success_threshold_csls_p@1"] = target
    log.info("supervised Procrustes: P@1 CSLS %.3f; success threshold %.3f",
             out["supervised"]["csls_p@1"], target)
    done = {r["seed"] for r in out["runs"]}
    for seed in range(seeds):
        if seed in done:
            log.info("seed %d: kept from the resumed file", seed)
            continue
        run = run_seed(cfg, pair, seed, show_progress)
        run["success"] = run["csls_p@1"] >= target and run["csls_p@1"] > 0
        run["ratio_to_supervised"] = (run["csls_p@1"] / out["supervised"]["csls_p@1"]
                                      if out["supervised"]["csls_p@1"] else 0.0)
        out["runs"].append(run)
        out["successes"] = sum(r["success"] for r in out["runs"])
        out["success_rate"] = out["successes"] / len(out["runs"])
        # Restarts as the paper's criterion would pick among them (no dictionary involved).
        chosen = max(out["runs"], key=lambda r: r["criterion"])
        out["selected_by_criterion"] = chosen["seed"]
        out["selected_csls_p@1"] = chosen["csls_p@1"]
        out["mean_seconds_per_seed"] = round(sum(r["seconds"] for r in out["runs"])
                                             / len(out["runs"]), 1)
        out["seconds"] = round(time.perf_counter() - t0, 1)
        log.info("seed %d: P@1 NN %.3f CSLS %.3f, criterion %.4f (init P@1 CSLS %.3f) in %.0f s",
                 seed, run["nn_p@1"], run["csls_p@1"], run["criterion"],
                 run["init"]["csls_p@1"], run["init_seconds"] + run["refine_seconds"])
        if json_path:
            write_results(json_path, out)
    return out
