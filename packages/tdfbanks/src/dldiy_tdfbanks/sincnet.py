"""SincNet filters (Ravanelli & Bengio 2018): band-pass filters parameterised by their two cut-off
frequencies, ``g = 2 f2 sinc(2 pi f2 t) - 2 f1 sinc(2 pi f1 t)`` times a Hamming window. Here
inside the TD-filterbank pipeline (``|.|^2``, squared-Hann lowpass, ``log(1 + x)``) so that only
the filter parameterisation differs; bands start at the mel triangles' half-maximum points
(widened by SincNet's minimum band edges, ``min_hz``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .filterbank import mel_energies, mel_triangles, squared_hann
from .frontend import Frontend, fft_conv


class SincNet(Frontend):
    """``waveform [B, T] -> [B, 40, F]`` with 40 learned band-pass sinc filters."""

    def __init__(self, n_filters: int = 40, taps: int = 401, stride: int = 160,
                 sample_rate: int = 16_000, min_hz: float = 25.0, normalize: bool = True) -> None:
        super().__init__(n_filters, stride, normalize)
        peak, fwhm = mel_triangles(n_filters, sample_rate)
        self.taps, self.sample_rate, self.min_hz = taps, sample_rate, min_hz
        self.low_hz = nn.Parameter((peak - fwhm / 2).clamp(min=0).float())
        self.band_hz = nn.Parameter(fwhm.float())
        # Scale each filter to its mel triangle's energy, as TD-filterbanks are.
        self.register_buffer("energy", mel_energies(n_filters, sample_rate).float())
        self.register_buffer("lowpass", squared_hann(taps)[None].repeat(n_filters, 1))

    def filter_response(self) -> Tensor:
        """The real band-pass filters ``[n, taps]``."""
        nyquist = self.sample_rate / 2
        low = self.low_hz.abs() + self.min_hz
        high = (low + self.band_hz.abs() + self.min_hz).clamp(max=nyquist)
        t = torch.arange(self.taps, dtype=torch.float32, device=low.device)
        t = (t - (self.taps - 1) / 2) / self.sample_rate  # seconds

        def lowpass(f: Tensor) -> Tensor:
            return 2 * f[:, None] * torch.sinc(2 * f[:, None] * t[None])

        g = (lowpass(high) - lowpass(low)) * torch.hamming_window(
            self.taps, periodic=False, device=low.device)[None] / self.sample_rate
        return g * torch.sqrt(self.energy / (g ** 2).sum(1).clamp(min=1e-12))[:, None]

    def forward(self, waveform: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, lengths = self._check(waveform, lengths)
        power = fft_conv(x, self.filter_response()) ** 2  # same energy -> same power as MFSC
        feats = self._pool(power, lengths, self.lowpass)
        return self._finish(torch.log1p(feats.clamp(min=0)), lengths)

