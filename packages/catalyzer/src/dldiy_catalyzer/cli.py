"""``dldiy-catalyzer {data,train,eval,index,tune,table,bench,demo}``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dldiy_core import (
    CheckpointError,
    Commands,
    UserError,
    add_output_args,
    check_input,
    check_outputs,
    config_from_args,
    emit_json,
    emit_results,
    from_dict,
    load_checkpoint,
    load_module_state,
    prepare_out_dir,
    prepare_out_file,
    write_results,
)

from .config import PRESETS, CatalyzerConfig
from .data import load_data, source_file
from .lattice import sphere_problem
from .models import Catalyzer
from .vecs import read_vectors, write_vecs

CHUNK = 100_000
"""Vectors encoded at a time by ``index build``."""


def load_run(run: str | Path, best: bool = False) -> tuple[CatalyzerConfig, Catalyzer]:
    """The config and trained network of a ``train`` run folder (``best``: its checkpoint of
    best validation, written by ``tune``)."""
    run = check_input(run, "run", folder=True, register=False)
    name = "best.safetensors" if best else "checkpoint.safetensors"
    path = run / name
    if not path.is_file():
        why = ("no validation ran: only 'tune' runs have one" if best else
               "not a catalyzer run, or stopped before its first checkpoint")
        raise CheckpointError(f"{run}: no {name} in this run folder ({why})")
    state = load_checkpoint(path)
    try:
        cfg = from_dict(CatalyzerConfig, state["config"])
        weight = state["model"]["0.weight"]
        d_in = weight.shape[1]
        if weight.ndim != 2 or weight.shape[0] != cfg.model.hidden:
            raise ValueError(f"first layer {tuple(weight.shape)} does not fit model.hidden="
                             f"{cfg.model.hidden}")
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, UserError) as e:
        raise CheckpointError(f"{path}: not a catalyzer run ({' '.join(str(e).split())[:160]})"
                              ) from None
    net = Catalyzer(d_in, cfg.model.d_out, cfg.model.hidden)
    load_module_state(net, state["model"], path)
    return cfg, net.eval()


def run_files(run: str | Path) -> list[Path]:
    """The files that make up a run (inputs of the commands that read it): outputs may be
    written beside them in its folder, never over them."""
    run = Path(run)
    names = ["checkpoint.safetensors", "best.safetensors", "metrics.jsonl", "config.json"]
    return [run / n for n in names] + sorted(run.glob("checkpoint-*.safetensors"))


def data_files(cfg: CatalyzerConfig) -> list[tuple[Path, str]]:
    """``(file, setting)`` for every input file the data settings name."""
    d = cfg.data
    if d.official:
        return [(Path(getattr(d, k)), f"data.{k}") for k in ("base", "learn", "query", "gt")
                if getattr(d, k)]
    path = source_file(d.source)
    return [(path, "data source")] if path is not None else []


def data_inputs(cfg: CatalyzerConfig) -> list[Path]:
    """The input files behind the data settings (checked: exists, a readable file)."""
    return [check_input(path, what) for path, what in data_files(cfg)]


def out_file(path: str | Path, inputs: list[Path], force: bool, suffix: str, what: str
             ) -> Path:
    """Check an output file (never an input, nor a file of a run without ``--force``), that
    its name ends in ``suffix``, then create its folder (see ``prepare_out_file``)."""
    path = Path(path)
    check_outputs([path], inputs, force=force)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a file")
    if path.suffix != suffix:
        raise UserError(f"{path}: {what} are written as a {suffix} file; choose a name ending "
                        f"in {suffix}")
    return prepare_out_file(path, inputs, force=force)


def cmd_data(args) -> int:
    cfg = config_from_args(CatalyzerConfig, PRESETS, args)
    data_inputs(cfg)
    d = cfg.data
    splits = load_data(d)
    print(f"{splits.folder}: database {len(splits.xb)}, train {len(splits.xt)}, "
          f"queries {len(splits.xq)}, d={splits.d}")
    return 0


def cmd_train(args) -> int:
    from .train import train

    cfg = config_from_args(CatalyzerConfig, PRESETS, args)
    inputs = data_inputs(cfg)
    out = Path(args.out)
    check_outputs([out], inputs, force=args.force, resume=args.resume)
    if args.resume and not (out / "checkpoint.safetensors").is_file():
        raise UserError(f"{out}: no run to resume (no checkpoint.safetensors there)")
    created = not out.exists()
    prepare_out_dir(out, inputs, force=args.force, resume=args.resume)
    try:
        trainer = train(cfg, out, resume=args.resume, force=args.force)
    except BaseException:
        if created:  # a refused or failed start leaves no empty run folder behind
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    last = [h for h in trainer.history if h["kind"] == "train"][-1:]
    if last:
        print(f"step {last[0]['step']}: loss {last[0]['loss']:.4f} "
              f"(triplet {last[0]['triplet']:.4f}, koleo {last[0]['koleo']:.3f})")
    print(f"run: {args.out}")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import baseline_recalls, catalyzer_recalls, lattice_codes

    cfg, net = load_run(args.run, best=args.best)
    inputs = [*run_files(args.run), *data_inputs(cfg)]
    if args.json:
        prepare_out_file(args.json, inputs, force=args.force)
    d = cfg.data
    splits = load_data(d)
    result = catalyzer_recalls(net, splits, cfg.codes)
    if args.baselines:
        result.update(baseline_recalls(splits))
    codes = lattice_codes(net.d_out) if cfg.codes == "lattice" else {}
    label = lambda r: f"recall@{r}" if isinstance(r, int) else r  # noqa: E731 ("10@10")
    emit_json({name: {**{label(r): v for r, v in rec.items()}, **codes.get(name, {})}
               for name, rec in result.items()}, args.json)
    return 0


def cmd_index_build(args) -> int:
    from .index import CatalyzerIndex

    if args.shards < 1:
        raise UserError(f"--shards {args.shards}: must be >= 1")
    run = check_input(args.run, "run", folder=True, register=False)
    vectors = check_input(args.vectors, "vectors")
    cfg, net = load_run(run, best=args.best)
    data = data_inputs_if_present(cfg)
    inputs = [vectors, *data, *run_files(run)]
    out = out_file(args.out, inputs, args.force, ".safetensors", "indexes")
    if cfg.codes != "lattice":
        raise UserError(f"{run}: a run with codes={cfg.codes}; the index codes the outputs of "
                        "a lattice catalyzer (codes=lattice)")
    if args.r2 is not None:
        why = sphere_problem(net.d_out, args.r2)
        if why:
            raise UserError(f"--r2 {args.r2}: {why}")
    x = read_vectors(vectors, "vectors")
    index = CatalyzerIndex(net, r2=args.r2, shards=args.shards, keep_vectors=args.keep_vectors)
    weights = "best.safetensors" if args.best else "checkpoint.safetensors"
    index.sources = {"vectors": str(vectors.resolve()), "run": str((run / weights).resolve())}
    for i, path in enumerate(data):  # "data", then "data1", ... (official files)
        index.sources["data" if i == 0 else f"data{i}"] = str(path.resolve())
    index.reserve(len(x))  # one buffer of the final size: no slack, no copy
    for i in range(0, len(x), CHUNK):
        index.add(x[i:i + CHUNK], what=str(vectors), offset=i)
    index.save(out)
    print(f"{out}: {index.ntotal} vectors, {index.codec.bits}-bit codes (r2={index.codec.r2}), "
          f"{index.bytes_per_vector} bytes per vector searchable")
    return 0


def data_inputs_if_present(cfg: CatalyzerConfig) -> list[Path]:
    """The run's data files, when they are still there (an index build does not read them)."""
    return [path for path, _ in data_files(cfg) if path.exists()]


