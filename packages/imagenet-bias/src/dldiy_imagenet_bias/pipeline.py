"""The analyses as steps the commands and the report share: load the model and images, predict,
attack, explain, criticise. Each returns plain data (JSON-ready) plus tensors to draw."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dldiy_core import UserError

from .classes import ImageNetClasses, imagenet_classes
from .config import BiasConfig
from .data import ImageSet, apply_real_labels, load_pixels, load_set
from .mistakes import records, summarise
from .models import Classifier, load_classifier
from .predict import Predictions, predict, to_float
from .wordnet import WordNet, load_wordnet

log = logging.getLogger(__name__)


@dataclass
class Evaluated:
    """A model run over an image set: pixels ``uint8 [N, 3, H, W]``, predictions, records."""

    clf: Classifier
    images: ImageSet
    pixels: torch.Tensor
    preds: Predictions
    recs: list[dict[str, Any]]
    classes: ImageNetClasses
    wn: WordNet
    seconds: float


def model_from(cfg: BiasConfig) -> Classifier:
    m = cfg.model
    return load_classifier(m.name, m.weights, resize=m.resize, crop=m.crop, mean=m.mean,
                            std=m.std, fold_bn=m.fold_bn)


def images_from(cfg: BiasConfig) -> ImageSet:
    images = load_set(cfg.data.images).subset(cfg.data.per_label, cfg.data.seed)
    if cfg.data.labels:
        images = apply_real_labels(images, cfg.data.labels)
    if not images.items:
        raise UserError(f"data.images: no images in {cfg.data.images}")
    return images


def evaluate(cfg: BiasConfig, features: bool = True) -> Evaluated:
    """Load model and images, predict (with penultimate features), build the records."""
    clf = model_from(cfg)
    images = images_from(cfg)
    pixels, images = load_pixels(images, clf.preprocess)
    t = time.perf_counter()
    preds = predict(clf, pixels, batch_size=cfg.eval.batch_size, precision=cfg.eval.precision,
                    features=features, channels_last=cfg.eval.channels_last,
                    fused=cfg.eval.fused, depthwise=cfg.eval.depthwise)
    seconds = time.perf_counter() - t
    classes, wn = imagenet_classes(), load_wordnet()
    if preds.logits.shape[1] != len(classes):
        raise UserError(f"{cfg.model.name}: {preds.logits.shape[1]} outputs, expected the "
                        f"{len(classes)} ImageNet-1k classes")
    recs = records(images, preds.logits, classes, wn)
    log.info("%d images in %.1f s", len(pixels), seconds)
    return Evaluated(clf, images, pixels, preds, recs, classes, wn, seconds)


def mistakes_summary(ev: Evaluated) -> dict[str, Any]:
    s = summarise(ev.recs)
    s["n_skipped"] = len(ev.images.skipped)
    s["skipped"] = [{"path": p, "reason": r} for p, r in ev.images.skipped]
    s["images_per_s"] = len(ev.pixels) / max(ev.seconds, 1e-9)
    return s


def attack_set(ev: Evaluated, n: int, seed: int = 0) -> np.ndarray:
    """Indices of up to ``n`` images to attack: correctly classified first (an attack on a
    mistake says little), in a seeded order."""
    rng = np.random.default_rng(seed)
    ok = [r["id"] for r in ev.recs if r["top1_ok"]]
    bad = [r["id"] for r in ev.recs if not r["top1_ok"]]
    order = list(rng.permutation(ok)) + list(rng.permutation(bad))
    return np.array(sorted(order[:n]), dtype=int)


def run_attacks(ev: Evaluated, cfg: BiasConfig) -> dict[str, Any]:
    """Robustness curves (FGSM and PGD under the configured norm; accuracy vs epsilon) and
    DeepFool's minimal L2 perturbations, on :func:`attack_set` images."""
    from .attacks import deepfool, robustness_curve

    a = cfg.attack
    idx = attack_set(ev, a.n_images, a.seed)
    x = to_float(ev.pixels[idx], False)
    y = ev.preds.logits[idx].argmax(1)
    accept = [ev.images.items[i].accept for i in idx]
    clf = ev.clf
    out: dict[str, Any] = {"n_images": len(idx), "norm": a.norm, "steps": a.steps}
    t = time.perf_counter()
    out["fgsm"] = robustness_curve(clf, x, y, accept, a.epsilons, attack="fgsm",
                                   norm="linf") if a.norm == "linf" else []
    out["pgd"] = robustness_curve(clf, x, y, accept, a.epsilons, attack="pgd", norm=a.norm,
                                  steps=a.steps)
    _, norms = deepfool(clf, x[: a.deepfool_images], num_classes=5, max_iter=20)
    out["deepfool_l2_median"] = float(norms.median())
    out["deepfool_rms_median"] = float((norms / (x[0].numel() ** 0.5)).median())
    out["seconds"] = time.perf_counter() - t
    return out


