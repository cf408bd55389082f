"""``bench``: inference speed of every way of running the model (the module as loaded, NCHW or
channels_last, folded BatchNorm, bf16 autocast, fused kernels in fp32 and bf16, two batch
sizes), bf16's top-1 agreement with fp32, feature extraction vs plain inference, PGD-10 and
MMD-critic, all measured in one run on the same images.

The machine is shared, so the inference timings are interleaved finely: the images are cut into
chunks of 32, each round runs every variant on one chunk after the other, and a variant's time
is the sum over chunks of its best round on that chunk (bursts of load from other processes
hit every variant alike and the least disturbed run of each chunk counts). The load average
before and after is recorded.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable

import torch

from dldiy_core import bf16_isa

from .attacks import pgd
from .config import BiasConfig
from .criticism import rbf_kernel, select_criticisms, select_prototypes
from .data import load_pixels
from .pipeline import images_from, model_from
from .predict import fused_model, predict, to_float

log = logging.getLogger(__name__)


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best time (seconds) of each function over ``rounds`` rounds, each round calling every
    function once in turn."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def _agreement(ref: torch.Tensor, other: torch.Tensor, prefix: str) -> dict[str, float]:
    """Top-1 agreement of ``other`` logits with ``ref`` (fp32) ones ``[N, C]``, and where they
    disagree: the fp32 top-1/top-2 probability margin of the images whose top-1 changes."""
    p32, p = ref.argmax(1), other.argmax(1)
    top2 = ref.softmax(1).topk(2).values
    margin = top2[:, 0] - top2[:, 1]
    flipped = p32 != p
    clear = margin > 0.01
    return {f"{prefix}_top1_agreement": float((~flipped).float().mean()),
            f"{prefix}_flipped": int(flipped.sum()),
            f"{prefix}_flipped_max_fp32_margin": float(margin[flipped].max())
            if flipped.any() else 0.0,
            f"{prefix}_top1_agreement_margin_over_1pct": float((~flipped)[clear].float().mean())
            if clear.any() else 1.0,
            f"{prefix}_max_abs_logit_error": float((other - ref).abs().max())}


def _cpu_flags() -> dict[str, bool]:
    """Whether this CPU has AMX-BF16 tiles or only AVX512-BF16 dot products."""
    isa = bf16_isa()
    return {"cpu_amx_bf16": isa == "amx_bf16",
            "cpu_avx512_bf16": isa in ("amx_bf16", "avx512_bf16")}


def _matmul_bf16_speedup(n: int = 1024, rounds: int = 3) -> float:
    """bf16 over fp32 time of an ``[n, n] @ [n, n]`` matmul: the ceiling of bf16's gain."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    ah, bh = a.bfloat16(), b.bfloat16()
    t = _interleaved({"fp32": lambda: a @ b, "bf16": lambda: ah @ bh}, rounds + 1)
    return t["fp32"] / t["bf16"]


def _interleaved_chunks(fns: dict[str, Callable[[torch.Tensor], object]],
                       chunks: list[torch.Tensor], rounds: int) -> dict[str, float]:
    """Sum over ``chunks`` of each function's best time on the chunk over ``rounds`` rounds;
    within a round, each chunk is run by every function in turn."""
    best = {name: [float("inf")] * len(chunks) for name in fns}
    for _ in range(rounds):
        for i, chunk in enumerate(chunks):
            for name, fn in fns.items():
                t = time.perf_counter()
                fn(chunk)
                best[name][i] = min(best[name][i], time.perf_counter() - t)
    return {name: sum(ts) for name, ts in best.items()}


