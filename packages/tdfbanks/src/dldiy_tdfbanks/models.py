"""The phone recognizer: any :class:`Frontend`, then a wav2letter-style stack of 1-d
convolutions (kernel 5, PReLU, dropout) and a 1x1 convolution to phone log-probabilities for CTC."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dldiy_core import UserError

from .config import FRONTENDS
from .frontend import GAIN, MFSC, Frontend
from .phones import TIMIT61

PREEMPHASIS = 0.97
"""Pre-emphasis coefficient: ``y[t] = x[t] - 0.97 x[t - 1]`` (the TD-filterbank's init)."""


def make_frontend(name: str, preemphasis: bool = False, impl: str = "auto",
                  gain: float = GAIN) -> Frontend | PreEmphasis:
    """``mfsc``, ``tdfb-<mode>`` (fixed, learn-all, learn-filterbank, random), ``leaf``,
    ``sincnet``; ``gain`` scales the waveform first (:attr:`Frontend.gain`).

    ``preemphasis`` applies to every front end alike (a fair comparison): the TD-filterbank's
    own first-order filter (learned in ``learn-all``, as in the paper, fixed at 0.97 in the
    other modes), a fixed 0.97 filter (:class:`PreEmphasis`) before MFSC, LEAF and SincNet."""
    frontend = _frontend(name, preemphasis, impl)
    frontend.gain = gain
    if preemphasis and not name.startswith("tdfb-"):
        return PreEmphasis(frontend)
    return frontend


class PreEmphasis(nn.Module):
    """A fixed first-order pre-emphasis before ``frontend`` (same interface):
    ``waveform [B, T] -> frontend(y [B, T])`` with ``y[t] = x[t] - c x[t - 1]``, ``x[-1] = 0``
    (the TD-filterbank's own filter at its initial value)."""

    def __init__(self, frontend: Frontend, coefficient: float = PREEMPHASIS) -> None:
        super().__init__()
        self.frontend = frontend
        self.register_buffer("kernel", torch.tensor([-coefficient, 1.0]), persistent=False)

    @property
    def n_channels(self) -> int:
        return self.frontend.n_channels

    @property
    def stride(self) -> int:
        return self.frontend.stride

    @property
    def gain(self) -> float:
        return self.frontend.gain

    def frames(self, lengths: Tensor) -> Tensor:
        return self.frontend.frames(lengths)

    def forward(self, waveform: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y = F.conv1d(F.pad(waveform[:, None], (1, 0)), self.kernel.view(1, 1, 2))[:, 0]
        return self.frontend(y, lengths)


def _frontend(name: str, preemphasis: bool, impl: str) -> Frontend:
    from .filterbank import MODES, TDFilterbank

    if name == "mfsc":
        return MFSC()
    if name.startswith("tdfb-") and name[5:] in MODES:
        return TDFilterbank(mode=name[5:], preemphasis=preemphasis, impl=impl)  # type: ignore
    if name == "leaf":
        from .leaf import LEAF

        return LEAF()
    if name == "sincnet":
        from .sincnet import SincNet

        return SincNet()
    raise UserError(f"unknown front end {name!r} (choose from {', '.join(FRONTENDS)})")


class Recognizer(nn.Module):
    """``waveform [B, T] -> log-probabilities [B, F', 1 + 61]`` (class 0 is the CTC blank)."""

    def __init__(self, frontend: Frontend | PreEmphasis, channels: int = 1000, layers: int = 5,
                 kernel: int = 5, first_stride: int = 1, dropout: float = 0.5,
                 n_phones: int = len(TIMIT61), norm: bool = False) -> None:
        super().__init__()
        self.frontend, self.first_stride = frontend, first_stride
        self.blocks = nn.ModuleList()
        c_in = frontend.n_channels
        for i in range(layers):
            stride = first_stride if i == 0 else 1
            conv = nn.Conv1d(c_in, channels, kernel, stride=stride, padding=kernel // 2)
            # weight normalisation, as in wav2letter: faster, steadier convergence
            self.blocks.append(nn.Sequential(
                nn.utils.parametrizations.weight_norm(conv) if norm else conv,
                nn.PReLU(channels), nn.Dropout(dropout)))
            c_in = channels
        self.head = nn.Conv1d(c_in, n_phones + 1, 1)
        self.kernel = kernel

    def output_frames(self, frames: Tensor) -> Tensor:
        """Valid output frames for ``frames`` front-end frames (the strided first layer)."""
        pad = self.kernel // 2
        return (frames + 2 * pad - self.kernel).div(self.first_stride, rounding_mode="floor") + 1

    def forward(self, waveform: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if any(p.requires_grad for p in self.frontend.parameters()):
            feats, frames = self.frontend(waveform, lengths)
        else:  # a fixed front end needs no graph
            with torch.no_grad():
                feats, frames = self.frontend(waveform, lengths)
        x, out_frames = feats, self.output_frames(frames)
        valid = None
        for block in self.blocks:
            x = block(x)
            if valid is None:  # the frame count is set by the first block's stride
                valid = (torch.arange(x.shape[-1], device=x.device)[None] < out_frames[:, None]
                         )[:, None].to(x.dtype)
            # zero the padding frames so an utterance's outputs do not depend on its batch
            x = x * valid
        logits = self.head(x).transpose(1, 2)
        return logits.log_softmax(-1), out_frames
