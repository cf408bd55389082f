"""``dldiy-muse {data,align,refine,eval,export,translate,study,isomorphism,bench,demo}``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

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

from .align import refine
from .config import PRESETS, MuseConfig
from .csls import csls_search, mean_knn_similarity, unit
from .embeddings import Embeddings, write_vec
from .pipeline import (
    PAIRS,
    align,
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
    folder = build_pair(args.pair)
    print(f"{folder}:\n{(folder / 'meta.json').read_text()}")
    return 0


def cmd_align(args) -> int:
    cfg = config_from_args(MuseConfig, PRESETS, args)
    out = Path(args.out)
    cleanup = _new_run_folder(out, data_files(cfg), args.force)
    try:
        pair = load_pair(cfg)
        same_dim(cfg, pair)
        result = align(cfg, pair)
        save_run(out, cfg, result, pair)
    except BaseException:
        cleanup()
        raise
    crits = [h for h in result.history if "criterion" in h]
    refined = [h for h in crits if h["step"].startswith("refine")]
    before = max(h["criterion"] for h in crits if not h["step"].startswith("refine"))
    how = f"{cfg.mode} ({cfg.init})" if cfg.mode == "unsupervised" else cfg.mode
    # a seeded run's history starts with the seed's record
    size = f"{result.history[0]['pairs']} seed pairs, " if cfg.mode != "unsupervised" else ""
    print(f"{how}: {size}criterion {before:.4f} before refinement, "
          f"{max(h['criterion'] for h in crits):.4f} kept after {len(refined)} refinements; "
          f"run: {args.out}")
    return 0


def cmd_refine(args) -> int:
    at_least("--iterations", args.iterations, 1)
    cfg, result = load_run(args.run, register=False)  # refine rewrites the run's files
    check_outputs([], data_files(cfg))
    pair = load_pair(cfg)
    check_fits(args.run, result, pair)
    r = cfg.refine
    result = refine(pair.src.vectors, pair.tgt.vectors, result, args.iterations, r.mode,
                    r.max_rank, r.threshold)
    save_run(Path(args.run), cfg, result, pair)
    print(f"criterion {max(h.get('criterion', -1) for h in result.history):.4f}; "
          f"run: {args.run}")
    return 0


def cmd_eval(args) -> int:
    cfg, result = load_run(args.run)
    json_out(args, data_files(cfg))
    pair = load_pair(cfg)
    check_fits(args.run, result, pair)
    emit_json(evaluate(result, pair), args.json)
    return 0


def cmd_export(args) -> int:
    at_least("--max-words", args.max_words, 0, " (0: every word)")
    cfg, result = load_run(args.run)
    prepare_out_file(args.out, inputs=[*run_inputs(args.run), *data_files(cfg)],
                     force=args.force)
    pair = load_pair(cfg)
    check_fits(args.run, result, pair)
    n = min(args.max_words or len(pair.src.words), len(pair.src.words))
    write_vec(args.out, Embeddings(pair.src.words[:n], result.map(pair.src.vectors[:n])))
    print(f"{args.out}: {n} mapped source vectors; dictionary: {Path(args.run) / 'dictionary.txt'}")
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
    tgt = unit(pair.tgt.vectors)
    r_src = mean_knn_similarity(tgt, mapped, 10)
    _, ids = csls_search(mapped[[index[w] for w in args.words]], tgt, args.k, r_src=r_src)
    for word, row in zip(args.words, ids, strict=True):
        print(f"{word}: {' '.join(pair.tgt.words[j] for j in row)}")
    return 0


def cmd_study(args) -> int:
    from .study import study

    cfg = config_from_args(MuseConfig, PRESETS, args)
    at_least("--seeds", args.seeds, 1)
    json_out(args, data_files(cfg))
    pair = load_pair(cfg)
    same_dim(cfg, pair)
    out = study(cfg, args.seeds, args.json, pair=pair)
    sup = out["supervised"]["csls_p@1"]
    for r in out["runs"]:
        print(f"seed {r['seed']}: P@1 NN {r['nn_p@1']:.3f} CSLS {r['csls_p@1']:.3f} "
              f"criterion {r['criterion']:.4f}{'  success' if r['success'] else ''}")
    print(f"{out['pair']} {out['init']}: supervised Procrustes P@1 CSLS {sup:.3f}; "
          f"success (>= {out['success_threshold_csls_p@1']:.3f}) in {out['successes']}/"
          f"{len(out['runs'])} seeds; best criterion: seed {out['selected_by_criterion']}"
          + (f"; json: {args.json}" if args.json else ""))
    return 0


def cmd_isomorphism(args) -> int:
    cfg = config_from_args(MuseConfig, PRESETS, args)
    at_least("--top", args.top, 2)
    at_least("--k", args.k, 1)
    json_out(args, data_files(cfg))
    emit_json({"pair": pair_name(cfg), **pair_isomorphism(load_pair(cfg), args.top, args.k)},
              args.json)
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    cfg = config_from_args(MuseConfig, PRESETS, args)
    json_out(args, data_files(cfg))
    emit_results(run_bench(cfg), args.json)
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
        for name, what in (("src", "source embeddings (.vec, or .npy + <stem>.words.txt) "
                                   "instead of --pair"),
                           ("tgt", "target embeddings, as --src"),
                           ("train", "training dictionary (MUSE format: 'source target' a "
                                     "line)"),
                           ("test", "test dictionary (MUSE format)")):
            c.add_argument(f"--{name}", dest="sets", action="append", metavar="FILE",
                           type=setting(f"data.{name}", path=True), help=what)

    c = cli.add("data", cmd_data, "build a pair's vectors and dictionaries", config=False)
    c.add_argument("--pair", choices=list(PAIRS), default="en-fr",
                   help="en-fr: GloVe vs French; en-en: GloVe vs word2vec on Debian man pages; "
                        "man-man: skip-gram on two halves of the man pages; man-cbow, "
                        "man-fasttext: the odd half by CBOW, fastText")
    c = cli.add("align", cmd_align, "seed an orthogonal map and refine it (alias: train)",
                aliases=["train"])
    c.add_argument("--mode", dest="sets", action="append", type=lambda m: f"mode={m}",
                   metavar="MODE",
                   help="supervised (training dictionary), identical (same spelling) or "
                        "unsupervised (no dictionary)")
    data_options(c)
    add_output_args(c, help="run folder (refused if it holds a run, unless --force; more "
                            "refinement of a run: dldiy-muse refine --run)")
    with_run("refine", cmd_refine, "more refinement iterations on a run").add_argument(
        "--iterations", type=int, default=5)
    json_option(with_run("eval", cmd_eval, "P@1/5/10 (NN and CSLS) on the test dictionary"))
    c = with_run("export", cmd_export, "mapped source embeddings as .vec")
    add_output_args(c, help="output .vec file (never the source or target vectors, nor a file "
                            "of a run)")
    c.add_argument("--max-words", type=int, default=0, help="the most frequent N words "
                   "(default 0: all)")
    c = with_run("translate", cmd_translate, "CSLS translations of source words")
    c.add_argument("words", nargs="+")
    c.add_argument("--k", type=int, default=5)
    c = cli.add("study", cmd_study, "unsupervised alignment over several seeds against "
                "supervised Procrustes: P@1, criterion, success rate")
    data_options(c)
    c.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    add_output_args(c, flag="--json", required=False,
                    help="write the figures here (rewritten after every seed)")
    c = cli.add("isomorphism", cmd_isomorphism, "how alike the two spaces are on dictionary "
                "pairs (cosine correlation, neighbour overlap): can unsupervised work here?")
    data_options(c)
    c.add_argument("--top", type=int, default=4000, help="pairs among this many top words")
    c.add_argument("--k", type=int, default=10, help="neighbours compared")
    json_option(c)
    json_option(cli.add("bench", cmd_bench, "CSLS speed and memory, blocked against full "
                        "matrix"))
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
