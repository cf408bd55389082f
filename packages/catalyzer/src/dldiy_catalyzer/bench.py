"""``dldiy-catalyzer bench``: recall and search speed against faiss, one run, same data.

Trains the lattice catalyzer (24-d) and the 64-bit binary catalyzer on the configured split,
then measures recall@10 at 64 bits for them and for faiss PQ, OPQ, LSH, and queries per second
of :class:`CatalyzerIndex` (int8 lattice points, 24 B/vector, exhaustive search) against faiss
``IndexLattice`` (decodes every code for every query), ``IndexPQ`` and PQ fast-scan (16x4) on
the same database; ``--curves``: recall@10 against queries/s at equal bytes per vector
(:mod:`.curves`).
"""

from __future__ import annotations

import time

import faiss
import numpy as np

from .config import CatalyzerConfig
from .curves import memory_fair_curves
from .data import Splits, build_splits
from .evaluate import _pad, baseline_recalls, catalyzer_recalls, lattice_codes, recall_at
from .index import CatalyzerIndex
from .models import embed
from .train import binary_config, train


def qps(search, queries: np.ndarray, min_seconds: float = 1.0) -> float:
    """Queries per second of ``search(queries)``, repeated for at least ``min_seconds``."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds or n == 0:
        search(queries)
        n += len(queries)
    return n / (time.perf_counter() - t0)


def speed(net, splits: Splits, k: int = 10, curves: bool = False) -> dict:
    xq = np.ascontiguousarray(splits.xq, dtype=np.float32)
    index = CatalyzerIndex(net)  # the 64-bit sphere of d_out (r2 = 79 for 24)
    index.add(splits.xb)
    out = {"qps_catalyzer64": qps(lambda q: index.search(q, k), xq),
           "bytes_per_vector_catalyzer64": index.bytes_per_vector}
    if net.d_out == 24:
        # faiss IndexLattice cannot hold one 64-bit code for 24-d (code > 63 bits); its closest
        # 64-bit setting is 3 sub-vectors of 8 dims with 4 scale bits each (r2 = 14).
        lattice = faiss.IndexLattice(net.d_out, 3, 4, 14)
        yt, yb = embed(net, splits.xt).numpy(), embed(net, splits.xb).numpy()
        lattice.train(yt)
        lattice.add(yb)
        yq = embed(net, xq[:20]).numpy()
        out["qps_indexlattice64"] = qps(lambda q: lattice.search(q, k), yq, 2.0)
        out["code_bytes_indexlattice64"] = lattice.code_size
    m = 8
    pq = faiss.IndexPQ(_pad(xq, m).shape[1], m, 8)
    pq.train(_pad(splits.xt, m))
    pq.add(_pad(splits.xb, m))
    xqp = _pad(xq, m)
    out["qps_pq64"] = qps(lambda q: pq.search(q, k), xqp)
    m = 16  # PQ fast-scan: 16 sub-quantizers of 4 bits, 64-bit codes, SIMD table look-ups
    fs = faiss.index_factory(_pad(xq, m).shape[1], "PQ16x4fs")
    fs.train(_pad(splits.xt, m))
    fs.add(_pad(splits.xb, m))
    xqp = _pad(xq, m)
    out["qps_pq64_fastscan"] = qps(lambda q: fs.search(q, k), xqp)
    out["recall10_pq64_fastscan"] = recall_at(fs.search(xqp, k)[1], splits.gt, (10,))[10]
    if curves:
        out["curves"] = memory_fair_curves(index, splits, k)
    return out


def run_bench(cfg: CatalyzerConfig, curves: bool = False) -> dict:
    """The figures of one run (``curves``: also the memory-fair recall/speed curves)."""
    d = cfg.data
    splits = build_splits(d.source, d.n_base, d.n_train, d.n_query, d.seed)
    t0 = time.perf_counter()
    lattice_net = train(cfg, None, splits=splits).model.eval()
    train_s = time.perf_counter() - t0
    binary_net = train(binary_config(cfg), None, splits=splits).model.eval()
    rec = catalyzer_recalls(lattice_net, splits, "lattice")
    rec.update(catalyzer_recalls(binary_net, splits, "binary"))
    rec.update(baseline_recalls(splits, (64,)))
    result = {f"recall10_{name}": r[10] for name, r in rec.items() if "(" not in name}
    d_out = cfg.model.d_out
    result[f"recall10_catalyzer{d_out}_float"] = rec[f"catalyzer{d_out} (float)"][10]
    result["recall10_catalyzer64_float"] = rec["catalyzer64 (float)"][10]
    for name, code in lattice_codes(d_out).items():  # the sphere and bits behind each label
        result[f"r2_{name}"], result[f"bits_{name}"] = code["r2"], code["bits"]
    result.update(speed(lattice_net, splits, curves=curves))
    if "qps_indexlattice64" in result:
        result["speedup_vs_indexlattice"] = (result["qps_catalyzer64"]
                                             / result["qps_indexlattice64"])
    result["throughput_vs_pq64"] = result["qps_catalyzer64"] / result["qps_pq64"]
    result["throughput_vs_pq64_fastscan"] = (result["qps_catalyzer64"]
                                             / result["qps_pq64_fastscan"])
    result.update({"train_s": train_s, "source": d.source, "n_base": len(splits.xb),
                   "n_train": len(splits.xt), "n_query": len(splits.xq),
                   "epochs": cfg.train.epochs, "d_out": d_out,
                   "threads": faiss.omp_get_max_threads()})
    return result
