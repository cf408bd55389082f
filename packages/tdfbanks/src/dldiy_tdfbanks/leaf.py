"""LEAF (Zeghidour et al. ICLR 2021), the learnable front end that followed TD-filterbanks:
parametric Gabor filters (learned centre and bandwidth), squared modulus, per-channel Gaussian
lowpass (learned width), then sPCEN compression instead of ``log``. Here as a peer
:class:`Frontend` with the same framing and normalisation as the others.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .filterbank import mel_triangles
from .frontend import Frontend, fft_conv

BLOCK = 64
"""Frames per block of :func:`smooth` (a matrix product inside a block, a carry between)."""


def smooth(energy: Tensor, s: Tensor) -> Tensor:
    """sPCEN's smoother ``M_t = (1 - s) M_{t-1} + s E_t``, ``M_0 = E_0``, per channel (LEAF
    eq. 3): ``energy [B, C, F]``, ``s [C]`` in (0, 1] -> ``[B, C, F]``, without a loop over
    frames: within a block of :data:`BLOCK` frames ``M = W E + (1 - s)^(i + 1) M_carry`` with
    ``W[i, j] = s (1 - s)^(i - j)`` for ``j <= i``; only the carry goes block to block."""
    B, C, F_ = energy.shape
    L = min(F_, BLOCK)
    a = (1 - s)[:, None]
    powers = torch.cumprod(torch.cat([torch.ones_like(a), a.expand(C, L)], 1), 1)  # a^0..a^L
    lag = torch.arange(L, device=energy.device)
    lag = lag[:, None] - lag[None]  # i - j
    W = powers[:, lag.clamp(min=0)] * (lag >= 0) * s[:, None, None]  # [C, L, L]
    blocks = -(-F_ // L)
    e = torch.nn.functional.pad(energy, (0, blocks * L - F_)).unflatten(-1, (blocks, L))
    within = torch.einsum("cij,bcnj->bcni", W.to(energy.dtype), e)  # [B, C, blocks, L]
    carry_w = powers[:, 1:].to(energy.dtype)  # (1 - s)^(i + 1)
    carry, out = energy[..., 0], []  # M_{-1} = E_0 gives M_0 = E_0
    for n in range(blocks):
        block = within[:, :, n] + carry_w * carry[..., None]
        out.append(block)
        carry = block[..., -1]
    return torch.cat(out, -1)[..., :F_]


class PCEN(nn.Module):
    """Per-channel energy normalisation with learned parameters (sPCEN, LEAF eq. 3):
    ``M_t = (1 - s) M_{t-1} + s E_t``, ``out = (E / (eps + M)^alpha + delta)^r - delta^r``."""

    def __init__(self, n: int, alpha: float = 0.96, s: float = 0.04, delta: float = 2.0,
                 r: float = 0.5, eps: float = 1e-6) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.full((n, 1), alpha))
        self.s = nn.Parameter(torch.full((n, 1), s))
        self.delta = nn.Parameter(torch.full((n, 1), delta))
        self.r = nn.Parameter(torch.full((n, 1), r))
        self.eps = eps

    def forward(self, energy: Tensor) -> Tensor:
        """``energy [B, C, F] >= 0 -> [B, C, F]`` (causal: padding never reaches valid frames)."""
        m = smooth(energy, self.s.clamp(1e-3, 1.0)[:, 0])
        alpha, r = self.alpha.clamp(0.0, 1.0), self.r.clamp(0.05, 1.0)
        delta = self.delta.clamp(min=1e-3)
        return (energy / (self.eps + m) ** alpha + delta) ** r - delta ** r


class LEAF(Frontend):
    """``waveform [B, T] -> [B, 40, F]``: Gabor(centre, bandwidth) -> |.|^2 -> Gaussian lowpass
    -> sPCEN -> normalisation. Gabor filters start at the mel triangles (as TD-filterbanks)."""

    def __init__(self, n_filters: int = 40, taps: int = 401, stride: int = 160,
                 sample_rate: int = 16_000, normalize: bool = True) -> None:
        super().__init__(n_filters, stride, normalize)
        peak, fwhm = mel_triangles(n_filters, sample_rate)
        s = fwhm / (2 * math.sqrt(math.log(2)))
        self.taps = taps
        self.centre = nn.Parameter((2 * math.pi * peak / sample_rate).float())  # rad/sample
        self.sigma = nn.Parameter((sample_rate / (2 * math.pi * s)).float())  # samples
        self.lowpass_width = nn.Parameter(torch.full((n_filters,), 0.4))
        self.pcen = PCEN(n_filters)

    def filter_response(self) -> Tensor:
        """The complex Gabor filters ``[n, taps]``, normalised to unit peak frequency gain."""
        t = torch.arange(self.taps, dtype=torch.float32, device=self.centre.device)
        t = t - (self.taps - 1) / 2
        sigma = self.sigma.clamp(1.0, self.taps / 2)[:, None]
        centre = self.centre.clamp(0.0, math.pi)[:, None]
        envelope = torch.exp(-0.5 * (t / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
        return torch.complex(envelope * torch.cos(centre * t), envelope * torch.sin(centre * t))

    def forward(self, waveform: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, lengths = self._check(waveform, lengths)
        phi = self.filter_response()
        y = fft_conv(x, torch.cat([phi.real, phi.imag]))
        power = y[:, : self.n_channels] ** 2 + y[:, self.n_channels:] ** 2
        t = torch.arange(self.taps, dtype=x.dtype, device=x.device) - (self.taps - 1) / 2
        width = self.lowpass_width.clamp(2 / self.taps, 0.5)[:, None] * (self.taps - 1) / 2
        window = torch.exp(-0.5 * (t / width) ** 2)
        energy = self._pool(power, lengths, window).clamp(min=0)
        return self._finish(self.pcen(energy), lengths)
