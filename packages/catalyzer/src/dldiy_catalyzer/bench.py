"""``dldiy-catalyzer bench``: recall and search speed against faiss, one run, same data.

Trains the lattice catalyzer (24-d) and the 64-bit binary catalyzer on the configured split,
then measures recall@10 at 64 bits for them and for faiss PQ, OPQ, LSH, and queries per second
of :class:`CatalyzerIndex` (int8 lattice points, 24 B/vector, exhaustive search; and its fast
scan, 4-bit codes of the points, 12 B/vector, queries embedded in bf16) against faiss
``IndexLattice`` (decodes every code for every query), ``IndexPQ`` and PQ fast-scan (16x4) on
the same database; ``--curves``: recall@10 against queries/s at equal bytes per vector
(:mod:`.curves`).
"""

from __future__ import annotations

import time

import faiss
import numpy as np

from .config import CatalyzerConfig
from .curves import faiss_index, measure, memory_fair_curves, qps
from .data import Splits, load_data
from .evaluate import baseline_recalls, catalyzer_recalls, lattice_codes, pad_dims
from .index import CatalyzerIndex
from .models import embed
from .train import binary_config, train

FAST_SHORTLISTS = (1, 2, 4)
"""Shortlists of the fast scan measured (candidates per result, re-scored exactly)."""


def speed(net, splits: Splits, yb: np.ndarray, k: int = 10, curves: bool = False) -> dict:
    """Queries/s (and bytes per vector) of the catalyzer index and of faiss IndexLattice, PQ
    and PQ fast-scan on the same database, each timed once by :func:`.curves.qps`;
    ``yb: [nb, d_out]``: the database's catalyzer outputs (embedded once, by the caller).
    ``curves``: also the memory-fair curves, which reuse these measurements."""
    xq = np.ascontiguousarray(splits.xq, dtype=np.float32)
    index = CatalyzerIndex(net)  # the 64-bit sphere of d_out (r2 = 79 for 24)
    index.add_outputs(yb)
    cat = measure(lambda q: index.search(q, k), xq, splits.gt)
    measured = {f"catalyzer-lattice-r2={index.codec.r2}": {
        "bytes_per_vector": index.bytes_per_vector, "points": [cat]}}
    out = {"qps_catalyzer64": cat["qps"], "bytes_per_vector_catalyzer64": index.bytes_per_vector}
    fast = CatalyzerIndex(net, fast_scan=True)
    fast.add_outputs(yb)
    fast_name = f"catalyzer-fastscan-r2={index.codec.r2}"
    for bf16 in (False, True):
        fast.bf16, points = bf16, []
        for fast.shortlist in FAST_SHORTLISTS:
            points.append({**measure(lambda q: fast.search(q, k), xq, splits.gt),
                           "shortlist": fast.shortlist})
        measured[fast_name + ("-bf16" if bf16 else "")] = {
            "bytes_per_vector": fast.bytes_per_vector, "points": points}
    # the fast path: bf16 queries, the default shortlist (2 candidates a result)
    chosen = measured[fast_name + "-bf16"]["points"][FAST_SHORTLISTS.index(2)]
    out.update(qps_catalyzer64_fastscan=chosen["qps"],
               recall10_catalyzer64_fastscan=chosen["recall10"],
               bytes_per_vector_catalyzer64_fastscan=fast.bytes_per_vector)
    if net.d_out == 24:
        # faiss IndexLattice cannot hold one 64-bit code for 24-d (code > 63 bits); its closest
        # 64-bit setting is 3 sub-vectors of 8 dims with 4 scale bits each (r2 = 14).
        lattice = faiss.IndexLattice(net.d_out, 3, 4, 14)
        lattice.train(embed(net, splits.xt).numpy())
        lattice.add(np.ascontiguousarray(yb))
        yq = embed(net, xq[:20]).numpy()
        out["qps_indexlattice64"] = qps(lambda q: lattice.search(q, k), yq, 2.0)[0]
        out["code_bytes_indexlattice64"] = lattice.code_size
    for factory, nbytes, pad, key in (("PQ8np", 8, 8, "pq64"),
                                      # fast-scan: 16 sub-quantizers of 4 bits, SIMD look-ups
                                      ("PQ16x4fs", 8, 16, "pq64_fastscan")):
        fi = faiss_index(factory, splits, pad)
        measured[factory] = {"bytes_per_vector": nbytes, "points": [measure(
            lambda q, fi=fi: fi.search(q, k), pad_dims(xq, pad), splits.gt)]}
        out[f"qps_{key}"] = measured[factory]["points"][0]["qps"]
    out["recall10_pq64_fastscan"] = measured["PQ16x4fs"]["points"][0]["recall10"]
    if curves:
        out["curves"] = memory_fair_curves(splits, measured, k)
    return out


def run_bench(cfg: CatalyzerConfig, curves: bool = False) -> dict:
    """The figures of one run (``curves``: also the memory-fair recall/speed curves)."""
    d = cfg.data
    splits = load_data(d)
    t0 = time.perf_counter()
    lattice_net = train(cfg, None, splits=splits).model.eval()
    train_s = time.perf_counter() - t0
    binary_net = train(binary_config(cfg), None, splits=splits).model.eval()
    yb = embed(lattice_net, splits.xb).numpy()  # the database's outputs, embedded once
    rec = catalyzer_recalls(lattice_net, splits, "lattice", yb=yb)
    rec.update(catalyzer_recalls(binary_net, splits, "binary"))
    rec.update(baseline_recalls(splits, (64,)))
    result = {f"recall10_{name}": r[10] for name, r in rec.items() if "(" not in name}
    result.update({f"knn10_{name}": r["10@10"] for name, r in rec.items()  # ann-benchmarks
                   if "(" not in name and "10@10" in r})
    d_out = cfg.model.d_out
    result[f"recall10_catalyzer{d_out}_float"] = rec[f"catalyzer{d_out} (float)"][10]
    result["recall10_catalyzer64_float"] = rec["catalyzer64 (float)"][10]
    for name, code in lattice_codes(d_out).items():  # the sphere and bits behind each label
        result[f"r2_{name}"], result[f"bits_{name}"] = code["r2"], code["bits"]
    result.update(speed(lattice_net, splits, yb, curves=curves))
    if "qps_indexlattice64" in result:
        result["speedup_vs_indexlattice"] = (result["qps_catalyzer64"]
                                             / result["qps_indexlattice64"])
    result["throughput_vs_pq64"] = result["qps_catalyzer64"] / result["qps_pq64"]
    result["throughput_vs_pq64_fastscan"] = (result["qps_catalyzer64"]
                                             / result["qps_pq64_fastscan"])
    result["throughput_fastscan_vs_pq64_fastscan"] = (result["qps_catalyzer64_fastscan"]
                                                      / result["qps_pq64_fastscan"])
    result.update({"train_s": train_s, "source": splits.name, "n_base": len(splits.xb),
                   "n_train": len(splits.xt), "n_query": len(splits.xq),
                   "epochs": cfg.train.epochs, "d_out": d_out,
                   "threads": faiss.omp_get_max_threads()})
    return result
