"""``dldiy-muse {data,align,refine,eval,export,translate,bench,demo}``."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from dldiy_core import (
    ArgumentParser,
    UserError,
    add_config_args,
    atomic_write_text,
    config_from_args,
    run_main,
    setup_logging,
)

from .align import refine
from .config import PRESETS, MuseConfig
from .csls import csls_search, mean_knn_similarity, unit
from .data import Embeddings, build_en_fr, cache_root
from .embeddings import write_vec
from .pipeline import align, evaluate, load_pair, load_run, save_run


def write_json(path: str | None, data: dict) -> None:
    text = json.dumps(data, indent=2)
    if path:
        atomic_write_text(path, text + "\n")
    print(text)


def cmd_data(args) -> int:
    folder = build_en_fr(cache_root() / "en-fr")
    print(f"{folder}:\n{(folder / 'meta.json').read_text()}")
    return 0


def cmd_align(args) -> int:
    cfg = config_from_args(MuseConfig, PRESETS, args)
    pair = load_pair(cfg)
    result = align(cfg, pair)
    save_run(Path(args.out), cfg, result, pair)
    crits = [h for h in result.history if "criterion" in h]
    print(f"{cfg.mode}: seed {crits[0]['pairs']} pairs; criterion {crits[0]['criterion']:.4f} "
          f"-> {max(h['criterion'] for h in crits):.4f} after {len(crits) - 1} refinements; "
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
    write_json(args.json, evaluate(result, load_pair(cfg)))
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


def cmd_bench(args) -> int:
    from .bench import run_bench

    write_json(args.json, run_bench(config_from_args(MuseConfig, PRESETS, args)))
    return 0


def cmd_demo(args) -> int:
    from .report import demo

    print(f"report: {demo(config_from_args(MuseConfig, PRESETS, args), Path(args.out))}")
    return 0


def parser() -> ArgumentParser:
    p = ArgumentParser(prog="dldiy-muse", description=sys.modules["dldiy_muse"].__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name, fn, help, config=True, run=False):
        c = sub.add_parser(name, help=help, description=help)
        if config:
            add_config_args(c, PRESETS, "quick")
        if run:
            c.add_argument("--run", required=True, help="folder written by align")
        c.set_defaults(fn=fn)
        return c

    command("data", cmd_data, "build the English-French pair and dictionaries", config=False)
    c = command("align", cmd_align, "seed an orthogonal map and refine it")
    c.add_argument("--mode", dest="sets", action="append", type=lambda m: f"mode={m}",
                   help="supervised (Procrustes on the training dictionary) or identical")
    c.add_argument("--out", required=True, help="run folder")
    c = command("refine", cmd_refine, "more refinement iterations on a run", False, True)
    c.add_argument("--iterations", type=int, default=5)
    c = command("eval", cmd_eval, "P@1/5/10 (NN and CSLS) on the test dictionary", False, True)
    c.add_argument("--json", help="write the figures here")
    c = command("export", cmd_export, "mapped source embeddings as .vec", False, True)
    c.add_argument("--out", required=True)
    c.add_argument("--max-words", type=int, default=0)
    c = command("translate", cmd_translate, "CSLS translations of source words", False, True)
    c.add_argument("words", nargs="+")
    c.add_argument("--k", type=int, default=5)
    c = command("bench", cmd_bench, "CSLS speed and memory, blocked against full matrix")
    c.add_argument("--json", help="write the figures here")
    c = command("demo", cmd_demo, "supervised vs identical-strings alignment, with a report")
    c.add_argument("--out", default="reports/muse", help="report folder")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    if not args.verbose:
        logging.getLogger("faiss").setLevel(logging.WARNING)
    return args.fn(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, argv)
