"""``dldiy-muse {data,align,refine,eval,export,translate,study,isomorphism,bench,demo}``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from dldiy_core import Commands, UserError, config_from_args, emit_json, emit_results

from .align import refine
from .config import PRESETS, MuseConfig
from .csls import csls_search, mean_knn_similarity, unit
from .data import Embeddings
from .embeddings import write_vec
from .pipeline import (
    PAIRS,
    align,
    build_pair,
    evaluate,
    load_pair,
    load_run,
    pair_isomorphism,
    pair_name,
    save_run,
)


def cmd_data(args) -> int:
    folder = build_pair(args.pair)
    print(f"{folder}:\n{(folder / 'meta.json').read_text()}")
    return 0


def cmd_align(args) -> int:
    cfg = config_from_args(MuseConfig, PRESETS, args)
    pair = load_pair(cfg)
    result = align(cfg, pair)
    save_run(Path(args.out), cfg, result, pair)
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
    cfg, result = load_run(args.run)
    pair = load_pair(cfg)
    r = cfg.refine
    result = refine(pair.src.vectors, pair.tgt.vectors, result, args.iterations, r.mode,
                    r.max_rank, r.threshold)
    save_run(Path(args.run), cfg, result, pair)
    print(f"criterion {max(h.get('criterion', -1) for h in result.history):.4f}; "
          f"run: {args.run}")
    return 0


def cmd_eval(args) -> int:
    cfg, result = load_run(args.run)
    emit_json(evaluate(result, load_pair(cfg)), args.json)
    return 0


def cmd_export(args) -> int:
    cfg, result = load_run(args.run)
    pair = load_pair(cfg)
    n = args.max_words or len(pair.src.words)
    write_vec(args.out, Embeddings(pair.src.words[:n], result.map(pair.src.vectors[:n])))
    print(f"{args.out}: {n} mapped source vectors; dictionary: {Path(args.run) / 'dictionary.txt'}")
    return 0


def cmd_translate(args) -> int:
    cfg, result = load_run(args.run)
    pair = load_pair(cfg)
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
    out = study(cfg, args.seeds, args.json)
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
    emit_json({"pair": pair_name(cfg), **pair_isomorphism(load_pair(cfg), args.top, args.k)},
              args.json)
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    emit_results(run_bench(config_from_args(MuseConfig, PRESETS, args)), args.json)
    return 0


def cmd_demo(args) -> int:
    from .report import demo

    print(f"report: {demo(config_from_args(MuseConfig, PRESETS, args), Path(args.out))}")
    return 0


def commands() -> Commands:
    cli = Commands("dldiy-muse", sys.modules["dldiy_muse"].__doc__, presets=PRESETS,
                   default_preset="quick", quiet_loggers=("faiss", "gensim"))
    pairs = ", ".join(PAIRS)

    def with_run(name, fn, help):
        c = cli.add(name, fn, help, config=False)
        c.add_argument("--run", required=True, help="folder written by align")
        return c

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
    c.add_argument("--out", required=True, help="run folder")
    with_run("refine", cmd_refine, "more refinement iterations on a run").add_argument(
        "--iterations", type=int, default=5)
    with_run("eval", cmd_eval, "P@1/5/10 (NN and CSLS) on the test dictionary").add_argument(
        "--json", help="write the figures here")
    c = with_run("export", cmd_export, "mapped source embeddings as .vec")
    c.add_argument("--out", required=True)
    c.add_argument("--max-words", type=int, default=0)
    c = with_run("translate", cmd_translate, "CSLS translations of source words")
    c.add_argument("words", nargs="+")
    c.add_argument("--k", type=int, default=5)
    c = cli.add("study", cmd_study, "unsupervised alignment over several seeds against "
                "supervised Procrustes: P@1, criterion, success rate")
    data_options(c)
    c.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    c.add_argument("--json", help="write the figures here (rewritten after every seed)")
    c = cli.add("isomorphism", cmd_isomorphism, "how alike the two spaces are on dictionary "
                "pairs (cosine correlation, neighbour overlap): can unsupervised work here?")
    data_options(c)
    c.add_argument("--top", type=int, default=4000, help="pairs among this many top words")
    c.add_argument("--k", type=int, default=10, help="neighbours compared")
    c.add_argument("--json", help="write the figures here")
    cli.add("bench", cmd_bench, "CSLS speed and memory, blocked against full matrix"
            ).add_argument("--json", help="write the figures here")
    cli.add("demo", cmd_demo, "supervised, identical-strings and adversarial alignment; a report"
            ).add_argument("--out", default="reports/muse", help="report folder")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    return commands().main(argv)
