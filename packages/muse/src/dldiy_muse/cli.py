"""``dldiy-muse {data,align,refine,eval,export,translate,study,isomorphism,bench,demo}``."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dldiy_core import (
    Commands,
    UserError,
    add_output_args,
    check_outputs,
    config_from_args,
    emit_json,
    emit_results,
    prepare_out_dir,
    prepare_out_file,
)

from .align import refine, vecmap_final
from .config import PRESETS, MuseConfig
from .csls import csls_search, ip_search, mean_knn_similarity, unit
from .dictionary import log_normalizers, mean_csls_cosine, pairs_to_ids, precision_at_k
from .embeddings import Embeddings, write_vec
from .pair_cache import cache_root
from .pipeline import (
    PAIRS,
    build_pair,
    check_fits,
    data_files,
    evaluate,
    load_pair,
    load_run,
    pair_isomorphism,
    pair_name,
    run_inputs,
    save_run,
)
from .restarts import align_with_restarts

SET_EXAMPLE = "e.g. --set refine.iterations=3 or --set adversarial.epochs=1 (repeatable)"


def at_least(flag: str, value: int, low: int, note: str = "") -> int:
    """A numeric flag's range, as one line naming it."""
    if value < low:
        raise UserError(f"{flag} {value}: must be >= {low}{note}")
    return value


def same_dim(cfg: MuseConfig, pair) -> None:
    """An orthogonal map needs two spaces of one dimension: one line naming the files."""
    ds, dt = pair.src.vectors.shape[1], pair.tgt.vectors.shape[1]
    if ds != dt:
        src, tgt = (cfg.data.src, cfg.data.tgt) if cfg.data.src else ("source", "target")
        raise UserError(f"{tgt}: {dt}-d vectors, {src}: {ds}-d; the two spaces differ in "
                        f"dimension ({ds} vs {dt}); reduce one first (e.g. PCA, as "
                        "data.reduce_dim)")


def json_out(args, inputs=()) -> None:
    """Check ``--json FILE`` before any work (never an input, nor a run's file unless
    --force)."""
    if args.json:
        prepare_out_file(args.json, inputs=inputs, force=args.force)


def _new_run_folder(out: Path, inputs, force: bool):
    """``prepare_out_dir`` for a run folder; returns a cleanup that removes the folder again
    if this command created it and left it empty (a refused or failed run leaves nothing)."""
    created = not (out.exists() or out.is_symlink())
    prepare_out_dir(out, inputs=inputs, force=force)

    def cleanup() -> None:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
    return cleanup


def cmd_data(args) -> int:
    json_out(args, [cache_root()])
    folder = build_pair(args.pair)
    print(f"{folder}:\n{(folder / 'meta.json').read_text()}")
    if args.json:  # the pair's counts and source key, as a results file
        import json

        from dldiy_core import write_results

        write_results(args.json, {"pair": args.pair,
                                  **json.loads((folder / "meta.json").read_text())})
    return 0


def cmd_align(args) -> int:
    cfg = config_from_args(MuseConfig, PRESETS, args)
    out = Path(args.out)
    cleanup = _new_run_folder(out, data_files(cfg), args.force)
    try:
        pair = load_pair(cfg)
        same_dim(cfg, pair)
        result = align_with_restarts(cfg, pair)
        save_run(out, cfg, result, pair)
    except BaseException:
        cleanup()
        raise
    # the identity map's criterion (adversarial epoch 0) is a reference, never a candidate
    crits = [h for h in result.history if "criterion" in h and h["step"] != "adversarial 0"]
    refined = [h for h in crits if h["step"].startswith("refine")]
    before = max(h["criterion"] for h in crits if not h["step"].startswith("refine"))
    kept = mean_csls_cosine(result.map(pair.src.vectors), result.map_tgt(pair.tgt.vectors))
    how = f"{cfg.mode} ({cfg.init})" if cfg.mode == "unsupervised" else cfg.mode
    seeds = [h for h in result.history if h["step"] == "seed"]
    size = f"{seeds[0]['pairs']} seed pairs, " if cfg.mode != "unsupervised" and seeds else ""
    restarts = [h for h in result.history if h["step"] == "restart"]
    picked = (f"seed {next(h['seed'] for h in restarts if h['kept'])} of {len(restarts)} "
              "restarts by the criterion; ") if restarts else ""
    print(f"{how}: {size}{picked}criterion {before:.4f} before refinement, {kept:.4f} kept "
          f"after {len(refined)} refinements; run: {args.out}")
    return 0


