"""``dldiy-tdfbanks {data build,features,train,eval,experiment,bench,demo}``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dldiy_core import (
    Commands,
    UserError,
    atomic_path,
    config_from_args,
    emit_json,
    emit_results,
)

from .config import FRONTENDS, PRESETS, Config

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def cmd_data_build(args) -> int:
    from .corpus import CorpusConfig, build_corpus
    from .data import default_corpus

    if args.hours <= 0:
        raise UserError(f"--hours must be positive, not {args.hours}")
    cfg = CorpusConfig(train_hours=args.hours, seed=args.seed)
    out = Path(args.out) if args.out else default_corpus()
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a corpus folder")
    summary = build_corpus(out, cfg)
    for split, v in summary["splits"].items():
        print(f"{split}: {v['hours']:.2f} h, {v['utterances']} utterances, {v['speakers']} "
              f"speakers, skipped {v['skipped'] or 'none'}")
    print(f"corpus: {out} (summary in corpus.json)")
    return 0


def _audio_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise UserError(f"{path}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return files


def cmd_features(args) -> int:
    from .audio import load_audio
    from .experiment import load_run
    from .models import make_frontend

    frontend = load_run(args.run)[1].frontend if args.run else make_frontend(args.frontend)
    frontend.eval()
    src = Path(args.input)
    files = _audio_files(src)
    out = Path(args.out)
    if src.is_file():
        dests = [out]
    else:
        dests = [out / f.relative_to(src).with_suffix(".npy") for f in files]
    if src.is_file() and out.is_dir():
        raise UserError(f"{out}: is a folder; give a .npy file for one input file")
    if src.is_dir() and out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file; give a folder for a folder of audio")
    if len(set(dests)) < len(dests):
        raise UserError(f"{src}: two audio files share a name (e.g. a.wav and a.flac) and would "
                        "write the same .npy")
    waves = [load_audio(f, resample=args.resample) for f in files]  # check all before writing
    for dest, wave in zip(dests, waves, strict=True):
        with torch.no_grad():
            feats = frontend(torch.from_numpy(wave)[None])[0][0].numpy()
        with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
            np.save(fh, feats.astype(np.float32))
        print(f"{dest}: {feats.shape[0]} x {feats.shape[1]} ({args.run or args.frontend})")
    return 0


def cmd_train(args) -> int:
    from .train import train

    cfg = config_from_args(Config, PRESETS, args)
    trainer = train(cfg, args.out, resume=args.resume)
    last = [h for h in trainer.history if h["kind"] == "train"][-1:]
    if last:
        print(f"step {last[0]['step']}: CTC loss {last[0]['loss']:.4f}")
    print(f"run: {args.out}")
    return 0


def cmd_eval(args) -> int:
    from .data import load_split
    from .evaluate import evaluate
    from .experiment import EVAL_MAX_SECONDS, load_run
    from .train import corpus_path

    cfg, model = load_run(args.run)
    corpus = Path(args.corpus) if args.corpus else corpus_path(cfg, build=False)
    result = {}
    for split in args.split:
        data = load_split(corpus, split, EVAL_MAX_SECONDS, 0.0, cfg.data.resample)
        result[split] = evaluate(model, data)
    emit_json(result, args.json)
    return 0


def cmd_experiment(args) -> int:
    from .experiment import run_experiment

    cfg = config_from_args(Config, PRESETS, args)
    print(f"report: {run_experiment(cfg, Path(args.out))}")
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    emit_results(run_bench(args.batch, args.seconds, args.repeats), args.json)
    return 0


def cmd_demo(args) -> int:
    from .report import demo

    cfg = config_from_args(Config, PRESETS, args)
    print(f"report: {demo(cfg, Path(args.out))}")
    return 0


def commands() -> Commands:
    cli = Commands("dldiy-tdfbanks", sys.modules["dldiy_tdfbanks"].__doc__, presets=PRESETS,
                   default_preset="quick")
    data = cli.sub.add_parser("data", help="build the synthesized phone-aligned corpus"
                              ).add_subparsers(dest="data_command", required=True)
    c = cli.add("build", cmd_data_build, "synthesize the TIMIT-layout corpus (resumable)",
                config=False, parent=data)
    c.add_argument("--out", help="corpus folder (default: the cache, where train looks)")
    c.add_argument("--hours", type=float, default=2.2, help="hours of training audio")
    c.add_argument("--seed", type=int, default=0)
    c = cli.add("features", cmd_features, "a wav file or folder -> features .npy [40, frames]",
                config=False)
    c.add_argument("input", help="audio file or folder (searched recursively)")
    c.add_argument("--out", required=True, help=".npy file (or folder for a folder input)")
    c.add_argument("--frontend", default="tdfb-fixed", choices=FRONTENDS)
    c.add_argument("--run", help="use the front end of this trained run instead")
    c.add_argument("--resample", action="store_true", help="resample other rates to 16 kHz")
    c = cli.add("train", cmd_train, "train a recognizer with CTC")
    c.add_argument("--out", required=True, help="run folder")
    c.add_argument("--resume", action="store_true", help="continue the run in --out")
    c = cli.add("eval", cmd_eval, "phone error rate of a trained run", config=False)
    c.add_argument("--run", required=True)
    c.add_argument("--corpus", help="TIMIT-layout folder (default: the run's)")
    c.add_argument("--split", nargs="+", default=["dev", "test"], choices=["dev", "test"])
    c.add_argument("--json", help="write the result here")
    c = cli.add("experiment", cmd_experiment, "train every front end, write the PER table")
    c.add_argument("--out", default="reports/tdfbanks-experiment", help="experiment folder")
    c = cli.add("bench", cmd_bench, "front-end throughput against MFSC and the direct conv",
                config=False)
    c.add_argument("--json", help="write the figures here")
    c.add_argument("--batch", type=int, default=8)
    c.add_argument("--seconds", type=float, default=4.0, help="seconds per batch item")
    c.add_argument("--repeats", type=int, default=5)
    c = cli.add("demo", cmd_demo, "small corpus, MFSC vs TD-filterbanks, filter plots",
                default_preset="demo")
    c.add_argument("--out", default="reports/tdfbanks", help="report folder")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    return commands().main(argv)
