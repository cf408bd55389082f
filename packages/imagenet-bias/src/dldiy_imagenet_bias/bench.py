"""``bench``: inference fp32 vs bf16 autocast (and channels_last, folded BatchNorm), feature
extraction, PGD-10 and MMD-critic throughput, all measured in one run on the same images."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable

import torch

from .attacks import pgd
from .config import BiasConfig
from .criticism import rbf_kernel, select_criticisms, select_prototypes
from .data import load_pixels
from .lite0 import fold_batchnorm
from .pipeline import images_from, model_from
from .predict import predict, to_float

log = logging.getLogger(__name__)


def _best(fn: Callable[[], object], repeats: int) -> float:
    """Best of ``repeats`` timed calls (seconds): the least disturbed by other processes."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run_bench(cfg: BiasConfig, n_images: int = 64, repeats: int = 3,
              mmd_points: int = 10_000) -> dict:
    """The baseline is the network as loaded (BatchNorm kept); ``*_folded_bn`` folds it."""
    cfg.model.fold_bn = False
    clf = model_from(cfg)
    images = images_from(cfg)
    images.items = images.items[: n_images * 2]
    pixels, _ = load_pixels(images, clf.preprocess)
    pixels = pixels[:n_images]
    n, bs = len(pixels), cfg.eval.batch_size
    out: dict = {"model": clf.name, "n_images": n, "batch_size": bs,
                 "threads": torch.get_num_threads()}

    def infer(model, precision, channels_last=True, features=False):
        return lambda: predict(model, pixels, batch_size=bs, precision=precision,
                               channels_last=channels_last, features=features)

    predict(clf, pixels[:bs], batch_size=bs)  # warm-up
    t_fp32 = _best(infer(clf, "fp32"), repeats)
    t_fp32_nchw = _best(infer(clf, "fp32", channels_last=False), repeats)
    predict(clf, pixels[:bs], batch_size=bs, precision="bf16")
    t_bf16 = _best(infer(clf, "bf16"), repeats)
    t_feat = _best(infer(clf, "fp32", features=True), repeats)
    out["infer_images_per_s_fp32"] = n / t_fp32
    out["infer_images_per_s_fp32_nchw"] = n / t_fp32_nchw
    out["infer_images_per_s_bf16"] = n / t_bf16
    out["bf16_speedup"] = t_fp32 / t_bf16
    out["features_images_per_s"] = n / t_feat
    out["features_vs_inference"] = t_fp32 / t_feat
    l32 = predict(clf, pixels, batch_size=bs).logits
    p32 = l32.argmax(1)
    p16 = predict(clf, pixels, batch_size=bs, precision="bf16").logits.argmax(1)
    out["bf16_top1_agreement"] = float((p32 == p16).float().mean())
    # Where do they differ? The fp32 probability margin between its top-1 and top-2 classes.
    top2 = l32.softmax(1).topk(2).values
    margin = top2[:, 0] - top2[:, 1]
    flipped = p32 != p16
    out["bf16_flipped_max_fp32_margin"] = float(margin[flipped].max()) if flipped.any() else 0.0
    clear = margin > 0.05
    out["bf16_top1_agreement_margin_over_5pct"] = float((p32 == p16)[clear].float().mean()) \
        if clear.any() else 1.0
    if hasattr(clf.net, "_blocks"):
        folded = copy.deepcopy(clf)
        fold_batchnorm(folded.net)
        out["infer_images_per_s_fp32_folded_bn"] = n / _best(infer(folded, "fp32"), repeats)
        out["infer_images_per_s_bf16_folded_bn"] = n / _best(infer(folded, "bf16"), repeats)
        pf = predict(folded, pixels, batch_size=bs, precision="bf16").logits.argmax(1)
        out["bf16_folded_top1_agreement"] = float((p32 == pf).float().mean())
    # PGD-10 (L-inf 4/255), fp32 and bf16 autocast on the same images.
    xa = to_float(pixels[:16], False)
    ya = p32[:16]

    def attack(precision):
        def run():
            if precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return pgd(clf, xa, ya, 4 / 255, steps=10)
            return pgd(clf, xa, ya, 4 / 255, steps=10)
        return run

    out["pgd10_images_per_s"] = len(xa) / _best(attack("fp32"), 1)
    out["pgd10_images_per_s_bf16"] = len(xa) / _best(attack("bf16"), 1)
    # MMD-critic on 10k points of 1280-d (the feature size of Lite0): 10 prototypes and 5
    # criticisms, kernel included.
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(mmd_points, 1280, generator=g)

    def critic():
        K = rbf_kernel(feats, dtype=torch.float32)
        protos = select_prototypes(K, 10)
        select_criticisms(K, protos, 5)
        return protos

    key = "mmd_critic_s_10k" if mmd_points == 10_000 else f"mmd_critic_s_{mmd_points}"
    out[key] = _best(critic, 1)
    return out
