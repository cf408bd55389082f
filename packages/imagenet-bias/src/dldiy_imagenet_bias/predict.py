"""Batched inference: logits and penultimate features of uint8 images, fp32 or bf16.

The embedded Lite0 runs on fused oneDNN kernels (:class:`~.fused.FusedLite0`: ReLU6 and the
residual adds inside the convolutions, folded BatchNorm, weights packed once in channels_last
and in the chosen precision); any other model runs as it is, under bf16 autocast for bf16.
Everything runs under ``inference_mode``. ``bench`` measures each choice against the plain
module."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

from .fused import FusedLite0, fused_available
from .lite0 import EfficientNetLite0
from .models import Classifier

log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """``logits: [N, C]`` (float32) and ``features: [N, D]`` (float32, or None)."""

    logits: torch.Tensor
    features: torch.Tensor | None = None

    def topk(self, k: int = 5) -> torch.Tensor:
        """Class indices ``[N, k]``, most probable first."""
        return self.logits.topk(k, dim=1).indices

    def probs(self) -> torch.Tensor:
        return self.logits.softmax(1)


def autocast(precision: str):
    """bf16 autocast on the CPU (AMX makes its matmuls/convs fast), or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision {precision!r}: fp32 or bf16")
    return contextlib.nullcontext()


def to_float(x_uint8: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """``uint8 [B, 3, H, W]`` -> float in ``[0, 1]`` (channels_last memory when asked)."""
    x = x_uint8.float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def fused_model(clf: Classifier, precision: str = "fp32",
                depthwise: str = "bf16") -> FusedLite0 | None:
    """The fused inference network of ``clf`` (built once per precision and kept on ``clf``),
    or None when ``clf`` is not Lite0 or this torch has no fused oneDNN convolution."""
    if not isinstance(clf.net, EfficientNetLite0) or not fused_available():
        return None
    key = (precision, depthwise if precision == "bf16" else "fp32")
    if key not in clf.fused_nets:
        clf.fused_nets[key] = FusedLite0(clf.net, precision, key[1])
    return clf.fused_nets[key]


def predict(clf: Classifier, pixels: torch.Tensor, *, batch_size: int = 8,
            precision: str = "fp32", features: bool = False, channels_last: bool = True,
            fused: bool = True, depthwise: str = "bf16") -> Predictions:
    """Run ``clf`` over ``pixels: uint8 [N, 3, H, W]`` in batches under ``inference_mode``.

    ``features``: also the penultimate features, from the same forward pass. ``fused``: Lite0
    on :class:`~.fused.FusedLite0` (``depthwise``: the precision of its depthwise convolutions
    under bf16); otherwise, and for other models, the module itself (bf16: autocast).
    """
    fast = fused_model(clf, precision, depthwise) if fused else None
    logits, feats = [], []
    with torch.inference_mode(), autocast(precision if fast is None else "fp32"):
        for i in range(0, len(pixels), batch_size):
            x = to_float(pixels[i:i + batch_size], channels_last)
            if fast is not None:
                z = clf.normalise(x)
                f, out = fast.features_and_logits(z) if features else (None, fast(z))
            elif features:
                f, out = clf.features_and_logits(x)
            else:
                f, out = None, clf(x)
            if f is not None:
                feats.append(f.float())
            logits.append(out.float())
    return Predictions(torch.cat(logits), torch.cat(feats) if features else None)