def class_features(ev: Evaluated) -> dict[str, np.ndarray]:
    """Image ids per label."""
    by: dict[str, list[int]] = {}
    for r in ev.recs:
        by.setdefault(r["label"], []).append(r["id"])
    return {k: np.array(v) for k, v in by.items()}


def run_criticism(ev: Evaluated, cfg: BiasConfig) -> dict[str, Any]:
    """MMD-critic prototypes and criticisms per label, in penultimate feature space, with the
    attribute probe (given attributes, or measured ones)."""
    from .criticism import attribute_bias, criticize, image_attributes

    c = cfg.critic
    feats = ev.preds.features
    if feats is None:
        raise UserError("criticism needs penultimate features")
    by = class_features(ev)
    labels = c.labels or sorted(k for k, v in by.items() if len(v) >= c.min_images)
    unknown = [lab for lab in labels if lab not in by]
    if unknown:
        raise UserError(f"critic.labels: unknown label {unknown[0]!r} (labels: "
                        f"{', '.join(sorted(by))})")
    if c.attributes:
        attrs, names = read_attributes(c.attributes, ev)
    else:
        attrs, names = image_attributes(ev.pixels)
    out: dict[str, Any] = {}
    for label in labels:
        ids = by[label]
        if len(ids) < 2:
            continue
        protos, crits = criticize(feats[ids], c.prototypes, c.criticisms, c.gamma or None)
        out[label] = {
            "n": len(ids),
            "prototypes": [int(ids[i]) for i in protos],
            "criticisms": [int(ids[i]) for i in crits],
            "top1": float(np.mean([ev.recs[i]["top1_ok"] for i in ids])),
            "prototype_top1": float(np.mean([ev.recs[ids[i]]["top1_ok"] for i in protos])),
            "criticism_top1": float(np.mean([ev.recs[ids[i]]["top1_ok"] for i in crits]))
            if crits else None,
            "attributes": attribute_bias(attrs[ids], protos, names),
        }
    return out


def read_attributes(path: str | Path, ev: Evaluated) -> tuple[np.ndarray, list[str]]:
    """``{file name: {attribute: number or bool}}`` -> ``[N, A]`` aligned with the images."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: attributes file not found") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a readable attributes JSON ({e})") from None
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path}: expected {{file name: {{attribute: value}}}}")
    names = sorted({k for v in data.values() if isinstance(v, dict) for k in v})
    rows = []
    for it in ev.images.items:
        row = data.get(Path(it.path).name)
        if not isinstance(row, dict):
            raise UserError(f"{path}: no attributes for {Path(it.path).name}")
        try:
            rows.append([float(row.get(n, 0)) for n in names])
        except (TypeError, ValueError):
            raise UserError(f"{path}: {Path(it.path).name}: attributes must be numbers or "
                            f"true/false") from None
    return np.array(rows), names
