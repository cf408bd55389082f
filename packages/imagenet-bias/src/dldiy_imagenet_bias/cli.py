"""``dldiy-imagenet-bias {predict,eval,mistakes,study,analyze,attack,explain,criticize,report,
bench,demo}``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from dldiy_core import Commands, UserError, atomic_write_text, config_from_args, write_results

from .config import PRESETS, BiasConfig, check
from .outputs import check_input, prepare_out_dir, prepare_out_file


def _cfg(args) -> BiasConfig:
    cfg = check(config_from_args(BiasConfig, PRESETS, args))
    for value in (cfg.model.weights, cfg.data.labels, cfg.critic.attributes):
        if value:
            check_input(value, "input")
    if cfg.model.name != "lite0" and Path(cfg.model.name).suffix:
        check_input(cfg.model.name, "model file")
    return cfg


def _inputs(cfg: BiasConfig) -> list[str]:
    """Everything a command reads (outputs may not replace any)."""
    ins = [p for p in (cfg.model.weights, cfg.data.labels, cfg.critic.attributes) if p]
    if Path(cfg.model.name).suffix:
        ins.append(cfg.model.name)
    ins += [p for p in cfg.data.images.split("+") if p not in ("clipart", "photos")]
    return ins


def _json_out(args, cfg: BiasConfig) -> Path | None:
    return prepare_out_file(args.json, _inputs(cfg), force=True) if args.json else None


def _results(path: Path | None, figures: dict) -> None:
    print(json.dumps(figures, indent=2, default=str))
    if path:
        write_results(path, figures)


def cmd_predict(args) -> int:
    from .pipeline import evaluate

    cfg = _cfg(args)
    out = _json_out(args, cfg)
    ev = evaluate(cfg, features=False)
    for r in ev.recs:
        top = ", ".join(f"{t['name']} {t['p']:.2f}" for t in r["top"])
        print(f"{r['path']}\t{'ok' if r['top1_ok'] else 'MISTAKE'}\t{r['label']}\t{top}")
    for p, why in ev.images.skipped:
        print(f"skipped: {p}: {why}", file=sys.stderr)
    if out:
        atomic_write_text(out, json.dumps({"records": ev.recs, "skipped": ev.images.skipped},
                                          indent=1) + "\n")
    return 0


def cmd_eval(args) -> int:
    from .pipeline import evaluate, mistakes_summary

    cfg = _cfg(args)
    out = _json_out(args, cfg)
    s = mistakes_summary(evaluate(cfg, features=False))
    figures = {k: s[k] for k in ("n_images", "top1", "top5", "mean_class_top1", "n_mistakes",
                                 "severity_mean", "severity_median", "n_skipped",
                                 "images_per_s")}
    figures["per_label_top1"] = {k: v["top1"] for k, v in s["per_label"].items()}
    figures["per_label_n"] = {k: v["n"] for k, v in s["per_label"].items()}
    figures["labels_worst_first"] = sorted(
        ([k, v["n"], v["top1"], v["top5"]] for k, v in s["per_label"].items()),
        key=lambda row: (row[2], row[0]))
    figures["severity_hist"] = s["severity_hist"]
    figures["confusions"] = s["confusions"][:10]
    _results(out, figures)
    return 0


def cmd_mistakes(args) -> int:
    from .pipeline import evaluate, mistakes_summary

    cfg = _cfg(args)
    out = _json_out(args, cfg)
    ev = evaluate(cfg, features=False)
    s = mistakes_summary(ev)
    print(f"top-1 {s['top1']:.3f}  top-5 {s['top5']:.3f}  mistakes {s['n_mistakes']}  "
          f"mean severity {s['severity_mean']}")
    for c in s["confusions"]:
        print(f"{c['count']:4d}  {c['label']} -> {c['predicted']}")
    print("severity (WordNet edges: mistakes):", s["severity_hist"])
    if out:
        atomic_write_text(out, json.dumps({**s, "records": ev.recs}, indent=1) + "\n")
    return 0


def cmd_study(args) -> int:
    from .pipeline import evaluate
    from .study import write_study

    cfg = _cfg(args)
    if args.max < 0:
        raise UserError(f"--max {args.max}: must be >= 0 (0: every mistake)")
    out = prepare_out_dir(args.out, _inputs(cfg), force=args.force)
    ev = evaluate(cfg, features=False)
    study_id = f"{ev.clf.name}:{cfg.data.images}:{len(ev.recs)}"
    page = write_study(ev.recs, out, study_id=study_id, max_items=args.max)
    print(f"study page: {page}\nopen it, mark each mistake, save answers.json, then:\n"
          f"  dldiy-imagenet-bias analyze --study {out} --answers answers.json")
    return 0


def cmd_analyze(args) -> int:
    from .mistakes import rectified_accuracy
    from .study import read_answers, read_study

    check_input(args.study, "study folder", folder=True)
    check_input(args.answers, "answers file")
    study_id, recs = read_study(args.study)
    answers = read_answers(args.answers, study_id)
    out = prepare_out_file(args.json, [args.study, args.answers], force=True) \
        if args.json else None
    _results(out, rectified_accuracy(recs, answers))
    return 0


def cmd_attack(args) -> int:
    from .pipeline import evaluate, run_attacks

    cfg = _cfg(args)
    out = _json_out(args, cfg)
    ev = evaluate(cfg, features=False)
    _results(out, run_attacks(ev, cfg))
    return 0


def cmd_explain(args) -> int:
    from dldiy_core import Report

    from .pipeline import evaluate
    from .report import explanation_rows

    cfg = _cfg(args)
    out = prepare_out_dir(args.out, _inputs(cfg), force=args.force)
    ev = evaluate(cfg)
    rows, fig = explanation_rows(ev, cfg)
    rep = Report(out, "Clean and adversarial predictions, explained")
    rep.figure("explanations", fig)
    rep.table(["image", "label", "clean", "adversarial", "L-inf x 255"],
              [[r["id"], r["label"], r["clean"], r["adversarial"], round(r["linf"] * 255, 2)]
               for r in rows])
    print(f"report: {rep.write()}")
    return 0


def cmd_criticize(args) -> int:
    from dldiy_core import Report

    from .criticism import contact_sheet
    from .pipeline import evaluate, run_criticism

    cfg = _cfg(args)
    out = prepare_out_dir(args.out, _inputs(cfg), force=args.force)
    ev = evaluate(cfg)
    crit = run_criticism(ev, cfg)
    rep = Report(out, "Prototypes and criticisms (MMD-critic)")
    for label, c in crit.items():
        rep.figure(f"critic_{label.replace(' ', '_')}",
                   contact_sheet(ev.pixels, [c["prototypes"], c["criticisms"]],
                                 [f"{label}: prototypes", f"{label}: criticisms"]), label)
        rep.table(["attribute", "class mean", "prototype mean", "gap"],
                  [[a["attribute"], round(a["class_mean"], 3), round(a["prototype_mean"], 3),
                    round(a["gap"], 3)] for a in c["attributes"]], caption=label)
    atomic_write_text(out / "criticism.json", json.dumps(
        {k: {**v, "prototype_files": [ev.recs[i]["path"] for i in v["prototypes"]],
             "criticism_files": [ev.recs[i]["path"] for i in v["criticisms"]]}
         for k, v in crit.items()}, indent=1) + "\n")
    if args.json:
        probe = sorted(([label, a["attribute"], c["n"], a["class_mean"], a["prototype_mean"],
                         a["gap"], a["p_random"]]
                        for label, c in crit.items() for a in c["attributes"]),
                       key=lambda row: -abs(row[5]))
        write_results(prepare_out_file(args.json, _inputs(cfg), force=True), {
            "n_labels": len(crit), "prototypes": cfg.critic.prototypes,
            "criticisms": cfg.critic.criticisms,
            "labels": [[k, v["n"], v["top1"], v["prototype_top1"], v["criticism_top1"]]
                       for k, v in crit.items()],
            "bias_probe": probe[:10]})
    print(f"report: {rep.write()}")
    return 0


def cmd_report(args) -> int:
    from .report import build_report

    cfg = _cfg(args)
    out = prepare_out_dir(args.out, _inputs(cfg), force=args.force)
    page, figures = build_report(cfg, out, f"ImageNet beyond accuracy: {cfg.model.name} on "
                                           f"{cfg.data.images}")
    if args.json:
        write_results(prepare_out_file(args.json, _inputs(cfg), force=True), figures)
    print(f"report: {page}")
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    cfg = _cfg(args)
    if args.images < 1 or args.mmd_points < 20 or args.rounds < 1:
        raise UserError(f"--images {args.images} / --mmd-points {args.mmd_points} / --rounds "
                        f"{args.rounds}: need >= 1 image, >= 20 points, >= 1 round")
    out = _json_out(args, cfg)
    _results(out, run_bench(cfg, n_images=args.images, repeats=args.rounds,
                            mmd_points=args.mmd_points))
    return 0


def commands() -> Commands:
    cli = Commands("dldiy-imagenet-bias", sys.modules["dldiy_imagenet_bias"].__doc__,
                   presets=PRESETS, default_preset="quick", quiet_loggers=("PIL",))
    for name, fn, help_ in [
            ("predict", cmd_predict, "top-5 classes of every image"),
            ("eval", cmd_eval, "top-1/top-5 and per-label accuracy (acceptable-label sets)"),
            ("mistakes", cmd_mistakes, "accuracy, confusions and WordNet severity of mistakes"),
            ("attack", cmd_attack, "FGSM/PGD robustness curves and DeepFool norms"),
            ("bench", cmd_bench, "inference fp32 vs bf16, features, PGD-10, MMD-critic speed")]:
        c = cli.add(name, fn, help_, default_preset="paper" if name != "bench" else "quick")
        c.add_argument("--json", help="write the results here")
        if name == "bench":
            c.add_argument("--images", type=int, default=256,
                           help="images timed (the same ones for the bf16 agreement)")
            c.add_argument("--mmd-points", type=int, default=10_000,
                           help="points of the MMD-critic timing")
            c.add_argument("--rounds", type=int, default=3,
                           help="timing rounds (each variant's best round counts)")
    for name, fn, help_ in [
            ("study", cmd_study, "write the human-study page of the top-1 mistakes"),
            ("explain", cmd_explain, "explain clean and adversarial predictions"),
            ("criticize", cmd_criticize, "MMD-critic prototypes/criticisms per label, bias probe"),
            ("report", cmd_report, "every analysis in one HTML report")]:
        c = cli.add(name, fn, help_, default_preset="paper")
        c.add_argument("--out", required=True, help="output folder")
        c.add_argument("--force", action="store_true", help="replace a report already there")
        if name == "study":
            c.add_argument("--max", type=int, default=0, help="at most this many mistakes")
        if name in ("report", "criticize"):
            c.add_argument("--json", help="also write the headline figures here")
    c = cli.add("analyze", cmd_analyze, "rectified accuracy from the study's answers",
                config=False)
    c.add_argument("--study", required=True, help="folder written by `study`")
    c.add_argument("--answers", required=True, help="answers.json saved by the page")
    c.add_argument("--json", help="write the results here")
    c = cli.add("demo", cmd_report, "Lite0 on clip-art + photos, every analysis, one report "
                                    "(a few minutes)")
    c.add_argument("--out", default="reports/imagenet-bias", help="report folder")
    c.add_argument("--force", action="store_true", help="replace a report already there")
    c.add_argument("--json", help="also write the headline figures here")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return commands().main(argv)
    except UserError as e:  # raised while building the parser
        print(f"error: {e}", file=sys.stderr)
        return 2
