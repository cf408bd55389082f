"""The report: accuracy, worst classes, mistake severity, prototypes and criticisms, attacks
with explanations, in one ``dldiy_core.Report`` HTML page (``demo`` and ``report``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dldiy_core import Report, new_figure, to_dict

from .config import BiasConfig
from .pipeline import Evaluated, attack_set, evaluate, mistakes_summary, run_attacks, run_criticism
from .predict import to_float

log = logging.getLogger(__name__)


def severity_figure(summary: dict[str, Any]):
    fig, ax = new_figure(5, 3.2)
    hist = summary["severity_hist"]
    ax.bar([int(k) for k in hist], list(hist.values()), color="#c55")
    ax.set(xlabel="WordNet path length, prediction to label", ylabel="top-1 mistakes",
           title="How far are the mistakes?")
    return fig


def curve_figure(attacks: dict[str, Any]):
    fig, ax = new_figure(5, 3.2)
    for name in ("fgsm", "pgd"):
        pts = attacks.get(name) or []
        if pts:
            ax.plot([p["eps"] * 255 for p in pts], [p["accuracy"] for p in pts], marker="o",
                    label=f"{name.upper()} ({attacks['norm']})")
    ax.set(xlabel="epsilon (grey levels of 255)" if attacks["norm"] == "linf" else "epsilon x 255",
           ylabel="top-1 accuracy", title="Robustness curve")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def explanation_rows(ev: Evaluated, cfg: BiasConfig) -> tuple[list[dict], Any]:
    """Clean vs adversarial (PGD at the largest epsilon) predictions of a few images, each
    explained by Grad-CAM or integrated gradients (feature-based) and by the nearest
    prototypes of the predicted class among the images the model itself puts in that class
    (example-based)."""
    from .attacks import pgd
    from .criticism import criticize
    from .explain import grad_cam, integrated_gradients, nearest_prototypes, overlay

    x_cfg, a = cfg.explain, cfg.attack
    idx = attack_set(ev, x_cfg.n_images, a.seed)
    x = to_float(ev.pixels[idx], False)
    y = ev.preds.logits[idx].argmax(1)
    eps = max(a.epsilons)
    adv = pgd(ev.clf, x, y, eps, norm=a.norm, steps=a.steps)
    with torch.no_grad():
        f_adv, logit_adv = ev.clf.features_and_logits(adv)
    y_adv = logit_adv.argmax(1)
    explain = grad_cam if x_cfg.method == "gradcam" else (
        lambda clf, xx, t: integrated_gradients(clf, xx, t, x_cfg.ig_steps))
    heat_clean, heat_adv = explain(ev.clf, x, y), explain(ev.clf, adv, y_adv)
    clean_top1 = ev.preds.logits.argmax(1)
    feats = ev.preds.features
    protos: dict[int, torch.Tensor] = {}
    proto_ids: dict[int, list[int]] = {}
    for c in set(y_adv.tolist()) | set(y.tolist()):
        pool = (clean_top1 == c).nonzero().flatten()
        if len(pool) >= 2:
            p, _ = criticize(feats[pool], min(4, len(pool)), 0)
            proto_ids[c] = [int(pool[i]) for i in p]
        elif len(pool) == 1:
            proto_ids[c] = [int(pool[0])]
        if c in proto_ids:
            protos[c] = feats[proto_ids[c]]
    near = nearest_prototypes(f_adv, y_adv.tolist(), protos, x_cfg.neighbours)
    rows = []
    k = x_cfg.neighbours
    fig, axes = new_figure(2.0 * (4 + k), 2.1 * len(idx), rows=len(idx), cols=4 + k,
                           squeeze=False)
    names = ev.classes.names
    for r, i in enumerate(idx):
        yc, ya = int(y[r]), int(y_adv[r])
        near_ids = [proto_ids[ya][j] for j in near[r]] if near[r] else []
        rows.append({"id": int(i), "label": ev.recs[i]["label"], "clean": names[yc],
                     "adversarial": names[ya], "flipped": yc != ya,
                     "linf": float((adv[r] - x[r]).abs().max()),
                     "nearest_prototypes": near_ids})
        panels = [(x[r].permute(1, 2, 0).numpy(), f"clean: {names[yc]}"),
                  (overlay(x[r], heat_clean[r]), x_cfg.method),
                  (adv[r].permute(1, 2, 0).numpy(), f"adv: {names[ya]}"),
                  (overlay(adv[r], heat_adv[r]), x_cfg.method)]
        for j in near_ids:
            panels.append((ev.pixels[j].permute(1, 2, 0).numpy(), f"prototype of {names[ya]}"))
        for j in range(4 + k):
            ax = axes[r][j]
            ax.axis("off")
            if j < len(panels):
                ax.imshow(panels[j][0])
                ax.set_title(panels[j][1][:28], fontsize=7)
    return rows, fig


def build_report(cfg: BiasConfig, out: Path, title: str) -> tuple[Path, dict[str, Any]]:
    """Run every analysis of ``cfg`` and write the report to ``out``; returns the page and the
    headline figures."""
    from .criticism import contact_sheet

    t0 = time.perf_counter()
    ev = evaluate(cfg)
    s = mistakes_summary(ev)
    rep = Report(out, title)
    rep.headline("images", s["n_images"])
    rep.headline("top-1 (acceptable set)", round(s["top1"], 4))
    rep.headline("top-5", round(s["top5"], 4))
    rep.headline("mean per-class top-1", round(s["mean_class_top1"], 4))
    if s["severity_mean"] is not None:
        rep.headline("mean mistake severity (WordNet edges)", round(s["severity_mean"], 2))
    rep.headline("unreadable/skipped files", s["n_skipped"])
    rep.section("Data and model")
    rep.text(f"Model: {ev.clf.name} (resize {ev.clf.preprocess.resize}, crop "
             f"{ev.clf.preprocess.crop}). Images: {cfg.data.images}"
             f"{f', at most {cfg.data.per_label} per label' if cfg.data.per_label else ''}. "
             "A label is the set of ImageNet-1k classes under its WordNet synset (clip-art "
             "categories) or the hand-given classes of a photo; a prediction in the set is right.")
    rep.section("Accuracy per label (worst first)")
    per = sorted(s["per_label"].items(), key=lambda kv: kv[1]["top1"])
    rep.table(["label", "images", "top-1", "top-5"],
              [[k, v["n"], round(v["top1"], 3), round(v["top5"], 3)] for k, v in per])
    rep.section("Most frequent confusions")
    rep.table(["label", "predicted", "count"],
              [[c["label"], c["predicted"], c["count"]] for c in s["confusions"]])
    rep.section("Mistake severity")
    rep.text("Path length in WordNet between the predicted class and the label's synset: small "
             "values are near-misses (a sibling class), large ones are unrelated objects.")
    rep.figure("severity", severity_figure(s))
    crit = run_criticism(ev, cfg)
    rep.section("Prototypes and criticisms (MMD-critic, penultimate features)")
    labels = list(crit)
    rows_t = []
    for label in labels:
        c = crit[label]
        fig = contact_sheet(ev.pixels, [c["prototypes"], c["criticisms"]],
                            [f"{label}: prototypes", f"{label}: criticisms"])
        rep.figure(f"critic_{label.replace(' ', '_')}", fig, f"{label} ({c['n']} images)")
        gap = max(c["attributes"], key=lambda a: abs(a["gap"]))
        rows_t.append([label, c["n"], round(c["top1"], 3), round(c["prototype_top1"], 3),
                       None if c["criticism_top1"] is None else round(c["criticism_top1"], 3),
                       gap["attribute"], round(gap["class_mean"], 3),
                       round(gap["prototype_mean"], 3)])
    rep.table(["label", "images", "top-1", "top-1 of prototypes", "top-1 of criticisms",
               "most skewed attribute", "class mean", "prototype mean"], rows_t,
              caption="The bias probe: an attribute whose prototype mean departs from the class "
                      "mean is part of what the model takes the class to be.")
    attacks = run_attacks(ev, cfg)
    rep.section("Adversarial examples")
    rep.figure("robustness", curve_figure(attacks))
    rep.text(f"{attacks['n_images']} images (correct ones first). DeepFool's median minimal L2 "
             f"perturbation: {attacks['deepfool_l2_median']:.3f} (pixels in [0, 1]).")
    rows, fig = explanation_rows(ev, cfg)
    rep.figure("explanations", fig, "clean vs adversarial: feature-based maps and the nearest "
                                    "prototypes of the adversarial class")
    rep.table(["image", "label", "clean prediction", "adversarial prediction", "L-inf"],
              [[r["id"], r["label"], r["clean"], r["adversarial"], round(r["linf"] * 255, 2)]
               for r in rows], caption="L-inf in grey levels of 255")
    if ev.images.skipped:
        rep.section("Skipped files")
        rep.table(["file", "reason"], [[p, why] for p, why in ev.images.skipped[:50]])
    pgd_pts = attacks["pgd"]
    figures = {
        "model": ev.clf.name, "images": cfg.data.images, "n_images": s["n_images"],
        "top1": s["top1"], "top5": s["top5"], "mean_class_top1": s["mean_class_top1"],
        "severity_mean": s["severity_mean"], "severity_hist": s["severity_hist"],
        "n_skipped": s["n_skipped"],
        "worst_labels": [[k, v["top1"]] for k, v in per[:5]],
        "pgd_curve": [[p["eps"], p["accuracy"]] for p in pgd_pts],
        "fgsm_curve": [[p["eps"], p["accuracy"]] for p in attacks["fgsm"]],
        "deepfool_l2_median": attacks["deepfool_l2_median"],
        "criticism": {k: {kk: v[kk] for kk in ("n", "top1", "prototype_top1",
                                                "criticism_top1")} for k, v in crit.items()},
        "bias_probe": sorted(
            ([label, a["attribute"], a["class_mean"], a["prototype_mean"], a["gap"],
              a["p_random"]]
             for label, c in crit.items() for a in c["attributes"]),
            key=lambda row: -abs(row[4]))[:8],
        "adversarial_flipped": sum(r["flipped"] for r in rows), "explained": len(rows),
        "seconds": time.perf_counter() - t0,
    }
    rep.section("Settings")
    rep.text(str(to_dict(cfg)))
    page = rep.write()
    import json

    from dldiy_core import atomic_write_text

    atomic_write_text(out / "figures.json", json.dumps(
        {**figures, "criticism_full": crit, "attacks": attacks, "explanations": rows,
         "labels_top1": s["per_label"]},
        indent=1, default=_plain) + "\n")
    return page, figures


def _plain(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(type(o).__name__)
