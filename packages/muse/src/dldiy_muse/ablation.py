"""``dldiy-muse ablate``: what makes the adversarial initialisation (section 3.1) fail or
succeed on a pair? One setting changed at a time, scored without the test dictionary.

Each variant is the configured schedule (``--preset``, ``--set``) plus a few ``--set``
overrides (:data:`VARIANTS`). Every run is scored on a **validation** split carved from the
training dictionary (:func:`validation_split`: all translations of ``n`` training sources drawn
at random; the rest stays for the supervised reference), never on the test dictionary: P@1 by
NN and CSLS after the adversarial stage and after ``refine.iterations`` refinements, the
unsupervised criterion (section 3.5), the discriminator's accuracy in the last epoch, how
far ``W`` is from orthogonal (``||W W^T - I||_F``) and from the supervised map (Frobenius; a
diagnosis, as are the ``start-*`` variants, which start the game from the supervised map or
halfway to it). Beside them, supervised Procrustes on the
rest of the training dictionary, per normalisation. The seed a variant's criterion would pick
(restarts chosen without a dictionary, ``align --restarts N``) is named per variant.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dldiy_core import UserError, read_results, resolve, to_dict, write_results

from .adversarial import adversarial
from .align import Alignment, fit_seed
from .config import PRESETS, MuseConfig
from .dictionary import mean_csls_cosine, pairs_to_ids, precision_at_k
from .pipeline import Pair, load_pair, pair_name, refine_from

log = logging.getLogger(__name__)

VARIANTS: dict[str, tuple[str, ...]] = {
    "baseline": (),
    # orthogonalisation strength (section 3.3): MUSE's code 0.001; the paper tried up to 0.01
    "beta-x10": ("adversarial.beta=0.01",),
    "beta-div10": ("adversarial.beta=0.0001",),
    # the discriminator
    "hidden-1024": ("adversarial.hidden=1024",),
    "hidden-64": ("adversarial.hidden=64",),
    "dis-steps-1": ("adversarial.dis_steps=1",),
    "dropout-none": ("adversarial.input_dropout=0",),
    "dropout-more": ("adversarial.input_dropout=0.3",),
    "smooth-muse": ("adversarial.smooth=0.1",),
    "smooth-none": ("adversarial.smooth=0",),
    "smooth-more": ("adversarial.smooth=0.3",),
    # the words the discriminator sees (most frequent N of each side)
    "words-5k": ("adversarial.dis_most_frequent=5000",),
    "words-15k": ("adversarial.dis_most_frequent=15000",),
    # schedule length
    "epochs-1": ("adversarial.epochs=1",),
    "epochs-6": ("adversarial.epochs=6",),
    # the map's step size
    "map-lr-div10": ("adversarial.lr=0.01",),
    "map-lr-x10": ("adversarial.lr=1",),
    # normalisation of both spaces
    "center-unit": ("data.normalize=center,unit",),
    "unit": ("data.normalize=unit",),
    # the discriminator's (and the map's) input: each space's top 50 principal components
    "dims-50": ("data.dims=50",),
    # diagnoses, not methods (they read the training dictionary): the game started at the
    # supervised map, or halfway along the rotation from the identity to it
    "start-supervised": ("start=supervised",),
    "start-halfway": ("start=halfway",),
}
"""Variant name -> ``--set`` overrides on top of the configured schedule."""


def reference_key(cfg: MuseConfig) -> str:
    """The supervised reference a variant is compared with: one per normalisation (and
    dimension, when reduced)."""
    return cfg.data.normalize + (f";dims={cfg.data.dims}" if cfg.data.dims else "")


def validation_split(train: Sequence[tuple[str, str]], n_sources: int = 500, seed: int = 0
                     ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(rest, validation): all translations of ``n_sources`` sources drawn at random (seed)
    from ``train``'s sources go to validation; no source is in both."""
    sources = sorted({s for s, _ in train})
    if n_sources >= len(sources):
        raise UserError(f"--validation {n_sources}: the training dictionary has only "
                        f"{len(sources)} sources")
    rng = np.random.default_rng(seed)
    held = {sources[i] for i in rng.choice(len(sources), n_sources, replace=False)}
    return ([p for p in train if p[0] not in held], [p for p in train if p[0] in held])


def _scores(W: np.ndarray, pair: Pair, ids: np.ndarray) -> dict:
    mapped = pair.src.vectors @ W.T
    out = {f"{m}_p@1": precision_at_k(mapped, pair.tgt.vectors, ids, m, ks=(1,))["p@1"]
           for m in ("nn", "csls")}
    return out | {"criterion": mean_csls_cosine(mapped, pair.tgt.vectors)}


def orthogonality_error(W: np.ndarray) -> float:
    """``||W W^T - I||_F``: 0 for an orthogonal map."""
    return float(np.linalg.norm(W @ W.T - np.eye(len(W))))


def variant_config(name: str, preset: str | None, config: str | None,
                   sets: Sequence[str]) -> MuseConfig:
    """The configured schedule with variant ``name``'s overrides applied last."""
    if name not in VARIANTS:
        raise UserError(f"--variants: unknown variant '{name}' (known: {', '.join(VARIANTS)})")
    overrides = [s for s in VARIANTS[name] if not s.startswith("start=")]
    return resolve(MuseConfig, PRESETS, preset, config, [*sets, *overrides])


def fractional_rotation(Q: np.ndarray, t: float) -> np.ndarray:
    """``Q^t`` for an orthogonal ``Q [d, d]`` (its eigen-angles scaled by ``t``), made
    orthogonal again (polar factor): the rotation a fraction ``t`` of the way from the
    identity to ``Q``. Exact for a rotation (``det Q = 1``); for a reflection no real path from
    the identity exists, and this is the nearest orthogonal matrix to the real part."""
    vals, vecs = np.linalg.eig(Q.astype(np.float64))
    M = (vecs * np.exp(1j * t * np.angle(vals))) @ np.linalg.inv(vecs)
    u, _, vt = np.linalg.svd(M.real)
    return (u @ vt).astype(np.float32)


