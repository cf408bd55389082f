"""Batched inference: logits and penultimate features of uint8 images, fp32 or bf16 autocast."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

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


def predict(clf: Classifier, pixels: torch.Tensor, *, batch_size: int = 64,
            precision: str = "fp32", features: bool = False,
            channels_last: bool = True) -> Predictions:
    """Run ``clf`` over ``pixels: uint8 [N, 3, H, W]`` in batches under ``inference_mode``."""
    logits, feats = [], []
    with torch.inference_mode(), autocast(precision):
        for i in range(0, len(pixels), batch_size):
            x = to_float(pixels[i:i + batch_size], channels_last)
            if features:
                f, out = clf.features_and_logits(x)
                feats.append(f.float())
            else:
                out = clf(x)
            logits.append(out.float())
    return Predictions(torch.cat(logits), torch.cat(feats) if features else None)
