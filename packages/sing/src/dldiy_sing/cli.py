"""``dldiy-sing {data,train,eval,generate,export,bench,demo}``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from dldiy_core import (
    Commands,
    config_from_args,
    emit_results,
    prepare_out_dir,
    prepare_out_file,
)

from .config import PRESETS, SingConfig


def cmd_data(args) -> int:
    from .nsynth import NSynth
    from .render import build_corpus

    cfg = config_from_args(SingConfig, PRESETS, args)
    folder = build_corpus(cfg.data, force=args.force)
    corpus = NSynth(folder)
    split = corpus.split(cfg.data.split_seed, cfg.data.valid_ratio, cfg.data.test_ratio)
    print(f"{folder}: {len(corpus)} notes, {len(corpus.instruments)} instruments, "
          f"velocities {corpus.velocities}; split train {len(split['train'])}, "
          f"valid {len(split['valid'])}, test {len(split['test'])}")
    return 0


def cmd_train(args) -> int:
    from .train import train

    cfg = config_from_args(SingConfig, PRESETS, args)
    train(cfg, args.out, stage=args.stage, resume=args.resume)
    print(f"run: {args.out}")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate_runs

    if args.json:
        prepare_out_file(args.json, inputs=args.run, force=args.force)
    emit_results(evaluate_runs(args.run, splits=args.splits, limit=args.limit), args.json)
    return 0


def cmd_generate(args) -> int:
    from .generate import generate_cli

    for path in generate_cli(args):
        print(path)
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    cfg = config_from_args(SingConfig, PRESETS, args)
    if args.json:
        prepare_out_file(args.json, inputs=[args.run], force=args.force)
    emit_results(run_bench(cfg, repeats=args.repeats, run=args.run), args.json)
    return 0


def cmd_demo(args) -> int:
    from .report import demo

    cfg = config_from_args(SingConfig, PRESETS, args)
    prepare_out_dir(args.out, inputs=[args.run])
    page = demo(cfg, Path(args.out), run=args.run, force=args.force, train_quick=args.train,
                limit=args.limit)
    print(f"report: {page}")
    return 0


def cmd_export(args) -> int:
    from dldiy_core import UserError

    from .evaluate import export_model

    if Path(args.out).exists() and not args.force:
        raise UserError(f"{args.out}: already exists (pass --force to replace it)")
    prepare_out_file(args.out, inputs=[args.run], force=args.force)
    print(export_model(args.run, args.out))
    return 0


def commands() -> Commands:
    cli = Commands("dldiy-sing", sys.modules["dldiy_sing"].__doc__, presets=PRESETS,
                   default_preset="small")
    c = cli.add("data", cmd_data, "render (or check) the NSynth-like corpus and show its split")
    c.add_argument("--force", action="store_true", help="render again even if cached")
    c = cli.add("train", cmd_train, "train SING: autoencoder, LSTM, end-to-end fine tuning")
    c.add_argument("--out", required=True, help="run folder (one subfolder per stage)")
    c.add_argument("--stage", default="all", choices=["all", "ae", "seq", "sing"],
                   help="run one stage (the earlier ones must be in --out)")
    c.add_argument("--resume", action="store_true", help="continue the stages in --out")
    c = cli.add("eval", cmd_eval, "spectral loss of a run on train/valid/test against the "
                "nearest-neighbour baseline and the autoencoder", config=False)
    c.add_argument("--run", required=True, action="append",
                   help="run folder; repeat for several seeds (mean and std over runs)")
    c.add_argument("--splits", default="train,valid,test")
    c.add_argument("--limit", type=int, default=0, help="at most this many notes per split")
    c.add_argument("--json", help="write the figures here (a results file)")
    c.add_argument("--force", action="store_true", help="replace an existing --json file")
    c = cli.add("generate", cmd_generate, "generate notes of a trained run as 16 kHz WAVs",
                config=False)
    c.add_argument("--run", required=True)
    c.add_argument("--instrument", help="instrument name (see the error for the list)")
    c.add_argument("--pitch", type=int, help="MIDI pitch 0..127")
    c.add_argument("--velocity", type=int, help="MIDI velocity of the corpus (e.g. 100)")
    c.add_argument("--list", help="text file: 'instrument pitch velocity' per line")
    c.add_argument("-o", "--out", required=True,
                   help="WAV file (one note) or folder (--list)")
    c.add_argument("--force", action="store_true", help="replace existing WAV files")
    c = cli.add("bench", cmd_bench, "generation speed (paper and preset sizes, bf16 vs fp32)")
    c.add_argument("--json", help="write the figures here (a results file)")
    c.add_argument("--force", action="store_true", help="replace an existing --json file")
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--run", help="a trained run: also measure the spectral loss change of its "
                   "bf16 generations")
    c = cli.add("demo", cmd_demo, "render a small corpus, train or load a model, generate "
                "notes, write a report", default_preset="quick")
    c.add_argument("--out", default="reports/sing", help="report folder")
    c.add_argument("--run", help="use this trained run (folder or exported model file) instead "
                   "of the packaged small model")
    c.add_argument("--train", action="store_true",
                   help="train the quick preset here instead (several minutes)")
    c.add_argument("--limit", type=int, default=48,
                   help="at most this many notes scored per split (0: all)")
    c.add_argument("--force", action="store_true", help="replace an existing demo run")
    c = cli.add("export", cmd_export, "write a run's SING weights (float16), config and "
                "training curves to one file (what demo and generate --run FILE load)",
                config=False)
    c.add_argument("--run", required=True, help="a trained run folder")
    c.add_argument("-o", "--out", required=True, help="the model file (.safetensors)")
    c.add_argument("--force", action="store_true", help="replace an existing file")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    return commands().main(argv)
