"""Memory-fair speed: recall@10 against queries/s at equal bytes held per vector.

The catalyzer index holds 24 B/vector (int8 lattice points of a 64-bit code, d_out = 24) and
searches exhaustively, or 12 B/vector under its fast scan (one point per shortlist length, fp32
and bf16 queries); faiss indexes are set against it at 8 B (their 64-bit codes: PQ8, OPQ8,
PQ fast-scan 16x4) and at 24 B (PQ24, fast-scan 48x4, and IVF with 16 B codes + the 8 B id each
inverted list stores, swept over nprobe). Every point is measured in the same run, on
the same database and queries, with the same number of threads, by one timing function
(:func:`qps`: a warm-up search, then repeats), which also times ``bench``'s own figures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from dldiy_core import atomic_path, new_figure

from .data import Splits
from .evaluate import pad_dims, recall_at

log = logging.getLogger(__name__)

FLAT = [("PQ8np", 8, 8), ("OPQ8,PQ8np", 8, 8), ("PQ16x4fs", 8, 16),
        ("PQ24np", 24, 24), ("PQ48x4fs", 24, 48)]
"""(faiss factory, bytes per vector, padding multiple of the input dimension). ``np``: no
polysemous training, which only permutes the centroids (the same ADC results) and costs
minutes. OPQ at 24 B is left out: its training alone takes over 3 minutes on 2 busy cores, and
PQ24 without a rotation shows where it starts (OPQ is usually at least as good)."""
IVF = [("IVF{nlist},PQ16np", 24, 16), ("IVF{nlist},PQ32x4fs", 24, 32)]
"""IVF: 16 B codes + an 8 B id per vector in the inverted lists."""
NPROBES = (1, 4, 16, 64)
MIN_SECONDS = 1.0
"""Each speed is measured over at least this long (repeating the query set)."""


def qps(search: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], queries: np.ndarray,
        min_seconds: float | None = None) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """``(queries per second, result)`` of ``search(queries) -> (distances, ids)``: one
    warm-up call (its result is returned), then repeated for at least ``min_seconds``
    (default :data:`MIN_SECONDS`). The one timing of every index of ``bench``."""
    min_seconds = MIN_SECONDS if min_seconds is None else min_seconds
    result = search(queries)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds or n == 0:
        search(queries)
        n += len(queries)
    return n / (time.perf_counter() - t0), result


def measure(search: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], xq: np.ndarray,
            gt: np.ndarray, nprobe: int = 0) -> dict:
    """One point of a curve: ``{"nprobe", "recall10", "qps"}`` (the recall of the warm-up
    search, which is the one timed)."""
    rate, (_, ids) = qps(search, xq)
    return {"nprobe": nprobe, "recall10": recall_at(ids, gt, (10,))[10], "qps": rate}


def faiss_index(factory: str, splits: Splits, pad: int, n_train: int = 50_000
                ) -> faiss.Index:
    """A faiss index from ``factory``, trained on (at most ``n_train``) training vectors and
    holding the database, both zero-padded to a multiple of ``pad`` dimensions."""
    fi = faiss.index_factory(pad_dims(splits.xq[:1], pad).shape[1], factory)
    fi.train(pad_dims(splits.xt[:n_train], pad))
    fi.add(pad_dims(splits.xb, pad))
    return fi


def memory_fair_curves(splits: Splits, measured: dict[str, dict], k: int = 10,
                       n_train: int = 50_000) -> dict[str, dict]:
    """``{method: {"bytes_per_vector": b, "points": [{"nprobe", "qps", "recall10"}, ...]}}``:
    the methods already ``measured`` (the catalyzer index and the faiss indexes ``bench``
    times anyway), then every other index of :data:`FLAT` and :data:`IVF`."""
    xq = np.ascontiguousarray(splits.xq, dtype=np.float32)
    out = dict(measured)
    nlist = max(16, int(4 * np.sqrt(len(splits.xb))) // 16 * 16)
    for factory, nbytes, pad in [*FLAT, *((f.format(nlist=nlist), b, p) for f, b, p in IVF)]:
        if factory in out:
            continue
        t0 = time.perf_counter()
        fi = faiss_index(factory, splits, pad, n_train)
        q = pad_dims(xq, pad)
        search = lambda x, fi=fi: fi.search(x, k)  # noqa: E731
        if factory.startswith("IVF"):
            ivf = faiss.extract_index_ivf(fi)
            points = []
            for nprobe in NPROBES:
                ivf.nprobe = nprobe
                points.append(measure(search, q, splits.gt, nprobe))
        else:
            points = [measure(search, q, splits.gt)]
        out[factory] = {"bytes_per_vector": nbytes, "points": points}
        log.info("%s: %s (%.1f s)", factory, points, time.perf_counter() - t0)
    return out


def plot_curves(curves: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """recall@10 (y) against queries/s (x, log) for every method, marker by bytes/vector."""
    from matplotlib.ticker import NullFormatter

    fig, ax = new_figure(7.0, 4.5)
    for name, c in curves.items():
        pts = c["points"]
        style = "-o" if c["bytes_per_vector"] >= 24 else "--s"
        ax.plot([p["qps"] for p in pts], [p["recall10"] for p in pts], style,
                label=f"{name} ({c['bytes_per_vector']:.0f} B)",
                linewidth=2.5 if name.startswith("catalyzer") else 1.2)
    ax.set(xscale="log", xlabel="queries / s (log)", ylabel="recall@10",
           title=title or "memory-fair speed: recall@10 vs queries/s")
    ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels overlap
    ax.legend(fontsize=7)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    return Path(path)
