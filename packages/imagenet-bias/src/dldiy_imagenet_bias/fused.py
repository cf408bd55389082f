"""Inference-only EfficientNet-Lite0 on fused oneDNN kernels (what ``predict`` runs).

The plain module (:class:`~.lite0.EfficientNetLite0`) spends a third of its CPU time outside
its convolutions: ReLU6 (a ``clamp`` over every expanded activation) and the residual adds each
read and write tensors that do not fit in cache. Here each convolution carries its ReLU6 or its
residual add as a oneDNN post-op (``torch.ops.mkldnn._convolution_pointwise``, the kernels
PyTorch's own compiler emits for CPU), on BatchNorm-folded weights packed once in
``channels_last`` in the chosen precision. TensorFlow's asymmetric "SAME" padding of the
stride-2 depthwise convolutions is made on the narrow input of the 1x1 expansion before them, in
a buffer kept between calls, instead of a fresh zero-filled copy of the expanded activation.
Same function as the plain module (tested against it, even and odd sizes); no autograd, so
attacks and attributions keep using the plain module.

Precision (``bf16``): the 1x1 (pointwise) convolutions, which hold 90 % of the multiply-adds,
run in bf16 with fp32 accumulation; their activations are stored in bf16. The depthwise
convolutions are the precision-sensitive part (few taps, folded BatchNorm scales, outputs that
cancel against their bias: ``bench`` measures it), so ``depthwise`` chooses ``bf16`` (every
convolution in bf16: fastest) or ``fp32`` (the depthwise convolutions in fp32, their
activations converted around them: fewer top-1 changes, slower). The stem, the pooled
features and the classifier head stay fp32 in both.
"""

from __future__ import annotations

import torch
from torch import nn

from .lite0 import EfficientNetLite0, fold_batchnorm, same_padding

CL = torch.channels_last
DEPTHWISE_MODES = ("bf16", "fp32")


