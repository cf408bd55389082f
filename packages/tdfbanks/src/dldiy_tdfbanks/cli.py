"""``dldiy-tdfbanks {data build,features,train,eval,experiment,bench,demo}``."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dldiy_core import (
    Commands,
    UserError,
    add_output_args,
    atomic_path,
    check_input,
    check_outputs,
    config_from_args,
    emit_json,
    emit_results,
    make_dir,
    os_error,
    prepare_out_file,
)

from . import markers  # noqa: F401 (declares this package's run folders)
from .config import FRONTENDS, PRESETS, Config

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def _flag(name: str, value: float, *, ge: float | None = None, gt: float | None = None) -> None:
    """A numeric command-line flag within range (finite), else one line naming it."""
    if not math.isfinite(value) or (ge is not None and not value >= ge) or \
            (gt is not None and not value > gt):
        bound = f">= {ge:g}" if ge is not None else f"> {gt:g}"
        raise UserError(f"{name} {value:g}: must be a finite number {bound}")


def cmd_data_build(args) -> int:
    from .corpus import CorpusConfig, build_corpus, prepare_build
    from .data import default_corpus

    _flag("--hours", args.hours, gt=0)
    _flag("--seed", args.seed, ge=0)
    cfg = CorpusConfig(train_hours=args.hours, seed=args.seed,
                       engines=list(dict.fromkeys(args.engines)))
    out = Path(args.out) if args.out else default_corpus()
    prepare_build(out, cfg, resume=args.resume, force=args.force)
    summary = build_corpus(out, cfg)
    for split, v in summary["splits"].items():
        print(f"{split}: {v['hours']:.2f} h, {v['utterances']} utterances, {v['speakers']} "
              f"speakers, skipped {v['skipped'] or 'none'}")
    print(f"corpus: {out} (summary in corpus.json)")
    return 0


def _audio_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    check_input(path, "audio folder", folder=True)
    try:
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES
                       and p.is_file())
    except OSError as e:
        raise os_error(e, None, "read audio folder") from None
    if not files:
        raise UserError(f"{path}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return files


def cmd_features(args) -> int:
    from .audio import load_audio
    from .experiment import load_run
    from .models import make_frontend

    run = check_input(args.run, "run", folder=True) if args.run else None
    src = Path(args.input)
    if not src.exists() and not src.is_symlink():
        raise UserError(f"{src}: audio file or folder not found")
    files = _audio_files(src)
    out = Path(args.out)
    if src.is_file():
        dests = [out]
        prepare_out_file(out, [src, run], force=args.force)
    else:
        dests = [out / f.relative_to(src).with_suffix(".npy") for f in files]
        if out.exists() and not out.is_dir():
            raise UserError(f"{out}: is a file; give a folder for a folder of audio")
        check_outputs([out, *dests], [src, run, *files], force=args.force)
    if len(set(dests)) < len(dests):
        raise UserError(f"{src}: two audio files share a name (e.g. a.wav and a.flac) and would "
                        "write the same .npy")
    # the front end eval scores: the run's best dev checkpoint, when it kept one
    frontend = load_run(run, best=True)[1].frontend if run else make_frontend(args.frontend)
    frontend.eval()
    waves = [load_audio(f, resample=args.resample) for f in files]  # check all before writing
    feats = []
    for f, wave in zip(files, waves, strict=True):
        with torch.no_grad():
            x = frontend(torch.from_numpy(wave)[None])[0][0].numpy()
        if not np.isfinite(x).all():
            raise UserError(f"{f}: its features are not finite (NaN or infinite); nothing "
                            "written")
        feats.append(x.astype(np.float32))
    if src.is_dir():
        make_dir(out)
    for dest, x in zip(dests, feats, strict=True):
        with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
            np.save(fh, x)
        print(f"{dest}: {x.shape[0]} x {x.shape[1]} ({args.run or args.frontend})")
    return 0


def cmd_train(args) -> int:
    from .train import train

    cfg = config_from_args(Config, PRESETS, args)
    trainer = train(cfg, args.out, resume=args.resume, force=args.force)
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

    run = check_input(args.run, "run", folder=True)
    cfg, model = load_run(run, best=True)  # model selection on dev, when the run did it
    scored = "best.safetensors" if (Path(run) / "best.safetensors").is_file() else \
        "checkpoint.safetensors"
    corpus = Path(args.corpus) if args.corpus else corpus_path(cfg, build=False)
    check_input(corpus, "corpus", folder=True)
    if args.json:
        prepare_out_file(args.json, [run, corpus], force=args.force)
    result: dict = {"checkpoint": scored}
    for split in args.split:
        data = load_split(corpus, split, EVAL_MAX_SECONDS, 0.0, cfg.data.resample)
        result[split] = evaluate(model, data)
    emit_json(result, args.json)
    return 0


def cmd_experiment(args) -> int:
    from .experiment import run_experiment

    cfg = config_from_args(Config, PRESETS, args)
    out = run_experiment(cfg, Path(args.out), resume=args.resume, force=args.force,
                         reuse=Path(args.reuse) if args.reuse else None)
    print(f"report: {out}")
    return 0


def cmd_bench(args) -> int:
    from .audio import MIN_SAMPLES, SAMPLE_RATE
    from .bench import run_bench

    _flag("--batch", args.batch, ge=1)
    _flag("--seconds", args.seconds, ge=MIN_SAMPLES / SAMPLE_RATE)
    _flag("--repeats", args.repeats, ge=1)
    if args.json:
        prepare_out_file(args.json, force=args.force)
    emit_results(run_bench(args.batch, args.seconds, args.repeats), args.json)
    return 0


def cmd_demo(args) -> int:
    from .demo import demo

    cfg = config_from_args(Config, PRESETS, args)
    print(f"report: {demo(cfg, Path(args.out), force=args.force)}")
    return 0


def commands() -> Commands:
    cli = Commands("dldiy-tdfbanks", sys.modules["dldiy_tdfbanks"].__doc__, presets=PRESETS,
                   default_preset="quick")
    data = cli.sub.add_parser("data", help="build the synthesized phone-aligned corpus"
                              ).add_subparsers(dest="data_command", required=True)
    c = cli.add("build", cmd_data_build, "synthesize the TIMIT-layout corpus (resumable)",
                config=False, parent=data)
    add_output_args(c, required=False, resume=True,
                    help="corpus folder (default: the cache, where train looks); a folder that "
                         "holds a build needs --resume (continue it) or --force (start over)")
    c.add_argument("--hours", type=float, default=2.2, help="hours of training audio")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--engines", nargs="+", default=["festival", "espeak"],
                   choices=["festival", "espeak", "piper"],
                   help="speech engines (piper needs the corpus extra: pip install "
                        "'dldiy-tdfbanks[corpus]'; see the README on its voice's licence)")
    c = cli.add("features", cmd_features, "a wav file or folder -> features .npy [40, frames]",
                config=False)
    c.add_argument("input", help="audio file or folder (searched recursively)")
    add_output_args(c, help=".npy file (or folder for a folder input)")
    c.add_argument("--frontend", default="tdfb-fixed", choices=FRONTENDS)
    c.add_argument("--run", help="use the front end of this trained run instead (its best "
                   "dev checkpoint when it kept one, as eval)")
    c.add_argument("--resample", action="store_true", help="resample other rates to 16 kHz")
    c = cli.add("train", cmd_train, "train a recognizer with CTC")
    add_output_args(c, resume=True, help="run folder")
    c = cli.add("eval", cmd_eval, "phone error rate of a trained run (its best-on-dev "
                "checkpoint when it has one)", config=False)
    c.add_argument("--run", required=True)
    c.add_argument("--corpus", help="TIMIT-layout folder (default: the run's)")
    c.add_argument("--split", nargs="+", default=["dev", "test"], choices=["dev", "test"])
    add_output_args(c, flag="--json", required=False, help="write the result here")
    c = cli.add("experiment", cmd_experiment, "train every front end, write the PER table")
    add_output_args(c, required=False, resume=True,
                    help="experiment folder (default reports/tdfbanks-experiment); one that holds "
                         "an experiment needs --resume (finished front ends are kept, an "
                         "interrupted one resumes) or --force (start over)")
    c.add_argument("--reuse", metavar="FILE",
                   help="take the runs recorded in this results file of an experiment with "
                        "the same settings (its experiment.json: the first seed and its "
                        "front-end learning rates, and any later seed) and train only the "
                        "missing ones")
    c.set_defaults(out="reports/tdfbanks-experiment")
    c = cli.add("bench", cmd_bench, "front-end throughput against MFSC and the direct conv",
                config=False)
    add_output_args(c, flag="--json", required=False, help="write the figures here")
    c.add_argument("--batch", type=int, default=8)
    c.add_argument("--seconds", type=float, default=4.0, help="seconds per batch item")
    c.add_argument("--repeats", type=int, default=5)
    c = cli.add("demo", cmd_demo, "small corpus, MFSC vs TD-filterbanks, filter plots",
                default_preset="demo")
    add_output_args(c, required=False,
                    help="report folder (default reports/tdfbanks); a rerun reuses the models "
                         "it trained with the same settings, --force trains them again")
    c.set_defaults(out="reports/tdfbanks")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    return commands().main(argv)
