"""``dldiy-catalyzer table``: the paper's comparison tables (section 5, tables 1-2) over seeds.

Rows, each ``{row: {seed: {"recall1", "recall10", "recall100"}}}``, then mean ± std over seeds:

- ``lattice{16,32,64}``: catalyzer + Zn sphere code; (d_out, lambda, r2) chosen per bit budget
  on a validation split carved from the training set (:func:`choose_settings`), never on the
  queries; each network keeps its epoch of best validation recall@10 at 64 bits;
- ``catalyzer-opq{16,32,64}``: faiss OPQ on the float output of that budget's catalyzer;
- ``binary{16,32,64,128}``: a catalyzer with a ``bits``-d output coded by its signs (lambda
  from the config, not tuned; best epoch by validation Hamming recall@10);
- baselines on the raw vectors: ``pq``, ``opq``, ``rr-pq`` (a random rotation of the inputs
  zero-padded to a multiple of 16 dims, then PQ: every sub-quantizer sees some of GloVe-50's
  energy) at 16/32/64 bits and ``lsh`` (random rotation, trained thresholds) at 16-128 bits.

Every method trains on the same vectors (the training split less validation) and is scored on
the same database and test queries. A seed sets the catalyzer's training seed, the order of the
vectors faiss's k-means draws from, and the random rotations (LSH, rr-pq); at the config's own
``train.seed`` the lattice rows reuse the tuning network (the same training). The results file
is rewritten after every (job, seed), so an interrupted run keeps what it finished and
``--resume`` continues it (a half-trained network resumes from its checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from dldiy_core import (
    UserError,
    add_run_marker,
    atomic_write_text,
    read_results,
    to_dict,
    write_results,
)

from .binary import hamming_search, sign_codes
from .config import CatalyzerConfig
from .data import Splits
from .evaluate import lattice_ids, pad_dims, recall_at
from .lattice import BUDGETS, code_bits, lattice_radius, sphere_counts
from .models import Catalyzer, embed
from .tune import Validation, candidate_config, carve_validation, radii_within_budget

log = logging.getLogger(__name__)
MARKER = "table-settings.json"
"""Written first into a ``table`` folder: its settings (checked on ``--resume``)."""
add_run_marker(MARKER)
BINARY_BITS = (16, 32, 64, 128)
RANKS = (1, 10, 100)


def recall_figures(ids: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """``ids: [nq, >= 100]`` -> ``{"recall1", "recall10", "recall100"}`` of the true nearest."""
    return {f"recall{r}": v for r, v in recall_at(ids, gt, RANKS).items()}


def binary_recall10(net: Catalyzer, valid: Validation) -> float:
    """Validation recall@10 of sign codes searched by Hamming distance."""
    cb, cq = (sign_codes(embed(net, x).numpy()) for x in (valid.xb, valid.xq))
    return recall_at(hamming_search(cb, cq, 10), valid.gt[:, None], (10,))[10]


def train_net(cfg: CatalyzerConfig, run: Path, splits: Splits,
              valid: Callable[[Catalyzer], float]) -> Catalyzer:
    """Train into ``run`` (resumed when it holds a checkpoint) with validation recall@10 as
    the monitor; returns the network of the best validation epoch."""
    from .train import build_trainer

    cfg = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, monitor="valid_recall10", monitor_mode="max"))
    trainer, source = build_trainer(cfg, run, splits)
    resume = (run / "checkpoint.safetensors").is_file()
    # the folder is this table's own (its top folder is checked by the caller): a run that
    # stopped before its first checkpoint is started over
    trainer.fit(source, valid=lambda t: {"recall10": valid(t.model)}, resume=resume,
                force=not resume)
    trainer.load_best()
    return trainer.model.eval()


def choose_settings(candidates: list[dict], nets: dict[tuple[int, float], Catalyzer],
                    valid: Validation) -> dict[str, dict]:
    """Per budget, the (d_out, lambda, r2) of best validation recall@10 among the trained
    candidates and the radii whose codes fit the budget (ties: the larger radius, then the
    first candidate). ``candidates``: ``{"d_out", "lambda"}`` rows, updated with their
    validation figures."""
    chosen = {}
    for bits in BUDGETS:
        best = None
        for c in candidates:
            net = nets[(c["d_out"], c["lambda"])]
            for r2 in radii_within_budget(c["d_out"], bits)[:3]:
                v = valid.recall10(net, r2)
                c.setdefault("valid_recall10", {})[f"{bits}:r2={r2}"] = v
                if best is None or (v, r2) > (best["valid_recall10"], best["r2"]):
                    best = {"d_out": c["d_out"], "lambda": c["lambda"], "r2": r2,
                            "bits": code_bits(sphere_counts(c["d_out"])[r2]),
                            "valid_recall10": v}
        chosen[str(bits)] = best
    return chosen


def faiss_ids(index: faiss.Index, xt: np.ndarray, xb: np.ndarray, xq: np.ndarray,
              k: int = 100) -> np.ndarray:
    index.train(np.ascontiguousarray(xt, dtype=np.float32))
    index.add(np.ascontiguousarray(xb, dtype=np.float32))
    return index.search(np.ascontiguousarray(xq, dtype=np.float32), min(k, len(xb)))[1]


def pq_index(d: int, m: int, seed: int, opq: bool = False) -> faiss.Index:
    """PQ (or OPQ + PQ) with ``m`` 8-bit sub-quantizers; k-means seeded by ``seed``."""
    pq = faiss.IndexPQ(d, m, 8)
    pq.pq.cp.seed = seed
    if not opq:
        return pq
    rot = faiss.OPQMatrix(d, m)
    return faiss.IndexPreTransform(rot, pq)  # faiss's wrapper keeps rot and pq alive


def rr_pq_index(d: int, m: int, seed: int) -> faiss.Index:
    """A random rotation of ``d`` dims (seeded) then PQ with ``m`` 8-bit sub-quantizers."""
    rot = faiss.RandomRotationMatrix(d, d)
    rot.init(seed)
    pq = pq_index(d, m, seed)
    return faiss.IndexPreTransform(rot, pq)


def baseline_rows(train_xt: np.ndarray, splits: Splits, seed: int) -> dict[str, dict]:
    """PQ, OPQ, rr-pq at 16/32/64 bits and LSH at 16-128 bits for one seed."""
    order = np.random.default_rng([seed, 7]).permutation(len(train_xt))
    xt = np.asarray(train_xt, dtype=np.float32)[order]
    out = {}
    for bits in BUDGETS:
        m = bits // 8
        pad = [pad_dims(x, m) for x in (xt, splits.xb, splits.xq)]
        out[f"pq{bits}"] = recall_figures(faiss_ids(pq_index(pad[0].shape[1], m, seed), *pad),
                                          splits.gt)
        out[f"opq{bits}"] = recall_figures(
            faiss_ids(pq_index(pad[0].shape[1], m, seed, opq=True), *pad), splits.gt)
        pad16 = [pad_dims(x, 16) for x in (xt, splits.xb, splits.xq)]
        out[f"rr-pq{bits}"] = recall_figures(
            faiss_ids(rr_pq_index(pad16[0].shape[1], m, seed), *pad16), splits.gt)
        log.info("seed %d: baselines at %d bits done", seed, bits)
    for bits in BINARY_BITS:
        lsh = faiss.IndexLSH(splits.d, bits, True, True)
        lsh.rrot.init(seed)
        out[f"lsh{bits}"] = recall_figures(faiss_ids(lsh, xt, splits.xb, splits.xq),
                                           splits.gt)
    return out


def lattice_rows(net: Catalyzer, budgets: list[int], chosen: dict, train_xt: np.ndarray,
                 splits: Splits, seed: int) -> dict[str, dict]:
    """``lattice{b}`` and ``catalyzer-opq{b}`` for the budgets this network was chosen for."""
    yb, yq = embed(net, splits.xb).numpy(), embed(net, splits.xq).numpy()
    yt = embed(net, np.asarray(train_xt, dtype=np.float32)).numpy()
    yt = yt[np.random.default_rng([seed, 7]).permutation(len(yt))]
    out = {}
    for bits in budgets:
        out[f"lattice{bits}"] = recall_figures(
            lattice_ids(yb, yq, chosen[str(bits)]["r2"], 100), splits.gt)
        m = bits // 8
        pad = [pad_dims(y, m) for y in (yt, yb, yq)]
        out[f"catalyzer-opq{bits}"] = recall_figures(
            faiss_ids(pq_index(pad[0].shape[1], m, seed, opq=True), *pad), splits.gt)
    return out


def summarize(runs: dict[str, dict], seeds: list[int]) -> dict[str, dict]:
    """Per row: seeds done, mean and sample std (ddof 1; 0 with one seed) of each recall, and
    ``recall10_text`` ("0.741 ± 0.004", or "0.741 (1 seed)")."""
    rows = {}
    for name, per_seed in runs.items():
        done = [per_seed[str(s)] for s in seeds if str(s) in per_seed]
        if not done:
            continue
        row = {"n_seeds": len(done), "complete": len(done) == len(seeds)}
        for r in RANKS:
            v = np.array([d[f"recall{r}"] for d in done])
            row[f"recall{r}_mean"] = float(v.mean())
            row[f"recall{r}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        m, s = row["recall10_mean"], row["recall10_std"]
        row["recall10_text"] = (f"{m:.3f} ± {s:.3f}" if len(done) > 1 else
                                f"{m:.3f} (1 seed)")
        rows[name] = row
    return rows


class Table:
    """The results file of one ``table`` run: settings, tuning, per-seed rows, summary;
    rewritten (atomically) after every finished job."""

    def __init__(self, path: Path | None, settings: dict, resume: bool):
        self.path, self.settings = path, settings
        self.tuning: dict = {}
        self.runs: dict[str, dict] = {}
        if resume and path is not None and path.exists():
            figures = read_results(path)["figures"]
            if figures.get("settings") != settings:
                raise UserError(f"{path}: holds a table of other settings; resume with the "
                                "same settings, or choose another --json")
            self.tuning, self.runs = figures.get("tuning", {}), figures.get("runs", {})

    def done(self, rows: list[str], seed: int) -> bool:
        return all(str(seed) in self.runs.get(r, {}) for r in rows)

    def add(self, figures: dict[str, dict], seed: int) -> None:
        for row, f in figures.items():
            self.runs.setdefault(row, {})[str(seed)] = f
        self.write()

    def figures(self) -> dict:
        seeds = self.settings["seeds"]
        rows = summarize(self.runs, seeds)
        out = {"settings": self.settings, "tuning": self.tuning, "runs": self.runs,
               "rows": rows, "complete_rows": sorted(r for r in rows if rows[r]["complete"])}
        if "lattice64" in rows and "opq64" in rows:
            lat, opq = rows["lattice64"], rows["opq64"]
            out["lattice64_minus_std_over_opq64_mean"] = (
                lat["recall10_mean"] - lat["recall10_std"] - opq["recall10_mean"])
        return out

    def write(self) -> None:
        if self.path is not None:
            write_results(self.path, self.figures())


def run_table(cfg: CatalyzerConfig, out: Path, splits: Splits, table: Table,
              d_outs: list[int], lambdas: list[float], seeds: list[int], valid_queries: int,
              valid_base: int, binary: bool = True, baselines: bool = True) -> dict:
    """Tune (once), then every seed's lattice networks and baselines, then every seed's binary
    networks; each finished job is written to ``table`` at once. Returns the figures."""
    train_splits, valid = carve_validation(splits, valid_queries, valid_base)
    xt = train_splits.xt
    candidates = [{"d_out": d, "lambda": lam} for d in d_outs for lam in lambdas]
    # tuning: one network per candidate (the config's seed), then the choice per budget
    if "chosen" not in table.tuning:
        nets = {}
        for c in candidates:
            r2 = lattice_radius(c["d_out"], 64)[0]
            run = out / "tune" / f"d{c['d_out']}-lambda{c['lambda']:g}"
            nets[(c["d_out"], c["lambda"])] = train_net(
                candidate_config(cfg, c["d_out"], c["lambda"]), run, train_splits,
                lambda net, r2=r2: valid.recall10(net, r2))
        chosen = choose_settings(candidates, nets, valid)
        table.tuning = {"candidates": candidates, "chosen": chosen,
                        "n_train_used": len(xt), "n_valid_queries": valid_queries,
                        "n_valid_base": valid_base, "seed": cfg.train.seed}
        table.write()
        log.info("chosen per budget: %s", json.dumps(chosen))
    chosen = table.tuning["chosen"]
    settings: dict[tuple[int, float], list[int]] = {}
    for bits in BUDGETS:
        c = chosen[str(bits)]
        settings.setdefault((c["d_out"], c["lambda"]), []).append(bits)
    for seed in seeds:
        for (d_out, lam), budgets in settings.items():
            rows = [f"{k}{b}" for b in budgets for k in ("lattice", "catalyzer-opq")]
            if table.done(rows, seed):
                continue
            c = candidate_config(cfg, d_out, lam)
            c = dataclasses.replace(c, train=dataclasses.replace(c.train, seed=seed))
            r2 = lattice_radius(d_out, 64)[0]
            # the tuning seed: the candidate's own network is this seed's (same training)
            run = (out / "tune" / f"d{d_out}-lambda{lam:g}" if seed == cfg.train.seed else
                   out / f"seed{seed}" / f"lattice-d{d_out}-lambda{lam:g}")
            net = train_net(c, run, train_splits, lambda n, r2=r2: valid.recall10(n, r2))
            table.add(lattice_rows(net, budgets, chosen, xt, splits, seed), seed)
            log.info("seed %d: lattice d_out=%d lambda=%g done", seed, d_out, lam)
        names = [f"{k}{b}" for b in BUDGETS for k in ("pq", "opq", "rr-pq")]
        if baselines and not table.done(names + [f"lsh{b}" for b in BINARY_BITS], seed):
            table.add(baseline_rows(xt, splits, seed), seed)
    if binary:
        from .train import binary_config
        for seed in seeds:
            for bits in BINARY_BITS:
                if table.done([f"binary{bits}"], seed):
                    continue
                c = binary_config(cfg, bits)
                c = dataclasses.replace(c, train=dataclasses.replace(c.train, seed=seed))
                net = train_net(c, out / f"seed{seed}" / f"binary{bits}", train_splits,
                                lambda n: binary_recall10(n, valid))
                cb, cq = (sign_codes(embed(net, x).numpy()) for x in (splits.xb, splits.xq))
                table.add({f"binary{bits}": recall_figures(
                    hamming_search(cb, cq, min(100, len(cb))), splits.gt)}, seed)
                log.info("seed %d: binary %d bits done", seed, bits)
    return table.figures()


def table_settings(cfg: CatalyzerConfig, d_outs: list[int], lambdas: list[float],
                   seeds: list[int], valid_queries: int, valid_base: int, binary: bool,
                   baselines: bool = True) -> dict:
    """What a resumed table must share with the run it continues."""
    return json.loads(json.dumps({
        "config": to_dict(cfg), "d_outs": d_outs, "lambdas": lambdas, "seeds": seeds,
        "valid_queries": valid_queries, "valid_base": valid_base, "binary": binary,
        # only when off: tables written before the flag existed resume unchanged
        **({} if baselines else {"baselines": False})}))


def write_marker(out: Path, settings: dict, resume: bool) -> None:
    """Record the settings in the table folder; a resumed folder must hold the same."""
    marker = out / MARKER
    if resume and marker.exists():
        if json.loads(marker.read_text()) != settings:
            raise UserError(f"{marker}: this folder holds a table of other settings; resume "
                            "with the same settings, or choose another --out")
        return
    atomic_write_text(marker, json.dumps(settings, indent=2) + "\n")