def cmd_refine(args) -> int:
    at_least("--iterations", args.iterations, 1)
    cfg, result = load_run(args.run, register=False)  # refine rewrites the run's files
    check_outputs([], data_files(cfg))
    pair = load_pair(cfg)
    check_fits(args.run, result, pair)
    r = cfg.refine
    result = refine(pair.src.vectors, pair.tgt.vectors, result, args.iterations, r.mode,
                    r.max_rank, r.threshold, method=r.method, knn=r.knn, beta=r.beta)
    if r.vecmap_steps().active:
        result = vecmap_final(pair.src.vectors, pair.tgt.vectors, result, r.vecmap_steps())
    save_run(Path(args.run), cfg, result, pair)
    print(f"criterion {max(h.get('criterion', -1) for h in result.history):.4f}; "
          f"run: {args.run}")
    return 0


def cmd_eval(args) -> int:
    cfg, result = load_run(args.run)
    json_out(args, data_files(cfg))
    pair = load_pair(cfg)
    check_fits(args.run, result, pair)
    scores = evaluate(result, pair)
    if args.invsm:
        ids, _ = pairs_to_ids(pair.test, pair.src.words, pair.tgt.words)
        for k, v in precision_at_k(result.map(pair.src.vectors),
                                   result.map_tgt(pair.tgt.vectors), ids,
                                   "invsm", beta=cfg.refine.beta).items():
            if k != "queries":
                scores[f"invsm_{k}"] = v
    emit_json(scores, args.json)
    return 0


def cmd_export(args) -> int:
    at_least("--max-words", args.max_words, 0, " (0: every word)")
    cfg, result = load_run(args.run)
    inputs = [*run_inputs(args.run), *data_files(cfg)]
    prepare_out_file(args.out, inputs=inputs, force=args.force)
    if args.tgt_out:
        if Path(args.tgt_out).resolve() == Path(args.out).resolve():
            raise UserError(f"--tgt-out {args.tgt_out}: the same file as --out")
        prepare_out_file(args.tgt_out, inputs=inputs, force=args.force)
    pair = load_pair(cfg)
    check_fits(args.run, result, pair)
    n = min(args.max_words or len(pair.src.words), len(pair.src.words))
    write_vec(args.out, Embeddings(pair.src.words[:n], result.map(pair.src.vectors[:n])))
    done = f"{args.out}: {n} mapped source vectors"
    if args.tgt_out:  # the target space the map was aligned to (normalised as the run saw it)
        m = min(args.max_words or len(pair.tgt.words), len(pair.tgt.words))
        write_vec(args.tgt_out, Embeddings(pair.tgt.words[:m],
                                           result.map_tgt(pair.tgt.vectors[:m])))
        done += f"; {args.tgt_out}: {m} target vectors"
    print(f"{done}; dictionary: {Path(args.run) / 'dictionary.txt'}")
    return 0


def cmd_translate(args) -> int:
    at_least("--k", args.k, 1)
    cfg, result = load_run(args.run)
    pair = load_pair(cfg)
    check_fits(args.run, result, pair)
    index = {w: i for i, w in enumerate(pair.src.words)}
    unknown = [w for w in args.words if w not in index]
    if unknown:
        raise UserError(f"not in the source vocabulary: {', '.join(unknown)}")
    mapped = unit(result.map(pair.src.vectors))
    tgt = unit(result.map_tgt(pair.tgt.vectors))
    queries = mapped[[index[w] for w in args.words]]
    if args.method == "csls":
        _, ids = csls_search(queries, tgt, args.k, r_src=mean_knn_similarity(tgt, mapped, 10))
    elif args.method == "nn":
        _, ids = ip_search(queries, tgt, args.k)
    else:  # inverted softmax: each target normalised over the whole source vocabulary
        beta = cfg.refine.beta
        log_z = log_normalizers(mapped, tgt, beta)
        _, ids = ip_search(np.hstack([beta * queries, -np.ones((len(queries), 1), np.float32)]),
                           np.hstack([tgt, log_z[:, None]]), args.k)
    for word, row in zip(args.words, ids, strict=True):
        print(f"{word}: {' '.join(pair.tgt.words[j] for j in row)}")
    return 0