def cmd_index_search(args) -> int:
    from .index import CatalyzerIndex

    if args.k < 1:
        raise UserError(f"--k {args.k}: must be >= 1")
    if args.rerank < 0:
        raise UserError(f"--rerank {args.rerank}: must be >= 0 (0: no re-ranking)")
    if args.shortlist < 1:
        raise UserError(f"--shortlist {args.shortlist}: must be >= 1")
    index_path = check_input(args.index, "index")
    queries = check_input(args.queries, "queries")
    index = CatalyzerIndex.load(index_path, mmap=args.mmap, fast_scan=args.fast_scan)
    index.shortlist, index.bf16 = args.shortlist, args.bf16
    # the files the index was built from are inputs too: ids never replace the dataset
    built_from = [Path(p) for p in index.sources.values()]
    out = out_file(args.out, [index_path, queries, *built_from], args.force, ".ivecs",
                   "ids") if args.out else None
    if args.k > index.ntotal:
        raise UserError(f"--k {args.k}: must be between 1 and the {index.ntotal} indexed "
                        "vectors")
    if args.rerank and index.vectors is None:
        raise UserError(f"--rerank {args.rerank}: {index_path} keeps no raw vectors to re-rank "
                        "(build it with --keep-vectors)")
    q = read_vectors(queries, "queries")
    _, ids = index.search(q, args.k, rerank=args.rerank, what=str(queries))
    if out is not None:
        write_vecs(out, ids.astype(np.int32))
        print(f"{out}: {len(ids)} x {args.k} ids")
    else:
        np.savetxt(sys.stdout, ids, fmt="%d")
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    cfg = config_from_args(CatalyzerConfig, PRESETS, args)
    inputs = data_inputs(cfg)
    if args.json:
        prepare_out_file(args.json, inputs, force=args.force)
    if args.plot:
        if not args.curves:
            raise UserError(f"--plot {args.plot}: draws the speed curves; add --curves")
        if args.json and Path(args.plot).resolve() == Path(args.json).resolve():
            raise UserError(f"{args.plot}: --plot and --json name the same file")
        out_file(args.plot, inputs, args.force, ".png", "plots")
    result = run_bench(cfg, curves=args.curves)
    if args.plot:
        from .curves import plot_curves
        plot_curves(result["curves"], args.plot, f"{result['source']}: recall@10 vs "
                    f"queries/s, {result['threads']} thread(s)")
    emit_results(result, args.json)
    return 0


