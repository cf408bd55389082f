"""The spectral loss (paper section 3.2, eq. 2): L1 distance between log power spectrograms,
``mean | log(eps + |STFT(x)|^2) - log(eps + |STFT(y)|^2) |``, with n_fft 1024, hop 256, Hann
window, no centering. It ignores phase, so the model may produce any phase that sounds right."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import LossConfig


def log_power(wav: torch.Tensor, n_fft: int = 1024, hop: int = 256,
              epsilon: float = 1.0) -> torch.Tensor:
    """``wav: [B, T]`` -> ``log(eps + |STFT|^2)``: ``[B, n_fft // 2 + 1, frames]`` (float32)."""
    x = wav.float()
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x, n_fft, hop, window=window, center=False, return_complex=True)
    return torch.log(epsilon + spec.real.square() + spec.imag.square())


def spectral_loss(output: torch.Tensor, target: torch.Tensor, n_fft: int = 1024,
                  hop: int = 256, epsilon: float = 1.0, reduce: bool = True) -> torch.Tensor:
    """Eq. 2 between ``output`` and ``target`` ``[B, T]``; ``reduce=False``: one value per
    note ``[B]``."""
    diff = (log_power(output, n_fft, hop, epsilon) - log_power(target, n_fft, hop, epsilon)).abs()
    return diff.mean() if reduce else diff.mean(dim=(1, 2))


def note_loss(output: torch.Tensor, target: torch.Tensor, cfg: LossConfig,
              reduce: bool = True) -> torch.Tensor:
    """The configured training loss: spectral (eq. 2, or the squared distance between the log
    power spectrograms with ``distance="mse"``) or waveform MSE."""
    if cfg.kind == "wav":
        err = F.mse_loss(output.float(), target.float(), reduction="none").mean(dim=1)
        return err.mean() if reduce else err
    if cfg.distance == "mse":
        diff = (log_power(output, cfg.n_fft, cfg.hop, cfg.epsilon)
                - log_power(target, cfg.n_fft, cfg.hop, cfg.epsilon)).square()
        return diff.mean() if reduce else diff.mean(dim=(1, 2))
    return spectral_loss(output, target, cfg.n_fft, cfg.hop, cfg.epsilon, reduce)