def cmd_study(args) -> int:
    from .study import study

    cfg = config_from_args(MuseConfig, PRESETS, args)
    at_least("--seeds", args.seeds, 1)
    if args.resume and not args.json:
        raise UserError("--resume needs --json FILE (the study to continue)")
    json_out(args, data_files(cfg))
    previous = None
    if args.resume:
        from dldiy_core import read_results

        from .study import check_resumable

        previous = read_results(args.json)["figures"]
        check_resumable(previous, cfg, f"--resume {args.json}")
    pair = load_pair(cfg)
    same_dim(cfg, pair)
    out = study(cfg, args.seeds, args.json, pair=pair, previous=previous)
    sup = out["supervised"]["csls_p@1"]
    for name in ("supervised_refined", "identical"):
        b = out[name]
        if b:
            print(f"{name}: P@1 NN {b['nn_p@1']:.3f} CSLS {b['csls_p@1']:.3f} criterion "
                  f"{b['criterion']:.4f} ({b['seconds']:.0f} s)")
    for r in out["runs"]:
        print(f"seed {r['seed']}: P@1 NN {r['nn_p@1']:.3f} CSLS {r['csls_p@1']:.3f} "
              f"criterion {r['criterion']:.4f} ({r['seconds']:.0f} s)"
              f"{'  success' if r['success'] else ''}")
    print(f"{out['pair']} {out['init']}: supervised Procrustes P@1 CSLS {sup:.3f}; "
          f"success (>= {out['success_threshold_csls_p@1']:.3f}) in {out['successes']}/"
          f"{len(out['runs'])} seeds; best criterion: seed {out['selected_by_criterion']}"
          + (f"; json: {args.json}" if args.json else ""))
    return 0


def cmd_ablate(args) -> int:
    from .ablation import VARIANTS, ablate, read_previous, variant_config

    at_least("--seeds", args.seeds, 1)
    at_least("--validation", args.validation, 1)
    names = [v for v in args.variants.split(",") if v] if args.variants else list(VARIANTS)
    configs = {n: variant_config(n, args.preset, args.config, args.sets or []) for n in names}
    if args.resume and not args.json:
        raise UserError("--resume needs --json FILE (the file to continue)")
    json_out(args, data_files(next(iter(configs.values()))))
    previous = read_previous(args.json) if args.resume else None
    out = ablate(configs, range(args.seeds), args.validation, args.json, previous)
    for norm, ref in out["references"].items():
        print(f"supervised Procrustes ({norm}): validation P@1 NN {ref['nn_p@1']:.3f} CSLS "
              f"{ref['csls_p@1']:.3f}, criterion {ref['criterion']:.4f}")
    for name, v in out["variants"].items():
        game = ", ".join(f"{r['init']['csls_p@1']:.3f}" for r in v["runs"])
        refined = ", ".join(f"{r['refined']['csls_p@1']:.3f}" for r in v["runs"])
        print(f"{name}: validation P@1 CSLS after the game {game}, after refinement "
              f"{refined}; success {v['successes']}/{len(v['runs'])}")
    return 0


def cmd_mapping(args) -> int:
    import time

    from .align import Alignment
    from .pipeline import seed_ids
    from .vecmap import SETTINGS, vecmap_maps

    cfg = config_from_args(MuseConfig, PRESETS, args)
    json_out(args, data_files(cfg))
    pair = load_pair(cfg)
    same_dim(cfg, pair)
    ids = seed_ids(dataclasses.replace(cfg, mode="supervised"), pair)
    out: dict = {"pair": pair_name(cfg), "train_pairs": int(len(ids)), "settings": {}}
    for name, steps in SETTINGS.items():
        t0 = time.perf_counter()
        A, B = vecmap_maps(pair.src.vectors[ids[:, 0]], pair.tgt.vectors[ids[:, 1]], steps)
        result = Alignment(A, T=B)
        scores = evaluate(result, pair)
        out["settings"][name] = {
            "steps": dataclasses.asdict(steps), "nn_p@1": scores["nn_p@1"],
            "csls_p@1": scores["csls_p@1"], "csls_p@10": scores["csls_p@10"],
            "criterion": mean_csls_cosine(result.map(pair.src.vectors),
                                          result.map_tgt(pair.tgt.vectors)),
            "seconds": round(time.perf_counter() - t0, 1)}
        out["test_queries"] = scores["queries"]
        print(f"{name}: P@1 NN {scores['nn_p@1']:.3f} CSLS {scores['csls_p@1']:.3f}")
    emit_results(out, args.json)
    return 0


