"""Time-domain filterbanks (Zeghidour et al. 2018, section 2): a mel filterbank as a layer.

``x [B, T] -> |x * phi_n|^2 -> lowpass (squared Hann, stride 160) -> log(1 + |.|) -> per-utterance
mean-variance normalisation -> [B, 40, F]``, ``F = T // 160 + 1`` frames centred every 10 ms,
exactly the frames of torchaudio's centred MelSpectrogram.

phi_n are complex Gabor filters (40 complex = 80 real, 401 taps) initialised to match the 40
triangles of a torchaudio mel filterbank: centre = triangle peak, Gaussian power-response FWHM =
triangle FWHM, and filter energy = triangle area, so that for a stationary input the expected
feature equals the mel filterbank energy (section 2.2).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import IMPLS
from .frontend import Frontend, fft_conv
from .subband import SubbandPlan

Mode = Literal["fixed", "learn-all", "learn-filterbank", "random"]
MODES: tuple[str, ...] = ("fixed", "learn-all", "learn-filterbank", "random")
Impl = Literal["auto", "fft", "direct", "band"]


def mel_triangles(n_filters: int = 40, sample_rate: int = 16_000, f_min: float = 0.0,
                  f_max: float | None = None, resolution_hz: float = 1.0) -> tuple[Tensor, Tensor]:
    """Peak frequency and full width at half maximum (Hz) of each torchaudio (HTK) mel triangle,
    read off the triangles sampled every ``resolution_hz``. Returns two ``[n_filters]`` tensors."""
    import torchaudio.functional as AF

    f_max = sample_rate / 2 if f_max is None else f_max
    n = int(sample_rate / 2 / resolution_hz) + 1
    freqs = torch.linspace(0, sample_rate / 2, n, dtype=torch.float64)
    tri = AF.melscale_fbanks(n, f_min, f_max, n_filters, sample_rate, mel_scale="htk").double().T
    peak = freqs[tri.argmax(1)]
    above = tri >= 0.5 * tri.amax(1, keepdim=True)
    first = above.float().argmax(1)
    last = n - 1 - above.flip(1).float().argmax(1)
    fwhm = (last - first + 1).double() * (freqs[1] - freqs[0])
    return peak, fwhm


def mel_energies(n_filters: int = 40, sample_rate: int = 16_000, n_fft: int = 512) -> Tensor:
    """Area of each mel triangle on the ``n_fft`` grid MFSC uses ``[n_filters]``: a white input
    gives MFSC energy proportional to it (the energy the Gabor filters are matched to)."""
    import torchaudio.functional as AF

    tri = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, sample_rate / 2, n_filters, sample_rate,
                             mel_scale="htk")
    return tri.double().sum(0)


def gabor_filters(centre_hz: Tensor, fwhm_hz: Tensor, energy: Tensor, taps: int = 401,
                  sample_rate: int = 16_000) -> Tensor:
    """Complex Gabor filters ``[n, taps]``: ``eta * exp(-t^2 / 2 sigma^2) * exp(2 i pi f t)``.

    The amplitude response ``|G(f)|`` is a Gaussian of std ``s``, so the power response
    ``|G(f)|^2 = exp(-(f - f_c)^2 / s^2)`` has FWHM ``2 s sqrt(ln 2)``; the time-domain std is
    ``sigma = 1 / (2 pi s)``. ``eta`` makes ``sum |phi|^2 = energy``.
    """
    s = fwhm_hz.double() / (2 * math.sqrt(math.log(2)))
    sigma = sample_rate / (2 * math.pi * s)  # samples
    t = torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2
    envelope = torch.exp(-0.5 * (t[None] / sigma[:, None]) ** 2)
    phase = 2 * math.pi * centre_hz.double()[:, None] / sample_rate * t[None]
    phi = envelope * torch.exp(1j * phase)
    phi = phi * torch.sqrt(energy.double() / (phi.abs() ** 2).sum(1))[:, None]
    return phi.to(torch.complex64)


def squared_hann(taps: int = 401) -> Tensor:
    """The lowpass window ``[taps]``: a squared (symmetric) Hann window, peak 1."""
    return torch.hann_window(taps, periodic=False, dtype=torch.float64).pow(2).float()


class TDFilterbank(Frontend):
    """The learnable time-domain filterbank; ``waveform [B, T] -> features [B, 40, F]``.

    ``mode``: ``fixed`` (no trainable parameter: a mel filterbank computed in the time domain),
    ``learn-all`` (filters, lowpass and pre-emphasis), ``learn-filterbank`` (filters only),
    ``random`` (random filters, then learn-all). ``impl``: ``fft`` or ``direct`` convolution
    (equal up to float rounding; the direct one is the reference), ``band`` (fixed filters only:
    each channel in its own band at a reduced rate, :mod:`.subband`; normalised features within
    0.01 standard deviations of the reference on real speech) or ``auto`` (``band`` when fixed,
    else ``fft``).
    """

    def __init__(self, n_filters: int = 40, taps: int = 401, stride: int = 160,
                 sample_rate: int = 16_000, mode: Mode = "fixed", preemphasis: bool = False,
                 impl: Impl = "auto", normalize: bool = True) -> None:
        super().__init__(n_filters, stride, normalize)
        if mode not in MODES:
            raise ValueError(f"unknown TD-filterbank mode {mode!r} (choose from {MODES})")
        if impl not in IMPLS or (impl == "band" and mode != "fixed"):
            raise ValueError(f"impl {impl!r} is not available for mode {mode!r} (choose from "
                             f"{IMPLS}; band needs fixed filters)")
        if impl == "auto":
            impl = "band" if mode == "fixed" else "fft"
        if taps % 2 == 0:
            raise ValueError("taps must be odd (filters centred on a sample)")
        self.mode, self.impl, self.taps, self.sample_rate = mode, impl, taps, sample_rate
        self._plan: SubbandPlan | None = None
        self._plan_version: tuple = ()
        if mode == "random":  # from the global generator: the run's seed decides
            weight = torch.randn(2 * n_filters, taps) / math.sqrt(taps)
        else:
            peak, fwhm = mel_triangles(n_filters, sample_rate)
            phi = gabor_filters(peak, fwhm, mel_energies(n_filters, sample_rate), taps, sample_rate)
            weight = torch.view_as_real(phi).permute(0, 2, 1).reshape(2 * n_filters, taps)
        lowpass = squared_hann(taps)[None].repeat(n_filters, 1)
        learn_filters = mode != "fixed"
        learn_lowpass = mode in ("learn-all", "random")
        self.filters = nn.Parameter(weight.float(), requires_grad=learn_filters)
        """``[2n, taps]``: real and imaginary parts of filter n at rows 2n and 2n+1."""
        self.lowpass = nn.Parameter(lowpass, requires_grad=learn_lowpass)
        self.preemphasis = (nn.Parameter(torch.tensor([-0.97, 1.0]), requires_grad=learn_lowpass)
                            if preemphasis else None)

    def filter_response(self) -> Tensor:
        """The complex filters ``[n, taps]`` (for plots and frequency responses)."""
        w = self.filters.detach().reshape(-1, 2, self.taps)
        return torch.complex(w[:, 0], w[:, 1])

    def subband_plan(self) -> SubbandPlan:
        """The band plan of the current filters and lowpass: built on the CPU, its tensors
        kept on each device it runs on (:meth:`.SubbandPlan.on`); rebuilt when the filters or
        the lowpass change (an in-place change, as ``load_state_dict``, bumps their version:
        checking it needs no copy from the device)."""
        version = (self.filters._version, self.lowpass._version, self.filters.data_ptr(),
                   self.lowpass.data_ptr())
        if self._plan is not None and self._plan_version == version:
            return self._plan
        filters, window = self.filter_response().cpu(), self.lowpass.detach().cpu()
        plan = self._plan
        if plan is None or not (torch.equal(plan.filters, filters)
                                and torch.equal(plan.window, window)):
            self._plan = plan = SubbandPlan(filters.clone(), window.clone(), self.stride,
                                            self.sample_rate)
        self._plan_version = version
        return plan

    def forward(self, waveform: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, lengths = self._check(waveform, lengths)
        if self.preemphasis is not None:
            x = F.conv1d(F.pad(x[:, None], (1, 0)), self.preemphasis.view(1, 1, 2))[:, 0]
        if self.impl == "band":
            feats = self.subband_plan()(x, lengths)
        else:
            if self.impl == "fft":
                y = fft_conv(x, self.filters)
            else:
                y = F.conv1d(x[:, None], self.filters[:, None], padding=self.taps // 2)
            power = y.unflatten(1, (-1, 2)).pow(2).sum(2)  # [B, n, T]
            feats = self._pool(power, lengths, self.lowpass)
        return self._finish(torch.log1p(feats.abs()), lengths)
