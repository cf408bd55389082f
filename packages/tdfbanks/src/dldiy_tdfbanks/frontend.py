"""The front-end interface (``waveform [B, T] -> features [B, C, F]``) and MFSC, the baseline.

Every front end frames like torchaudio's centred STFT: ``F = T // stride + 1`` frames, frame
``f`` centred on sample ``f * stride``. A padded batch with ``lengths`` gives, on each item's
valid frames, what the item alone gives (tested); padding frames are 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def normalise(feats: Tensor, frames: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-utterance, per-channel mean-variance normalisation over the valid frames only:
    ``[B, C, F]`` with ``frames [B]``; padding frames come out as 0."""
    mask = (torch.arange(feats.shape[-1], device=feats.device)[None] < frames[:, None])
    mask = mask[:, None].to(feats.dtype)
    n = frames.to(feats.dtype).clamp(min=1)[:, None, None]
    mean = (feats * mask).sum(-1, keepdim=True) / n
    var = (((feats - mean) * mask) ** 2).sum(-1, keepdim=True) / n
    return (feats - mean) / torch.sqrt(var + eps) * mask


GAIN = 32768.0
"""Default input scale: waveforms in [-1, 1] are read in 16-bit units (TIMIT's samples), where
``log(1 + x)`` acts as the paper's log compression (in [-1, 1], most speech energies are below
1, where it is nearly linear; that gave 7-10 points higher PER in the quick experiment). The
band path is checked against the direct convolution in this regime (``test_band_exact.py``)."""


def nice_size(n: int) -> int:
    """The smallest ``m >= n`` with no prime factor above 5 (fast FFT sizes)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def fft_conv(x: Tensor, weight: Tensor) -> Tensor:
    """``F.conv1d(x[:, None], weight[:, None], padding=K // 2)`` by FFT: ``[B, T] -> [B, C, T]``
    for an odd filter length ``K`` (cross-correlation, like conv1d)."""
    T, K = x.shape[-1], weight.shape[-1]
    n = nice_size(T + K - 1)
    X = torch.fft.rfft(x, n=n)
    W = torch.fft.rfft(weight.flip(-1), n=n)
    y = torch.fft.irfft(X[:, None] * W[None], n=n)
    return y[..., K // 2: K // 2 + T]


class Frontend(nn.Module):
    """Base class: ``forward(waveform [B, T], lengths [B] | None) -> (features [B, C, F],
    frames [B])``."""

    def __init__(self, n_channels: int, stride: int, normalize: bool = True) -> None:
        super().__init__()
        self.n_channels, self.stride, self.normalize = n_channels, stride, normalize
        self.register_buffer("input_gain", torch.tensor(GAIN))
        """Input scale (:data:`GAIN`), a buffer: saved in the state dict with the weights it
        was trained with (:attr:`gain` reads and sets it)."""

    @property
    def gain(self) -> float:
        return float(self.input_gain)

    @gain.setter
    def gain(self, value: float) -> None:
        with torch.no_grad():
            self.input_gain.fill_(float(value))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # A state dict saved before the gain was a buffer: keep the gain the config set.
        state_dict.setdefault(prefix + "input_gain", self.input_gain.detach().clone())
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def frames(self, lengths: Tensor) -> Tensor:
        return torch.div(lengths, self.stride, rounding_mode="floor") + 1

    def _check(self, waveform: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        if waveform.dim() != 2:
            raise ValueError(f"waveform must be [B, T], got shape {tuple(waveform.shape)}")
        if lengths is None:
            lengths = torch.full((len(waveform),), waveform.shape[-1], device=waveform.device)
        waveform = waveform * self.input_gain.to(waveform.dtype)  # no host sync on a GPU
        return waveform, lengths.to(waveform.device)

    def _mask(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Zero ``x [B, C, T]`` past each item's length (filter ringing past the end)."""
        valid = torch.arange(x.shape[-1], device=x.device)[None] < lengths[:, None]
        return x * valid[:, None].to(x.dtype)

    def _pool(self, power: Tensor, lengths: Tensor, window: Tensor) -> Tensor:
        """Lowpass + decimate ``power [B, C, T]`` with per-channel ``window [C, K]`` (odd K),
        frames centred on multiples of the stride: ``[B, C, T // stride + 1]``."""
        half = window.shape[-1] // 2
        power = F.pad(self._mask(power, lengths), (half, half + 1))
        return F.conv1d(power, window[:, None], stride=self.stride, groups=window.shape[0])

    def _finish(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        frames = self.frames(lengths)
        return (normalise(feats, frames) if self.normalize else feats), frames


class MFSC(Frontend):
    """Log mel filterbank energies from torchaudio (the paper's baseline): 25 ms Hann windows
    every 10 ms, 512-point FFT, 40 HTK mel bands to 8 kHz, ``log(1 + x)``, normalised."""

    def __init__(self, n_mels: int = 40, sample_rate: int = 16_000, stride: int = 160,
                 win_length: int = 400, n_fft: int = 512, normalize: bool = True) -> None:
        import torchaudio

        super().__init__(n_mels, stride, normalize)
        # Zero (not reflect) padding: an utterance in a padded batch sees the same zeros.
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate, n_fft=n_fft, win_length=win_length, hop_length=stride, n_mels=n_mels,
            mel_scale="htk", pad_mode="constant", power=2.0)

    def forward(self, waveform: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, lengths = self._check(waveform, lengths)
        x = self._mask(x[:, None], lengths)[:, 0]
        return self._finish(torch.log1p(self.mel(x)), lengths)
