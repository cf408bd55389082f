"""``dldiy-catalyzer {data,train,eval,index,bench,demo}``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dldiy_core import (
    CheckpointError,
    Commands,
    UserError,
    config_from_args,
    emit_json,
    emit_results,
    from_dict,
    load_checkpoint,
    load_module_state,
)

from .config import PRESETS, CatalyzerConfig
from .data import build_splits
from .models import Catalyzer
from .vecs import DTYPES, read_vecs, write_vecs


def load_run(run: str | Path) -> tuple[CatalyzerConfig, Catalyzer]:
    """The config and trained network of a ``train`` run folder."""
    path = Path(run) / "checkpoint.safetensors"
    state = load_checkpoint(path)
    try:
        cfg = from_dict(CatalyzerConfig, state["config"])
        d_in = state["model"]["0.weight"].shape[1]
    except (KeyError, UserError) as e:
        raise CheckpointError(f"{path}: not a catalyzer run ({e})") from None
    net = Catalyzer(d_in, cfg.model.d_out, cfg.model.hidden)
    load_module_state(net, state["model"], path)
    return cfg, net.eval()


def read_vectors(path: str | Path) -> np.ndarray:
    """``.fvecs/.bvecs`` or ``.npy`` ``[n, d]``."""
    path = Path(path)
    if path.suffix in DTYPES:
        return read_vecs(path)
    if path.suffix == ".npy":
        try:
            x = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: not a readable .npy file ({e})") from None
        if x.ndim != 2 or len(x) == 0:
            raise UserError(f"{path}: expected a non-empty [n, d] array, got shape {x.shape}")
        return x
    raise UserError(f"{path}: unknown vector file type (expected .fvecs, .bvecs or .npy)")


def cmd_data(args) -> int:
    cfg = config_from_args(CatalyzerConfig, PRESETS, args)
    d = cfg.data
    splits = build_splits(d.source, d.n_base, d.n_train, d.n_query, d.seed)
    print(f"{splits.folder}: database {len(splits.xb)}, train {len(splits.xt)}, "
          f"queries {len(splits.xq)}, d={splits.d}")
    return 0


def cmd_train(args) -> int:
    from .train import train

    cfg = config_from_args(CatalyzerConfig, PRESETS, args)
    trainer = train(cfg, args.out, resume=args.resume)
    last = [h for h in trainer.history if h["kind"] == "train"][-1:]
    if last:
        print(f"step {last[0]['step']}: loss {last[0]['loss']:.4f} "
              f"(triplet {last[0]['triplet']:.4f}, koleo {last[0]['koleo']:.3f})")
    print(f"run: {args.out}")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import baseline_recalls, catalyzer_recalls

    cfg, net = load_run(args.run)
    d = cfg.data
    splits = build_splits(d.source, d.n_base, d.n_train, d.n_query, d.seed)
    result = catalyzer_recalls(net, splits, cfg.codes)
    if args.baselines:
        result.update(baseline_recalls(splits))
    emit_json({name: {f"recall@{r}": v for r, v in rec.items()}
               for name, rec in result.items()}, args.json)
    return 0


def cmd_index_build(args) -> int:
    from .index import CatalyzerIndex

    _, net = load_run(args.run)
    x = read_vectors(args.vectors)
    index = CatalyzerIndex(net, r2=args.r2, shards=args.shards, keep_vectors=args.keep_vectors)
    for i in range(0, len(x), 100_000):
        index.add(x[i:i + 100_000], what=str(args.vectors))
    index.save(args.out)
    print(f"{args.out}: {index.ntotal} vectors, {index.codec.bits}-bit codes")
    return 0


def cmd_index_search(args) -> int:
    from .index import CatalyzerIndex

    index = CatalyzerIndex.load(args.index)
    q = read_vectors(args.queries)
    _, ids = index.search(q, args.k, rerank=args.rerank, what=str(args.queries))
    if args.out:
        write_vecs(args.out, ids.astype(np.int32))
        print(f"{args.out}: {len(ids)} x {args.k} ids")
    else:
        np.savetxt(sys.stdout, ids, fmt="%d")
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    cfg = config_from_args(CatalyzerConfig, PRESETS, args)
    emit_results(run_bench(cfg), args.json)
    return 0


def cmd_demo(args) -> int:
    from .report import demo

    cfg = config_from_args(CatalyzerConfig, PRESETS, args)
    print(f"report: {demo(cfg, Path(args.out))}")
    return 0


def commands() -> Commands:
    cli = Commands("dldiy-catalyzer", sys.modules["dldiy_catalyzer"].__doc__, presets=PRESETS,
                   default_preset="quick", quiet_loggers=("faiss",))
    cli.add("data", cmd_data, "build and cache the database/train/query splits")
    c = cli.add("train", cmd_train, "train a catalyzer (triplet + KoLeo)")
    c.add_argument("--out", required=True, help="run folder")
    c.add_argument("--resume", action="store_true", help="continue the run in --out")
    c = cli.add("eval", cmd_eval, "recall@1/10/100 of a trained run", config=False)
    c.add_argument("--run", required=True)
    c.add_argument("--baselines", action="store_true", help="also PQ, OPQ, LSH, ITQ, raw lattice")
    c.add_argument("--json", help="write the recalls here")
    index = cli.sub.add_parser("index", help="build or search a CatalyzerIndex").add_subparsers(
        dest="index_command", required=True)
    c = cli.add("build", cmd_index_build, "encode vectors with a trained run", config=False,
                parent=index)
    c.add_argument("--run", required=True)
    c.add_argument("--vectors", required=True, help=".fvecs, .bvecs or .npy")
    c.add_argument("--out", required=True, help="index file (.safetensors)")
    c.add_argument("--r2", type=int, default=79, help="Zn sphere radius^2 (79: 64-bit codes)")
    c.add_argument("--shards", type=int, default=1)
    c.add_argument("--keep-vectors", action="store_true", help="store raw vectors to re-rank")
    c = cli.add("search", cmd_index_search, "k nearest neighbours of query vectors",
                config=False, parent=index)
    c.add_argument("--index", required=True)
    c.add_argument("--queries", required=True)
    c.add_argument("--k", type=int, default=10)
    c.add_argument("--rerank", type=int, default=0, help="re-rank this many candidates exactly")
    c.add_argument("--out", help=".ivecs file for the ids (default: print)")
    c = cli.add("bench", cmd_bench, "recall and speed against faiss PQ/OPQ/LSH/IndexLattice")
    c.add_argument("--json", help="write the figures here")
    c = cli.add("demo", cmd_demo, "train on a GloVe-50 subset and write a report")
    c.add_argument("--out", default="reports/catalyzer", help="report folder")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    return commands().main(argv)