def cmd_isomorphism(args) -> int:
    cfg = config_from_args(MuseConfig, PRESETS, args)
    at_least("--top", args.top, 2)
    at_least("--k", args.k, 1)
    json_out(args, data_files(cfg))
    pair = load_pair(cfg)
    out = {"pair": pair_name(cfg), **pair_isomorphism(pair, args.top, args.k)}
    if args.discriminator:  # reads the training dictionary: a diagnosis, never a selection
        from .align import fit_seed
        from .isomorphism import discriminator_accuracy
        from .pipeline import seed_ids

        sup = fit_seed(pair.src.vectors, pair.tgt.vectors,
                       seed_ids(dataclasses.replace(cfg, mode="supervised"), pair))
        d = pair.src.vectors.shape[1]
        for name, W in (("supervised_map", sup.W), ("identity", np.eye(d, dtype=np.float32))):
            out[f"discriminator_accuracy_{name}"] = discriminator_accuracy(
                pair.src.vectors, pair.tgt.vectors, W, hidden=cfg.adversarial.hidden,
                seed=cfg.seed)
    emit_results(out, args.json)
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    cfg = config_from_args(MuseConfig, PRESETS, args)
    json_out(args, data_files(cfg))
    emit_results(run_bench(cfg, args.paper_schedule), args.json)
    return 0


def cmd_demo(args) -> int:
    from .report import RUNS, demo, previous_demo

    cfg = config_from_args(MuseConfig, PRESETS, args)
    out = Path(args.out)
    cleanup = _new_run_folder(out, data_files(cfg), args.force)
    try:  # the runs it keeps inside: refused before any work unless they are those of this
        # demo's previous report in the same folder (regenerated), or --force
        check_outputs([out / name for name in RUNS], force=args.force or previous_demo(out))
        print(f"report: {demo(cfg, out)}")
    except BaseException:
        cleanup()
        raise
    return 0


