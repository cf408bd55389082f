"""``dldiy-catalyzer tune``: lambda (KoLeo weight) and (d_out, r2) at a bit budget, chosen on a
validation split carved from the training set, never on the queries.

The last ``valid_queries + valid_base`` training vectors become validation queries and a
validation database (neither is trained on); each candidate ``(d_out, lambda)`` is a normal
run folder whose ``best.safetensors`` is the epoch of best validation recall@10 with the
largest radius fitting the budget. The radius is then chosen for the best checkpoint among
the radii that fit, on the same validation split. The test queries are searched once, after
the choice, for the chosen candidate only (reported, never used to choose).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from dldiy_core import UserError

from .config import CatalyzerConfig, check_training_size
from .data import Splits, exact_knn
from .evaluate import lattice_ids, recall_at
from .lattice import MAX_SHORTFALL, code_bits, lattice_problem, lattice_radius, sphere_counts
from .models import Catalyzer, embed

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Validation:
    """Validation queries ``xq`` and database ``xb`` carved from the training set, ``gt [nq]``
    the exact nearest database neighbour of each query."""

    xq: np.ndarray
    xb: np.ndarray
    gt: np.ndarray

    def recall10(self, net: Catalyzer, r2: int) -> float:
        """Recall@10 of the database coded on the Zn sphere ``r2`` (asymmetric search)."""
        yb, yq = embed(net, self.xb).numpy(), embed(net, self.xq).numpy()
        return recall_at(lattice_ids(yb, yq, r2, 10), self.gt[:, None], (10,))[10]


def carve_validation(splits: Splits, n_queries: int, n_base: int
                     ) -> tuple[Splits, Validation]:
    """The training split without its last ``n_queries + n_base`` vectors, and those vectors
    as validation queries + database (the splits' rows are already in random order)."""
    nt, held = len(splits.xt), n_queries + n_base
    check_validation(nt, n_queries, n_base)
    xt = splits.xt[:nt - held]
    xb = np.asarray(splits.xt[nt - held:nt - n_queries], dtype=np.float32)
    xq = np.asarray(splits.xt[nt - n_queries:], dtype=np.float32)
    gt = exact_knn(xq, xb, 1)[:, 0]
    folder = splits.folder / f"tune-train-{nt - held}"  # no meta.json: neighbours not cached
    return dataclasses.replace(splits, xt=xt, folder=folder), Validation(xq, xb, gt)


def check_validation(n_train: int, n_queries: int, n_base: int,
                     cfg: CatalyzerConfig | None = None) -> None:
    """The validation split fits in the training set and leaves enough to train on."""
    held = n_queries + n_base
    if n_queries < 1 or n_base < 10:
        raise UserError(f"--valid-queries {n_queries} --valid-base {n_base}: need at least 1 "
                        "query and 10 database vectors")
    if held >= n_train // 2:
        raise UserError(f"--valid-queries {n_queries} --valid-base {n_base}: the validation "
                        f"split would take {held} of the {n_train} training vectors (keep it "
                        "under half)")
    if cfg is not None:
        try:
            check_training_size(cfg, n_train - held, "the training set less validation")
        except ValueError as e:
            raise UserError(str(e)) from None


def radii_within_budget(d: int, bits: int) -> list[int]:
    """Radii with codes of at most ``bits`` bits and no more than ``MAX_SHORTFALL`` short,
    largest first (the candidates for r2)."""
    top, _ = lattice_radius(d, bits)
    counts = sphere_counts(d)
    return [r for r in range(top, 0, -1)
            if counts[r] and bits - MAX_SHORTFALL <= code_bits(counts[r]) <= bits]


def check_grid(d_outs: list[int], lambdas: list[float], bits: int) -> None:
    if not 1 <= bits <= 64:
        raise UserError(f"--bits {bits}: lattice codes are 1 to 64 bits")
    if not d_outs or not lambdas:
        raise UserError("--d-outs / --lambdas: give at least one value each")
    for lam in lambdas:
        if not (np.isfinite(lam) and lam >= 0):
            raise UserError(f"--lambdas {lam}: must be finite and >= 0")
    for d in d_outs:
        why = lattice_problem(d)
        if d < 1 or why:
            raise UserError(f"--d-outs {d}: {why or 'must be >= 1'}")
        try:
            lattice_radius(d, bits)
        except ValueError as e:
            raise UserError(f"--d-outs {d} --bits {bits}: {e}") from None


def candidate_config(cfg: CatalyzerConfig, d_out: int, lam: float) -> CatalyzerConfig:
    return dataclasses.replace(
        cfg, codes="lattice", model=dataclasses.replace(cfg.model, d_out=d_out),
        loss=dataclasses.replace(cfg.loss, lambda_koleo=lam),
        train=dataclasses.replace(cfg.train, monitor="valid_recall10", monitor_mode="max"))


def tune(cfg: CatalyzerConfig, out: Path, splits: Splits, d_outs: list[int],
         lambdas: list[float], bits: int = 64, valid_queries: int = 1000,
         valid_base: int = 10_000, force: bool = False) -> dict:
    """Train every ``(d_out, lambda)`` into ``out/d{d_out}-lambda{lambda}``, keep each run's
    best epoch by validation recall@10, pick the best run and then its radius; returns the
    summary (every candidate's figures, the choice, its test recall)."""
    from .cli import load_run
    from .train import build_trainer

    check_grid(d_outs, lambdas, bits)
    check_validation(len(splits.xt), valid_queries, valid_base, cfg)
    train_splits, valid = carve_validation(splits, valid_queries, valid_base)
    rows = []
    for d_out in d_outs:
        r2, used = lattice_radius(d_out, bits)
        for lam in lambdas:
            run = out / f"d{d_out}-lambda{lam:g}"
            c = candidate_config(cfg, d_out, lam)
            trainer, source = build_trainer(c, run, train_splits)
            trainer.fit(source, valid=lambda t, r2=r2: {
                "recall10": valid.recall10(t.model, r2)}, force=force)
            curve = [h["valid_recall10"] for h in trainer.history if h["kind"] == "valid"]
            rows.append({"d_out": d_out, "lambda": lam, "r2": r2, "bits": used,
                         "valid_recall10": max(curve), "valid_curve": curve,
                         "run": str(run)})
            log.info("d_out=%d lambda=%g r2=%d: validation recall@10 %.4f (best epoch of %d)",
                     d_out, lam, r2, max(curve), len(curve))
    best = max(rows, key=lambda r: r["valid_recall10"])
    _, net = load_run(best["run"], best=True)
    radii = {r: valid.recall10(net, r) for r in radii_within_budget(best["d_out"], bits)[:4]}
    r2 = max(radii, key=lambda r: (radii[r], r))
    yb, yq = embed(net, splits.xb).numpy(), embed(net, splits.xq).numpy()
    test = recall_at(lattice_ids(yb, yq, r2, 10), splits.gt, (10,))[10]
    chosen = {**{k: best[k] for k in ("d_out", "lambda", "run")}, "r2": r2,
              "bits": code_bits(sphere_counts(best["d_out"])[r2]),
              "valid_recall10": radii[r2], "checkpoint": str(Path(best["run"]) /
                                                            "best.safetensors"),
              "test_recall10": test}
    return {"bits_budget": bits, "n_train_used": len(train_splits.xt),
            "n_valid_queries": valid_queries, "n_valid_base": valid_base,
            "candidates": rows, "radii_of_chosen": {str(r): v for r, v in radii.items()},
            "chosen": chosen}