def _start(name: str, supervised: np.ndarray) -> np.ndarray | None:
    how = next((s.split("=", 1)[1] for s in VARIANTS[name] if s.startswith("start=")), None)
    if how is None:
        return None
    return supervised if how == "supervised" else fractional_rotation(supervised, 0.5)


def ablate(configs: dict[str, MuseConfig], seeds: Sequence[int], n_validation: int = 500,
           json_path: str | Path | None = None, previous: dict | None = None,
           show_progress: bool = False) -> dict:
    """Run the adversarial initialisation and ``refine.iterations`` refinements for every
    variant (``configs``: name -> config) and seed, scored on the validation split; the
    summary is rewritten to ``json_path`` after every run. ``previous``: an earlier summary of
    the same variants whose runs are kept (``--resume``)."""
    out = {"validation_sources": n_validation, "variants": {}, "references": {}}
    done = {}
    if previous:
        if previous.get("validation_sources") != n_validation:
            raise UserError(f"--resume: the file was run with --validation "
                            f"{previous.get('validation_sources')}, not {n_validation}")
        out["references"] = previous.get("references", {})
        out["variants"] = {n: v for n, v in previous.get("variants", {}).items()
                           if n not in configs and n in VARIANTS}
        # a run is known by its overrides and seed (a variant renamed since is still found)
        done = {(tuple(r["sets"]), r["seed"]): r for v in previous.get("variants", {}).values()
                for r in v.get("runs", [])}
    pairs: dict[str, tuple[Pair, np.ndarray, np.ndarray]] = {}
    for name, cfg in configs.items():
        key = repr(to_dict(cfg.data))
        if key not in pairs:
            pair = load_pair(cfg)
            rest, val = validation_split(pair.train, n_validation)
            pair = dataclasses.replace(pair, train=rest, test=val)
            ids = pairs_to_ids(val, pair.src.words, pair.tgt.words)[0]
            t0 = time.perf_counter()
            sup = fit_seed(pair.src.vectors, pair.tgt.vectors,
                           pairs_to_ids(rest, pair.src.words, pair.tgt.words)[0])
            pairs[key] = (pair, ids, sup.W)
            norm = reference_key(cfg)
            if norm not in out["references"]:
                out["references"][norm] = {
                    "pair": pair_name(cfg), "train_pairs": len(rest),
                    "validation_pairs": len(val), "validation_queries": int(len(set(
                        ids[:, 0].tolist()))),
                    **_scores(sup.W, pair, ids),
                    "seconds": round(time.perf_counter() - t0, 1)}
        pair, ids, sup_W = pairs[key]
        ref = out["references"][reference_key(cfg)]
        entry = out["variants"].setdefault(name, {"runs": []})
        entry["sets"] = list(VARIANTS[name])
        for seed in seeds:
            run = done.get((VARIANTS[name], seed))
            if run is None:
                run = _run(name, cfg, pair, ids, seed, show_progress, sup_W,
                           _start(name, sup_W))
            run["variant"] = name
            run["success"] = run["refined"]["csls_p@1"] >= 0.9 * ref["csls_p@1"]
            entry["runs"].append(run)
            entry["successes"] = sum(r["success"] for r in entry["runs"])
            picked = max(entry["runs"], key=lambda r: r["refined"]["criterion"])
            entry["picked_by_criterion"] = {"seed": picked["seed"],
                                            "csls_p@1": picked["refined"]["csls_p@1"]}
            if json_path:
                write_results(json_path, out)
    return out


def _run(name: str, cfg: MuseConfig, pair: Pair, ids: np.ndarray, seed: int,
         show_progress: bool, supervised: np.ndarray, start: np.ndarray | None = None
         ) -> dict:
    t0 = time.perf_counter()
    init = adversarial(pair.src.vectors, pair.tgt.vectors, cfg.adversarial, seed, show_progress,
                       start)
    t1 = time.perf_counter()
    final = refine_from(cfg, pair, Alignment(init.W, list(init.history)), show_progress)
    t2 = time.perf_counter()
    epochs = [h for h in init.history if "dis_acc" in h and "criterion" in h]
    run = {"variant": name, "seed": seed, "sets": list(VARIANTS[name]),
           "init": _scores(init.W, pair, ids) | {
               "orthogonality_error": orthogonality_error(init.W),
               "distance_to_supervised": float(np.linalg.norm(init.W - supervised)),
               "last_epoch_dis_acc": epochs[-1]["dis_acc"] if epochs else None,
               "epoch_criteria": [h["criterion"] for h in epochs]},
           "refined": _scores(final.W, pair, ids),
           "init_seconds": round(t1 - t0, 1), "refine_seconds": round(t2 - t1, 1)}
    if start is not None:  # where the game started: its scores and distance
        run["start"] = _scores(start, pair, ids) | {
            "distance_to_supervised": float(np.linalg.norm(start - supervised))}
    log.info("%s seed %d: validation P@1 CSLS %.3f after the game (criterion %.4f, "
             "||WW^T-I|| %.2f), %.3f after refinement (criterion %.4f)", name, seed,
             run["init"]["csls_p@1"], run["init"]["criterion"],
             run["init"]["orthogonality_error"], run["refined"]["csls_p@1"],
             run["refined"]["criterion"])
    return run


def read_previous(path: str | Path) -> dict:
    """The figures of an earlier ``ablate --json`` file (``--resume``)."""
    return read_results(path)["figures"]
