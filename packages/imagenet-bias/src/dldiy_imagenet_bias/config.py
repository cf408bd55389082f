"""Configs and presets: ``paper`` (every image and class, the analyses at full size) and
``quick`` (a few minutes on 2 cores: the demo)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from dldiy_core import UserError


@dataclass
class ModelConfig:
    name: str = "lite0"
    """lite0 (embedded), a TorchScript file, or a torchvision architecture (with weights)."""
    weights: str = ""
    """state_dict file (.safetensors or .pt/.pth, never unpickled) for a torchvision name."""
    resize: int = 0
    """Short side before the centre crop (0: the model's default, 256)."""
    crop: int = 0
    """Centre crop (0: the model's default, 224)."""
    mean: list[float] = field(default_factory=list)
    """Normalisation in [0, 1] units (empty: Lite0's (x-127)/128, else ImageNet's)."""
    std: list[float] = field(default_factory=list)
    fold_bn: bool = True
    """Fold Lite0's BatchNorms into its convolutions (same outputs, faster)."""


@dataclass
class DataConfig:
    images: str = "clipart+photos"
    """clipart, photos, fashion-mnist (its test set), several joined by +, or an ImageFolder
    (wnid folders) path."""
    labels: str = ""
    """Optional ImageNet-ReaL-style JSON of acceptable class ids per image."""
    per_label: int = 0
    """At most this many images per label (0: all)."""
    seed: int = 0


@dataclass
class EvalConfig:
    batch_size: int = 8
    """Images a forward pass (small batches keep Lite0's activations in cache: bench)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = True
    fused: bool = True
    """Lite0 on fused oneDNN kernels (conv + ReLU6 / + residual in one kernel): bench."""
    depthwise: Literal["bf16", "fp32"] = "bf16"
    """Under bf16: the precision of Lite0's depthwise convolutions (fp32: fewer top-1 changes,
    slower; bench measures both)."""


@dataclass
class AttackConfig:
    method: Literal["fgsm", "pgd", "deepfool"] = "pgd"
    norm: Literal["linf", "l2"] = "linf"
    epsilons: list[float] = field(default_factory=lambda: [0.0, 0.5 / 255, 1 / 255, 2 / 255,
                                                           4 / 255, 8 / 255])
    """L-inf radii in [0, 1] pixel units (L2: Euclidean norms of the whole image)."""
    steps: int = 10
    n_images: int = 64
    """Images attacked (correctly classified ones first)."""
    deepfool_images: int = 16
    """Images whose minimal (DeepFool) perturbation is measured."""
    seed: int = 0


@dataclass
class ExplainConfig:
    method: Literal["gradcam", "ig"] = "gradcam"
    n_images: int = 8
    ig_steps: int = 32
    neighbours: int = 3


@dataclass
class CriticConfig:
    prototypes: int = 5
    criticisms: int = 3
    min_images: int = 10
    """Classes with fewer images are skipped."""
    labels: list[str] = field(default_factory=list)
    """Labels to criticise (empty: every label with min_images)."""
    gamma: float = 0.0
    """RBF kernel gamma (0: 1 / median squared distance)."""
    attributes: str = ""
    """Optional attribute table (JSON {file name: {attribute: value}}) for the bias probe;
    empty: measured attributes (white background, saturation, brightness, grey-scale)."""


@dataclass
class BiasConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)


PRESETS: dict[str, dict] = {
    "paper": {"critic": {"prototypes": 10, "criticisms": 5},
              "attack": {"n_images": 256, "steps": 20}},
    "quick": {"data": {"per_label": 12},
              "attack": {"n_images": 8, "steps": 5, "deepfool_images": 4,
                         "epsilons": [0.0, 0.5 / 255, 1 / 255, 2 / 255, 4 / 255]},
              "explain": {"n_images": 3},
              "critic": {"prototypes": 4, "criticisms": 2, "min_images": 12}},
}


def check(cfg: BiasConfig) -> BiasConfig:
    """Refuse out-of-range settings before any work (one line naming the setting)."""
    def need(ok: bool, key: str, value, what: str) -> None:
        if not ok:
            raise UserError(f"config key '{key}': {value!r} {what}")

    m, d, e, a, x, c = cfg.model, cfg.data, cfg.eval, cfg.attack, cfg.explain, cfg.critic
    need(m.resize >= 0, "model.resize", m.resize, "must be >= 0")
    need(m.crop >= 0, "model.crop", m.crop, "must be >= 0")
    need(len(m.mean) in (0, 3), "model.mean", m.mean, "needs 3 values")
    need(len(m.std) in (0, 3) and all(s > 0 for s in m.std), "model.std", m.std,
         "needs 3 values > 0")
    need(d.per_label >= 0, "data.per_label", d.per_label, "must be >= 0")
    need(bool(d.images.strip()), "data.images", d.images, "is empty")
    need(e.batch_size >= 1, "eval.batch_size", e.batch_size, "must be >= 1")
    need(len(a.epsilons) > 0, "attack.epsilons", a.epsilons, "is empty")
    for eps in a.epsilons:
        need(math.isfinite(eps) and eps >= 0 and (a.norm == "l2" or eps <= 1),
             "attack.epsilons", eps, "must be in [0, 1] (pixel range; 4/255 = 0.0157)"
             if a.norm == "linf" else "must be >= 0")
    need(a.steps >= 1, "attack.steps", a.steps, "must be >= 1")
    need(a.n_images >= 1, "attack.n_images", a.n_images, "must be >= 1")
    need(a.deepfool_images >= 1, "attack.deepfool_images", a.deepfool_images, "must be >= 1")
    need(x.n_images >= 1, "explain.n_images", x.n_images, "must be >= 1")
    need(x.ig_steps >= 2, "explain.ig_steps", x.ig_steps, "must be >= 2")
    need(x.neighbours >= 1, "explain.neighbours", x.neighbours, "must be >= 1")
    need(c.prototypes >= 1, "critic.prototypes", c.prototypes, "must be >= 1")
    need(c.criticisms >= 0, "critic.criticisms", c.criticisms, "must be >= 0")
    need(c.min_images >= 2, "critic.min_images", c.min_images, "must be >= 2")
    need(math.isfinite(c.gamma) and c.gamma >= 0, "critic.gamma", c.gamma, "must be >= 0")
    return cfg