def run_bench(cfg: BiasConfig, n_images: int = 256, repeats: int = 3,
              mmd_points: int = 10_000) -> dict:
    """Figures of :mod:`bench`. The headline keys are the shipped defaults:
    ``infer_images_per_s_fp32`` (fp32: fused kernels for Lite0, batch ``eval.batch_size``),
    ``infer_images_per_s_bf16`` and ``bf16_top1_agreement`` (bf16 with depthwise in
    ``eval.depthwise``); every other way of running it is measured beside them."""
    clf = model_from(cfg)
    images = images_from(cfg)
    images.items = images.items[: n_images + 16]  # a few may be unreadable
    pixels, _ = load_pixels(images, clf.preprocess)
    pixels = pixels[:n_images]
    n, bs = len(pixels), cfg.eval.batch_size
    is_lite0 = fused_model(clf) is not None
    out: dict = {"model": clf.name, "n_images": n, "batch_size": bs,
                 "threads": torch.get_num_threads(), "load_before": _load(),
                 "fused_kernels": is_lite0, "depthwise_bf16_mode": cfg.eval.depthwise,
                 **_cpu_flags(), "matmul_bf16_speedup": _matmul_bf16_speedup()}
    # The baseline: the module as loaded (Lite0 keeps its BatchNorms), no fused kernels.
    loaded = model_from(_with(cfg, fold_bn=False)) if is_lite0 else clf

    def run(model, precision="fp32", *, fused=False, features=False, channels_last=True,
            batch=bs, depthwise=cfg.eval.depthwise):
        def go(pix=pixels):
            return predict(model, pix, batch_size=batch, precision=precision,
                           features=features, channels_last=channels_last, fused=fused,
                           depthwise=depthwise)
        return go

    variants = {"fp32_loaded_nchw": run(loaded, channels_last=False),
                "fp32_loaded": run(loaded),
                "bf16_autocast_loaded": run(loaded, "bf16")}
    if is_lite0:
        variants |= {"fp32_folded_bn": run(clf),
                     "bf16_autocast_folded_bn": run(clf, "bf16"),
                     "fp32": run(clf, fused=True),
                     "bf16": run(clf, "bf16", fused=True),
                     "bf16_depthwise_" + _other(cfg.eval.depthwise):
                         run(clf, "bf16", fused=True, depthwise=_other(cfg.eval.depthwise)),
                     "features": run(clf, fused=True, features=True)}
        if bs != 32:
            variants |= {"fp32_batch32": run(clf, fused=True, batch=32),
                         "bf16_batch32": run(clf, "bf16", fused=True, batch=32)}
    else:  # another model: the module itself is the shipped path
        variants |= {"fp32": variants["fp32_loaded"], "bf16": variants["bf16_autocast_loaded"],
                     "features": run(clf, features=True)}
    for fn in variants.values():  # warm-up: the first calls pack weights and pick kernels
        fn(pixels[: 2 * bs])
    times = _interleaved_chunks(variants, list(pixels.split(32)), repeats)
    for name, t in times.items():
        out[f"infer_images_per_s_{name}" if name != "features" else "features_images_per_s"] = \
            n / t
    out["bf16_speedup"] = times["fp32"] / times["bf16"]
    for name in ("bf16_depthwise_fp32", "bf16_depthwise_bf16", "bf16_autocast_folded_bn",
                 "bf16_autocast_loaded", "bf16_batch32"):
        if name in times:  # every other bf16 way against the shipped fp32
            out[f"{name}_speedup"] = times["fp32"] / times[name]
    if "fp32_batch32" in times:
        out["bf16_batch32_speedup"] = times["fp32_batch32"] / times["bf16_batch32"]
    out["bf16_speedup_vs_loaded_fp32"] = times["fp32_loaded"] / times["bf16"]
    out["fp32_speedup_vs_loaded"] = times["fp32_loaded"] / times["fp32"]
    out["features_vs_inference"] = times["fp32"] / times["features"]
    # Agreement with fp32 on the same images, for every bf16 way.
    ref = predict(clf, pixels, batch_size=bs, fused=is_lite0).logits
    top2 = ref.softmax(1).topk(2).values
    out["near_ties_fp32_margin_under_1pct"] = int((top2[:, 0] - top2[:, 1] <= 0.01).sum())
    out |= _agreement(ref, predict(clf, pixels, batch_size=bs, precision="bf16",
                                   fused=is_lite0).logits, "bf16")
    if is_lite0:
        other = _other(cfg.eval.depthwise)
        out |= _agreement(ref, predict(clf, pixels, batch_size=bs, precision="bf16", fused=True,
                                       depthwise=other).logits, f"bf16_depthwise_{other}")
        out |= _agreement(ref, predict(clf, pixels, batch_size=bs, precision="bf16").logits,
                          "bf16_autocast")
    # PGD-10 (L-inf 4/255) through the module (autograd), fp32 and bf16 autocast.
    xa = to_float(pixels[:min(16, n)], False)
    ya = ref[:len(xa)].argmax(1)

    def attack(precision):
        def go():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                return pgd(clf, xa, ya, 4 / 255, steps=10)
        return go

    t = _interleaved({"fp32": attack("fp32"), "bf16": attack("bf16")}, 1)
    out["pgd10_images_per_s"] = len(xa) / t["fp32"]
    out["pgd10_images_per_s_bf16"] = len(xa) / t["bf16"]
    # MMD-critic on 10k points of 1280-d (Lite0's feature size): 10 prototypes, 5 criticisms,
    # the kernel included.
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(mmd_points, 1280, generator=g)

    def critic():
        K = rbf_kernel(feats, dtype=torch.float32)
        select_criticisms(K, select_prototypes(K, 10), 5)

    key = "mmd_critic_s_10k" if mmd_points == 10_000 else f"mmd_critic_s_{mmd_points}"
    out[key] = _interleaved({"c": critic}, 1)["c"]
    out["load_after"] = _load()
    return out


def _other(depthwise: str) -> str:
    return "fp32" if depthwise == "bf16" else "bf16"


def _with(cfg: BiasConfig, **model) -> BiasConfig:
    cfg = copy.deepcopy(cfg)
    for k, v in model.items():
        setattr(cfg.model, k, v)
    return cfg