def parse_list(text: str, flag: str, kind: type) -> list:
    """``"0,0.01,0.05"`` -> ``[0.0, 0.01, 0.05]``; anything else is one line naming ``flag``."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} {text}: expected comma-separated {kind.__name__} values"
                        ) from None
    if not values:
        raise UserError(f"{flag} {text!r}: give at least one value")
    return values


def cmd_tune(args) -> int:
    from .tune import check_grid, check_validation, tune

    cfg = config_from_args(CatalyzerConfig, PRESETS, args)
    d_outs = parse_list(args.d_outs, "--d-outs", int)
    lambdas = parse_list(args.lambdas, "--lambdas", float)
    check_grid(d_outs, lambdas, args.bits)
    check_validation(cfg.data.n_train, args.valid_queries, args.valid_base, cfg)
    inputs = data_inputs(cfg)
    if args.json:
        prepare_out_file(args.json, inputs, force=args.force)
    out = prepare_out_dir(args.out, inputs, force=args.force)
    d = cfg.data
    splits = load_data(d)
    summary = tune(cfg, out, splits, d_outs, lambdas, args.bits, args.valid_queries,
                   args.valid_base, force=args.force)
    emit_results(summary, out / "tune.json")
    if args.json:
        write_results(args.json, summary)
    c = summary["chosen"]
    print(f"chosen: d_out={c['d_out']} lambda={c['lambda']:g} r2={c['r2']} ({c['bits']} bits), "
          f"validation recall@10 {c['valid_recall10']:.4f}; {c['checkpoint']}")
    return 0


def cmd_table(args) -> int:
    from .table import Table, run_table, table_settings, write_marker
    from .tune import check_grid, check_validation

    cfg = config_from_args(CatalyzerConfig, PRESETS, args)
    d_outs = parse_list(args.d_outs, "--d-outs", int)
    lambdas = parse_list(args.lambdas, "--lambdas", float)
    seeds = parse_list(args.seeds, "--seeds", int)
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UserError(f"--seeds {args.seeds}: give distinct seeds >= 0")
    check_grid(d_outs, lambdas, 64)
    for d in d_outs:  # every budget needs a radius on each candidate
        for bits in (16, 32):
            check_grid([d], lambdas, bits)
    check_validation(cfg.data.n_train, args.valid_queries, args.valid_base, cfg)
    inputs = data_inputs(cfg)
    json_path = Path(args.json)
    if json_path.suffix != ".json":
        raise UserError(f"--json {json_path}: results are written as a .json file")
    if json_path.exists() and not (args.resume or args.force):
        raise UserError(f"--json {json_path}: already exists; continue that table with "
                        "--resume, replace it with --force, or choose another file")
    prepare_out_file(json_path, inputs, force=args.force)
    out = prepare_out_dir(args.out, inputs, force=args.force, resume=args.resume)
    settings = table_settings(cfg, d_outs, lambdas, seeds, args.valid_queries,
                              args.valid_base, not args.no_binary, not args.no_baselines)
    table = Table(json_path, settings, resume=args.resume)
    write_marker(out, settings, resume=args.resume)
    splits = load_data(cfg.data)
    figures = run_table(cfg, out, splits, table, d_outs, lambdas, seeds, args.valid_queries,
                        args.valid_base, binary=not args.no_binary,
                        baselines=not args.no_baselines)
    for name, row in figures["rows"].items():
        print(f"{name:18s} recall@10 {row['recall10_text']}")
    return 0


def cmd_demo(args) -> int:
    from .report import demo

    cfg = config_from_args(CatalyzerConfig, PRESETS, args)
    out = prepare_out_dir(args.out, data_inputs(cfg), force=args.force)
    print(f"report: {demo(cfg, out)}")
    return 0


def commands() -> Commands:
    cli = Commands("dldiy-catalyzer", sys.modules["dldiy_catalyzer"].__doc__, presets=PRESETS,
                   default_preset="quick", quiet_loggers=("faiss",))
    cli.add("data", cmd_data, "build and cache the database/train/query splits")
    c = cli.add("train", cmd_train, "train a catalyzer (triplet + KoLeo)")
    add_output_args(c, help="run folder", resume=True)
    c = cli.add("eval", cmd_eval, "recall@1/10/100 of a trained run", config=False)
    c.add_argument("--run", required=True)
    c.add_argument("--best", action="store_true",
                   help="the run's best validation checkpoint (runs made by tune)")
    c.add_argument("--baselines", action="store_true", help="also PQ, OPQ, LSH, ITQ, raw lattice")
    add_output_args(c, flag="--json", required=False, help="write the recalls here")
    index = cli.sub.add_parser("index", help="build or search a CatalyzerIndex").add_subparsers(
        dest="index_command", required=True)
    c = cli.add("build", cmd_index_build, "encode vectors with a trained run", config=False,
                parent=index)
    c.add_argument("--run", required=True)
    c.add_argument("--best", action="store_true",
                   help="the run's best validation checkpoint (runs made by tune)")
    c.add_argument("--vectors", required=True, help=".fvecs, .bvecs or .npy")
    add_output_args(c, help="index file (.safetensors)")
    c.add_argument("--r2", type=int, default=None,
                   help="Zn sphere radius^2 (default: the largest of a 64-bit code, 79 for 24-d)")
    c.add_argument("--shards", type=int, default=1)
    c.add_argument("--keep-vectors", action="store_true", help="store raw vectors to re-rank")
    c = cli.add("search", cmd_index_search, "k nearest neighbours of query vectors",
                config=False, parent=index)
    c.add_argument("--index", required=True)
    c.add_argument("--queries", required=True)
    c.add_argument("--k", type=int, default=10)
    c.add_argument("--rerank", type=int, default=0, help="re-rank this many candidates exactly")
    c.add_argument("--mmap", action="store_true",
                   help="memory-map the index's points and raw vectors instead of reading them")
    c.add_argument("--fast-scan", action="store_true",
                   help="search 4-bit codes of the points with faiss PQ fast-scan (12 B/vector "
                        "at 64 bits), the shortlist re-scored exactly")
    c.add_argument("--shortlist", type=int, default=2,
                   help="fast-scan candidates per result, re-scored exactly (default 2)")
    c.add_argument("--bf16", action="store_true",
                   help="embed the queries under bfloat16 autocast (faster, rankings move a "
                        "little)")
    add_output_args(c, required=False, help=".ivecs file for the ids (default: print)")
    c = cli.add("tune", cmd_tune, "pick lambda and (d_out, r2) at a bit budget on a validation "
                "split carved from the training set (never the queries)")
    add_output_args(c, help="tune folder: one run per candidate and tune.json")
    c.add_argument("--json", help="also write the summary here (a results file)")
    c.add_argument("--bits", type=int, default=64, help="code size budget (default 64)")
    _validation_args(c, "24,32,40", "0,0.01,0.05,0.1", 1000, 10_000)
    c = cli.add("table", cmd_table, "the paper's tables over seeds: catalyzer + lattice / sign "
                "/ OPQ and the PQ, OPQ, rr-PQ, LSH baselines, settings chosen on validation")
    add_output_args(c, help="table folder: the tuning and per-seed runs", resume=True)
    c.add_argument("--json", required=True,
                   help="results file, rewritten after every finished job (--resume continues)")
    c.add_argument("--seeds", default="1,2,3", help="seeds of every row (default 1,2,3)")
    _validation_args(c, "24,32", "0.01,0.05", 500, 2000)
    c.add_argument("--no-binary", action="store_true", help="leave out the sign-code rows")
    c.add_argument("--no-baselines", action="store_true",
                   help="leave out the PQ, OPQ, rr-PQ and LSH rows (e.g. measured by another "
                        "table on the same split)")
    c = cli.add("bench", cmd_bench, "recall and speed against faiss PQ/OPQ/LSH/IndexLattice")
    add_output_args(c, flag="--json", required=False, help="write the figures here")
    c.add_argument("--curves", action="store_true",
                   help="also recall@10 vs queries/s at equal bytes per vector (faiss PQ, OPQ, "
                        "fast-scan, IVF)")
    c.add_argument("--plot", help="draw the curves into this .png file (with --curves)")
    c = cli.add("demo", cmd_demo, "train on a GloVe-50 subset and write a report")
    add_output_args(c, required=False, help="report folder (default reports/catalyzer)")
    c.set_defaults(out="reports/catalyzer")
    return cli


def _validation_args(c, d_outs: str, lambdas: str, queries: int, base: int) -> None:
    """The candidate grid and the validation split carved from the training set (tune, table)."""
    c.add_argument("--d-outs", default=d_outs, help="lattice output dimensions to try")
    c.add_argument("--lambdas", default=lambdas, help="KoLeo weights to try")
    c.add_argument("--valid-queries", type=int, default=queries,
                   help="validation queries carved from the training set")
    c.add_argument("--valid-base", type=int, default=base,
                   help="validation database vectors carved from the training set")

def main(argv: Sequence[str] | None = None) -> int:
    return commands().main(argv)