def commands() -> Commands:
    cli = Commands("dldiy-muse", sys.modules["dldiy_muse"].__doc__, presets=PRESETS,
                   default_preset="quick", quiet_loggers=("faiss", "gensim"))
    pairs = ", ".join(PAIRS)

    def with_run(name, fn, help):
        c = cli.add(name, fn, help, config=False)
        c.add_argument("--run", required=True, help="folder written by align")
        return c

    def json_option(c):
        add_output_args(c, flag="--json", required=False, help="write the figures here")

    def data_options(c):
        def setting(key, path=False):
            return lambda v: f"{key}={Path(v).resolve() if path else v}"

        c.add_argument("--pair", dest="sets", action="append", type=setting("data.pair"),
                       metavar="PAIR", help=f"language pair ({pairs}; default en-fr)")
        c.add_argument("--init", dest="sets", action="append", type=setting("init"),
                       metavar="INIT",
                       help="unsupervised initialisation: adversarial (the paper's, "
                            "default) or similarity (vecmap-style)")
        c.add_argument("--device", dest="sets", action="append",
                       type=setting("adversarial.device"), metavar="DEVICE",
                       help="where the adversarial game runs: cpu (default) or cuda")
        for name, what in (("src", "source embeddings (.vec, or .npy + <stem>.words.txt) "
                                   "instead of --pair"),
                           ("tgt", "target embeddings, as --src"),
                           ("train", "training dictionary (MUSE format: 'source target' a "
                                     "line)"),
                           ("test", "test dictionary (MUSE format)")):
            c.add_argument(f"--{name}", dest="sets", action="append", metavar="FILE",
                           type=setting(f"data.{name}", path=True), help=what)

    def vecmap_options(c):
        c.add_argument("--whiten", dest="sets", action="append_const",
                       const="refine.whiten=true",
                       help="vecmap's steps after refinement (Artetxe et al. 2018): whiten "
                            "both spaces on the final dictionary")
        for side in ("src", "trg"):
            c.add_argument(f"--{side}-reweight", dest="sets", action="append", metavar="P",
                           type=lambda v, s=side: f"refine.{s}_reweight={v}",
                           help=f"re-weight the mapped {side} dimensions by S^P (vecmap: 0.5 "
                                "for the source)")
            c.add_argument(f"--{side}-dewhiten", dest="sets", action="append",
                           metavar="src|trg", type=lambda v, s=side: f"refine.{s}_dewhiten={v}",
                           help=f"de-whiten the {side} side by the source's or the target's "
                                "whitening (needs --whiten)")

    c = cli.add("data", cmd_data, "build a pair's vectors and dictionaries", config=False)
    c.add_argument("--pair", choices=list(PAIRS), default="en-fr",
                   help="en-fr (default): the spaCy md English and French tables (300-d, "
                        "trained alike); en-fr-glove: GloVe-50 vs the French table brought to "
                        "50-d (a hard pair); en-en: GloVe vs word2vec on Debian man pages; "
                        "man-man: skip-gram on two halves of the man pages; man-cbow, "
                        "man-fasttext: the odd half by CBOW, fastText")
    json_option(c)
    c = cli.add("align", cmd_align, "seed an orthogonal map and refine it (alias: train)",
                aliases=["train"])
    c.add_argument("--mode", dest="sets", action="append", type=lambda m: f"mode={m}",
                   metavar="MODE",
                   help="supervised (training dictionary), identical (same spelling) or "
                        "unsupervised (no dictionary)")
    c.add_argument("--restarts", dest="sets", action="append", type=lambda n: f"restarts={n}",
                   metavar="N", help="unsupervised: N runs (seeds seed..seed+N-1), the one "
                                     "with the best unsupervised criterion kept (default 1)")
    data_options(c)
    vecmap_options(c)
    add_output_args(c, help="run folder (refused if it holds a run, unless --force; more "
                            "refinement of a run: dldiy-muse refine --run)")
    with_run("refine", cmd_refine, "more refinement iterations on a run").add_argument(
        "--iterations", type=int, default=5)
    c = with_run("eval", cmd_eval, "P@1/5/10 (NN and CSLS) on the test dictionary")
    json_option(c)
    c.add_argument("--invsm", action="store_true",
                   help="also P@k by inverted softmax (Smith et al. 2017)")
    c = with_run("export", cmd_export, "mapped source embeddings (and the target's) as .vec")
    add_output_args(c, help="output .vec file (never the source or target vectors, nor a file "
                            "of a run)")
    c.add_argument("--tgt-out", metavar="FILE", default="",
                   help="also write the target space the map aligns to (as MUSE's export)")
    c.add_argument("--max-words", type=int, default=0, help="the most frequent N words "
                   "(default 0: all)")
    c = with_run("translate", cmd_translate, "translations of source words")
    c.add_argument("words", nargs="+")
    c.add_argument("--k", type=int, default=5)
    c.add_argument("--method", choices=["csls", "nn", "invsm"], default="csls",
                   help="retrieval: csls (default), nn (cosine) or invsm (inverted softmax)")
    c = cli.add("study", cmd_study, "unsupervised alignment over several seeds against "
                "supervised Procrustes: P@1, criterion, success rate")
    data_options(c)
    vecmap_options(c)
    c.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    add_output_args(c, flag="--json", required=False, resume=True,
                    help="write the figures here (rewritten after every seed; --resume keeps "
                         "its baselines and seeds and runs the missing ones)")
    c = cli.add("ablate", cmd_ablate, "the adversarial initialisation with one setting changed "
                "at a time, scored on a validation split of the training dictionary")
    data_options(c)
    c.add_argument("--variants", default="", metavar="A,B",
                   help="comma list of variants (default: all; see ablation.VARIANTS)")
    c.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per variant")
    c.add_argument("--validation", type=int, default=500, metavar="N",
                   help="training sources held out for validation (default 500)")
    add_output_args(c, flag="--json", required=False, resume=True,
                    help="write the figures here (rewritten after every run)")
    c = cli.add("mapping", cmd_mapping, "supervised mapping on the training dictionary: "
                "orthogonal Procrustes against vecmap's whitening / re-weighting / "
                "de-whitening (vecmap.SETTINGS), P@1 on the test dictionary")
    data_options(c)
    json_option(c)
    c = cli.add("isomorphism", cmd_isomorphism, "how alike the two spaces are on dictionary "
                "pairs (cosine correlation, neighbour overlap): can unsupervised work here?")
    data_options(c)
    c.add_argument("--top", type=int, default=4000, help="pairs among this many top words")
    c.add_argument("--k", type=int, default=10, help="neighbours compared")
    c.add_argument("--discriminator", action="store_true",
                   help="also train the adversarial discriminator against the supervised map "
                        "and against the identity: its accuracy at each (0.5: fooled)")
    json_option(c)
    c = cli.add("bench", cmd_bench, "CSLS speed and memory, blocked against full matrix; "
                "the pipelines; the paper's adversarial game per iteration")
    json_option(c)
    c.add_argument("--device", dest="sets", action="append",
                   type=lambda v: f"adversarial.device={v}", metavar="DEVICE",
                   help="where the adversarial game runs: cpu (default) or cuda")
    c.add_argument("--paper-schedule", action="store_true",
                   help="also run one seed of the paper's whole adversarial schedule and 5 "
                        "refinements (hours on 2 CPU cores)")
    c = cli.add("demo", cmd_demo, "supervised, identical-strings and adversarial alignment; a "
                "report")
    add_output_args(c, required=False, help="report folder (default reports/muse; the runs "
                                            "it keeps inside are replaced only with --force)")
    c.set_defaults(out="reports/muse")
    for sub in cli.sub.choices.values():  # the core's --set example names no muse key
        for action in sub._actions:
            if action.option_strings == ["--set"]:
                action.help = f"override one setting, {SET_EXAMPLE}"
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    return commands().main(argv)
