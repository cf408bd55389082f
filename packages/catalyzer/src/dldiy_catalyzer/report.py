"""``dldiy-catalyzer demo``: train, compare with the usual quantizers, write a report."""

from __future__ import annotations

import time
from pathlib import Path

import faiss
import numpy as np

from dldiy_core import Report, new_figure

from .config import CatalyzerConfig
from .data import load_data
from .evaluate import RANKS, baseline_recalls, catalyzer_recalls, nn_distances, unit
from .models import embed
from .train import binary_config, train

METHODS = [("catalyzer + lattice", "lattice"), ("catalyzer + binary", "binary"),
           ("PQ", "pq"), ("OPQ", "opq"), ("LSH", "lsh"), ("ITQ", "itq"),
           ("lattice on PCA", "pca-lattice"), ("lattice on random rotation", "rotation-lattice")]


def demo(cfg: CatalyzerConfig, out: Path) -> Path:
    t0 = time.perf_counter()
    d = cfg.data
    splits = load_data(d)
    lattice = train(cfg, None, splits=splits)
    rec = catalyzer_recalls(lattice.model, splits, "lattice")
    binary_net = train(binary_config(cfg), None, splits=splits).model
    rec.update(catalyzer_recalls(binary_net, splits, "binary"))
    rec.update(baseline_recalls(splits))

    r = Report(out, f"Neural catalyzer + lattice on {Path(splits.name).name}")
    for name, key in (("catalyzer+lattice 64 bits", "lattice64"), ("OPQ 64 bits", "opq64"),
                      ("catalyzer+binary 64 bits", "binary64"), ("LSH 64 bits", "lsh64")):
        r.headline(f"recall@10, {name}", rec[key][10])
    r.text(f"{len(splits.xb):,} database vectors, {len(splits.xt):,} training vectors, "
           f"{len(splits.xq):,} queries, d={splits.d}; catalyzer trained {cfg.train.epochs} "
           f"epochs (batch {cfg.train.batch_size}, lambda {cfg.loss.lambda_koleo}). "
           "Recall@R: the true nearest neighbour is among the first R results.")
    rows = []
    for label, key in METHODS:
        for bits in (16, 32, 64):
            if f"{key}{bits}" in rec:
                v = rec[f"{key}{bits}"]
                rows.append([label, bits, v[1], v[10], v[100]])
    for d_out in (24, 64):
        rows.append([f"catalyzer {d_out}-d output, not quantized", "float", *(
            rec[f"catalyzer{d_out} (float)"][k] for k in (1, 10, 100))])
    r.table(["method", "bits", "recall@1", "recall@10", "recall@100"], rows,
            caption="all methods on the same database, training set and queries")
    r.line_plot("recall_at_k", {label: (RANKS, [rec[f"{key}64"][k] for k in RANKS])
                                for label, key in METHODS if f"{key}64" in rec},
                xlabel="R", ylabel="recall@R", logx=True, caption="recall@R at 64 bits")

    fig, ax = new_figure()
    sample = np.ascontiguousarray(splits.xb[:5000], dtype=np.float32)
    if splits.d >= cfg.model.d_out:  # compare on spheres of the same dimension
        pca = faiss.PCAMatrix(splits.d, cfg.model.d_out)
        pca.train(np.ascontiguousarray(splits.xt, dtype=np.float32))
        before, label = unit(pca.apply(sample)), f"PCA to {cfg.model.d_out}-d, normalised"
    else:
        before, label = unit(sample), f"input ({splits.d}-d), normalised"
    after = nn_distances(embed(lattice.model, sample).numpy())
    ax.hist(nn_distances(before), bins=60, alpha=0.6, label=label, density=True)
    ax.hist(after, bins=60, alpha=0.6, label="catalyzer output", density=True)
    ax.set(xlabel="distance to the nearest other point", ylabel="density",
           title="spreading: nearest-neighbour distances before and after")
    ax.legend()
    r.figure("spreading", fig, f"nearest-neighbour distances of 5,000 database points on the "
             f"{cfg.model.d_out}-d sphere: the catalyzer spreads them (fewer tiny distances)")
    train_log = [h for h in lattice.history if h["kind"] == "train"]
    steps = [h["step"] for h in train_log]
    for key, what in (("triplet", "triplet rank loss"), ("koleo", "KoLeo entropy term"),
                      ("offending", "fraction of triplets with a positive loss")):
        r.line_plot(f"training_{key}", {key: (steps, [h[key] for h in train_log])},
                    xlabel="step", caption=f"{what} while training (lattice catalyzer)")
    r.text(f"Total demo time: {time.perf_counter() - t0:.0f} s.")
    return r.write()