def fused_available() -> bool:
    """oneDNN's fused convolution is in this torch build (CPU builds with mkldnn)."""
    return torch.backends.mkldnn.is_available() and \
        hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class _Conv:
    """One folded convolution: weights ``[Cout, Cin/groups, k, k]`` packed in ``dtype``."""

    def __init__(self, conv: nn.Conv2d, dtype: torch.dtype, act: bool):
        w = conv.weight.detach().float()
        b = conv.bias.detach().float()
        self.kernel, self.stride, self.groups = conv.kernel_size[0], conv.stride[0], conv.groups
        self.act = act
        self.dtype = dtype
        self.w = w.to(dtype).contiguous(memory_format=CL)
        self.b = b.to(dtype)
        self._padded: dict[tuple, torch.Tensor] = {}

    def pads(self, x: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
        """TF "SAME" (before, after) padding of ``x``'s height and width."""
        return (same_padding(x.shape[-2], self.kernel, self.stride),
                same_padding(x.shape[-1], self.kernel, self.stride))

    def pad_into(self, x: torch.Tensor, ph: tuple[int, int],
                 pw: tuple[int, int]) -> torch.Tensor:
        """``x`` copied into a zero-bordered buffer kept for its shape (a fresh ``F.pad``
        output would be allocated and zero-filled on every call)."""
        b, c, h, w = x.shape
        key = (b, c, h, w, x.dtype, ph, pw)
        buf = self._padded.get(key)
        if buf is None:
            buf = self._padded[key] = x.new_zeros(b, c, h + ph[0] + ph[1], w + pw[0] + pw[1]) \
                .contiguous(memory_format=CL)
        buf[:, :, ph[0]:ph[0] + h, pw[0]:pw[0] + w].copy_(x)
        return buf

    def run(self, x: torch.Tensor, pad: list[int],
            residual: torch.Tensor | None = None) -> torch.Tensor:
        """The fused kernel on ``x`` with symmetric ``pad`` (height, width)."""
        s = [self.stride, self.stride]
        if residual is not None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, residual, self.w, self.b, pad, s, [1, 1], self.groups, "add", 1.0, None, [],
                None)
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.w, self.b, pad, s, [1, 1], self.groups, "hardtanh" if self.act else "none",
            [0.0, 6.0] if self.act else [], None)

    def __call__(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [B, Cin, H, W]`` (channels_last, ``self.dtype``) -> ``[B, Cout, H', W']``:
        ``relu6(conv(x))`` when ``act``, ``conv(x) + residual`` when a residual is given."""
        ph, pw = self.pads(x)
        if ph[0] == ph[1] and pw[0] == pw[1]:
            return self.run(x, [ph[0], pw[0]], residual)
        return self.run(self.pad_into(x, ph, pw), [0, 0], residual)


def _expand_padded(expand: _Conv, depth: _Conv, x: torch.Tensor) -> torch.Tensor | None:
    """1x1 expansion straight into the zero-bordered input of a stride-2 depthwise convolution
    with asymmetric "SAME" padding: the narrow block input is padded (6x fewer channels than
    the expanded activation), expanded, and its border (ReLU6 of the bias) zeroed. None when the
    padding is symmetric (the depthwise kernel pads by itself)."""
    ph, pw = depth.pads(x)
    if ph[0] == ph[1] and pw[0] == pw[1]:
        return None
    e = expand.run(expand.pad_into(x, ph, pw), [0, 0])
    if ph[0]:
        e[:, :, :ph[0]].zero_()
    if ph[1]:
        e[:, :, -ph[1]:].zero_()
    if pw[0]:
        e[:, :, :, :pw[0]].zero_()
    if pw[1]:
        e[:, :, :, -pw[1]:].zero_()
    return e


class FusedLite0:
    """Inference-only Lite0: ``z: [B, 3, H, W]`` normalised input -> features ``[B, 1280]``
    and logits ``[B, 1000]`` (both fp32), in one pass.

    ``precision``: ``fp32`` or ``bf16`` (pointwise convolutions in bf16); ``depthwise``: one of
    :data:`DEPTHWISE_MODES` (bf16 only). The network is folded (a copy: ``net`` is untouched).
    """

    def __init__(self, net: EfficientNetLite0, precision: str = "fp32",
                 depthwise: str = "bf16"):
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision {precision!r}: fp32 or bf16")
        if depthwise not in DEPTHWISE_MODES:
            raise ValueError(f"depthwise {depthwise!r}: one of {DEPTHWISE_MODES}")
        if not all(isinstance(m, nn.Identity) for m in (net._bn0, net._bn1)):
            import copy

            net = fold_batchnorm(copy.deepcopy(net).eval())
        self.precision, self.depthwise = precision, depthwise
        pw = torch.bfloat16 if precision == "bf16" else torch.float32
        dw = torch.float32 if precision == "fp32" or depthwise == "fp32" else torch.bfloat16
        self.dtype, self.dw_dtype = pw, dw
        self.stem = _Conv(net._conv_stem, torch.float32, act=True)
        self.blocks = []
        for blk in net._blocks:
            expand = _Conv(blk._expand_conv, pw, act=True) if blk.has_expand else None
            depth = _Conv(blk._depthwise_conv, dw, act=True)
            project = _Conv(blk._project_conv, pw, act=False)
            self.blocks.append((expand, depth, project, blk.skip))
        self.head = _Conv(net._conv_head, pw, act=True)
        self.fc_w = net._fc.weight.detach().float().clone()
        self.fc_b = net._fc.bias.detach().float().clone()

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[B, 1280]`` (fp32) of normalised ``z: [B, 3, H, W]``."""
        x = self.stem(z.float().contiguous(memory_format=CL)).to(self.dtype)
        for expand, depth, project, skip in self.blocks:
            e = _expand_padded(expand, depth, x) if expand is not None and depth.stride > 1 \
                else None
            if e is not None:  # already padded for the depthwise kernel
                h = depth.run(e.to(self.dw_dtype), [0, 0])
            else:
                h = expand(x) if expand is not None else x
                h = depth(h.to(self.dw_dtype))
            h = h.to(self.dtype)
            x = project(h, residual=x) if skip else project(h)
        return self.head(x).mean((2, 3), dtype=torch.float32)

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, 1000]`` (fp32) from features ``[B, 1280]``."""
        return torch.addmm(self.fc_b, feats, self.fc_w.t())

    def features_and_logits(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(z)
        return f, self.classify(f)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(z))
