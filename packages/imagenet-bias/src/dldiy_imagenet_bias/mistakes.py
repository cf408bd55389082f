"""How bad are the mistakes (Stock & Cissé sec. 3): top-1/top-5, per-class accuracy, confusions,
WordNet severity, and accuracy rectified by acceptable-label sets or human answers."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from dldiy_core import UserError

from .classes import ImageNetClasses
from .data import ImageSet
from .wordnet import WordNet


def records(images: ImageSet, logits: torch.Tensor, classes: ImageNetClasses,
            wn: WordNet | None = None, k: int = 5) -> list[dict[str, Any]]:
    """One record per image: file, label, top-``k`` (class, name, probability), whether top-1 and
    top-k are acceptable, and for a top-1 mistake its WordNet severity (path length from the
    predicted class to the label's synset) and the lowest common hypernym."""
    probs = logits.softmax(1)
    p, idx = probs.topk(k, dim=1)
    out = []
    for i, (it, pi, ii) in enumerate(zip(images.items, p.tolist(), idx.tolist(), strict=True)):
        accept = set(it.accept)
        rec: dict[str, Any] = {
            "id": i, "path": it.path, "label": it.label, "wnid": it.wnid,
            "top": [{"class": c, "name": classes.names[c], "p": round(q, 4)}
                    for c, q in zip(ii, pi, strict=True)],
            "top1_ok": ii[0] in accept, "topk_ok": bool(accept & set(ii)),
        }
        if not rec["top1_ok"] and wn is not None:
            pred = classes.wnids[ii[0]]
            rec["severity"] = wn.distance(pred, it.wnid)
            rec["common"] = wn.name(wn.lowest_common_ancestor(pred, it.wnid))
        out.append(rec)
    return out


def summarise(recs: Sequence[Mapping[str, Any]], k: int = 5, n_confusions: int = 15) -> dict:
    """Accuracies overall and per label, the most frequent confusions, the severity histogram."""
    if not recs:
        raise UserError("no images to evaluate")
    per: dict[str, list] = defaultdict(list)
    for r in recs:
        per[r["label"]].append(r)
    per_label = {label: {"n": len(rs), "top1": float(np.mean([r["top1_ok"] for r in rs])),
                         f"top{k}": float(np.mean([r["topk_ok"] for r in rs]))}
                 for label, rs in sorted(per.items())}
    wrong = [r for r in recs if not r["top1_ok"]]
    confusions = Counter((r["label"], r["top"][0]["name"]) for r in wrong)
    sev = [r["severity"] for r in wrong if "severity" in r]
    hist = Counter(sev)
    return {
        "n_images": len(recs),
        "top1": float(np.mean([r["top1_ok"] for r in recs])),
        f"top{k}": float(np.mean([r["topk_ok"] for r in recs])),
        "mean_class_top1": float(np.mean([v["top1"] for v in per_label.values()])),
        "n_mistakes": len(wrong),
        "per_label": per_label,
        "confusions": [{"label": a, "predicted": b, "count": c}
                       for (a, b), c in confusions.most_common(n_confusions)],
        "severity_mean": float(np.mean(sev)) if sev else None,
        "severity_median": float(np.median(sev)) if sev else None,
        "severity_hist": {str(d): hist[d] for d in sorted(hist)},
    }


def rectified_accuracy(recs: Sequence[Mapping[str, Any]],
                       answers: Mapping[int, bool]) -> dict[str, float | int]:
    """Top-1 where a mistake a person judged acceptable counts as right (the paper's
    "rectified" accuracy, sec. 3.2). ``answers: {record id: acceptable}``; mistakes without an
    answer keep counting as wrong, answers about correct predictions are ignored."""
    if not recs:
        raise UserError("no images to rectify")
    by_id = {r["id"]: r for r in recs}
    unknown = [i for i in answers if i not in by_id]
    if unknown:
        raise UserError(f"answers: ids {unknown[:5]} are not images of this evaluation")
    ok = sum(bool(r["top1_ok"]) for r in recs)
    mistakes = [r for r in recs if not r["top1_ok"]]
    answered = [r for r in mistakes if r["id"] in answers]
    accepted = sum(bool(answers[r["id"]]) for r in answered)
    return {"n_images": len(recs), "top1": ok / len(recs),
            "rectified_top1": (ok + accepted) / len(recs),
            "n_mistakes": len(mistakes), "n_answered": len(answered),
            "n_accepted": accepted,
            "accepted_fraction": accepted / len(answered) if answered else 0.0}


def real_accuracy(top1: Sequence[int], label_sets: Sequence[Sequence[int]]) -> dict[str, float]:
    """ImageNet-ReaL accuracy: top-1 right when in the image's label set; images with an empty
    set are left out (Beyer et al. 2020)."""
    if len(top1) != len(label_sets):
        raise UserError(f"{len(top1)} predictions for {len(label_sets)} label sets")
    kept = [(p, set(s)) for p, s in zip(top1, label_sets, strict=True) if len(s)]
    if not kept:
        raise UserError("every label set is empty")
    return {"n_images": len(kept), "real_top1": sum(p in s for p, s in kept) / len(kept)}
