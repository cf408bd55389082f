"""SING's networks (Défossez et al. 2018, section 3): the convolutional autoencoder whose decoder
turns 265 steps of 128-d embeddings into a 4-second waveform, the LSTM sequence generator that
produces those embeddings from (instrument, pitch, velocity), and SING = generator + decoder.

Length arithmetic (paper sizes): the decoder's first convolution (k=9, no padding) takes 265
steps to 257; the transposed convolution (k=1024, stride 256, padding 1280) gives
(257 - 1) * 256 - 2 * 1280 + 1024 = 64000 samples. The encoder sees the 64000-sample note zero
padded by 2304 on each side: (68608 - 1024) / 256 + 1 = 265 steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dldiy_core import ConfigError

from .config import ModelConfig

NOTE_SAMPLES = 64000


def squared_hann(n: int) -> torch.Tensor:
    return torch.hann_window(n) ** 2


class _Windowed:
    """A conv whose kernel is multiplied by a squared Hann window (smooths the learned filters
    of the wave-facing layers, as in the released SING)."""

    weight: torch.Tensor

    def __init__(self, *args, window: bool = True, **kwargs):
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.register_buffer("window", squared_hann(self.kernel_size[0]) if window else None,
                             persistent=False)

    def windowed(self) -> torch.Tensor:
        return self.weight if self.window is None else self.weight * self.window.to(self.weight)


class WindowedConv1d(_Windowed, nn.Conv1d):
    """Conv1d with a squared-Hann-windowed kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.windowed(), self.bias, self.stride, self.padding)


class WindowedConvTranspose1d(_Windowed, nn.ConvTranspose1d):
    """ConvTranspose1d with a squared-Hann-windowed kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, self.windowed(), self.bias, self.stride, self.padding)


class OverlapAddTranspose1d(nn.Module):
    """The same map as a (windowed) single-output ``ConvTranspose1d``, computed as one GEMM
    ``[B*T, C] x [C, K]`` (bf16 on AMX when the weights are bf16) followed by an overlap-add of
    the frames in float32. On this CPU PyTorch's bf16 transposed convolution is much slower
    than its fp32 one, while the GEMM is the fast path."""

    def __init__(self, conv: WindowedConvTranspose1d):
        super().__init__()
        if conv.out_channels != 1 or conv.groups != 1 or conv.dilation[0] != 1:
            raise ValueError("OverlapAddTranspose1d handles one output channel, no groups")
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        w = c.windowed()
        k, stride, pad = c.kernel_size[0], c.stride[0], c.padding[0]
        frames = torch.matmul(x.transpose(1, 2), w[:, 0, :].to(x.dtype))  # [B, T, K]
        length = (x.shape[-1] - 1) * stride + k
        out = F.fold(frames.float().transpose(1, 2), (1, length), (1, k), stride=(1, stride))
        out = out[:, 0, :, pad:length - pad]  # [B, 1, L]
        return out + c.bias.float()[:, None] if c.bias is not None else out


def output_padding(cfg: ModelConfig) -> int:
    """Padding of the decoder's transposed convolution: kernel + stride (1280)."""
    return cfg.kernel + cfg.stride


def num_steps(cfg: ModelConfig, length: int = NOTE_SAMPLES) -> int:
    """Embedding steps the decoder needs for ``length`` samples (265 at paper sizes)."""
    inner = length + 2 * output_padding(cfg) - cfg.kernel
    if inner % cfg.stride or inner < 0:
        raise ConfigError(f"model.kernel/stride={cfg.kernel}/{cfg.stride}: {length} samples "
                          "are not a whole number of decoder steps")
    return inner // cfg.stride + 1 + cfg.context - 1


def encoder_padding(cfg: ModelConfig) -> int:
    """Zeros added on each side of a note before the encoder (2304 at paper sizes), so that it
    yields exactly :func:`num_steps` embeddings."""
    return output_padding(cfg) + (cfg.context - 1) * cfg.stride // 2


class ConvDecoder(nn.Module):
    """Embeddings ``[B, D, T]`` -> waveform ``[B, (T - context) * stride - 2 * pad + kernel]``:
    conv D->C (k=context) + ReLU, ``rewrite`` 1x1 convs C->C + ReLU, transposed conv C->1."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(cfg.dimension, cfg.channels, cfg.context), nn.ReLU()]
        for _ in range(cfg.rewrite):
            layers += [nn.Conv1d(cfg.channels, cfg.channels, 1), nn.ReLU()]
        layers.append(WindowedConvTranspose1d(cfg.channels, 1, cfg.kernel, cfg.stride,
                                              padding=output_padding(cfg), window=cfg.window))
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z).squeeze(1)


class ConvEncoder(nn.Module):
    """Waveform ``[B, 64000]`` -> embeddings ``[B, D, 265]``: the decoder's mirror (windowed
    conv 1->C with k=kernel, stride; ``rewrite`` 1x1 convs + ReLU; 1x1 conv C->D)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pad = encoder_padding(cfg)
        layers: list[nn.Module] = [WindowedConv1d(1, cfg.channels, cfg.kernel, cfg.stride,
                                                  window=cfg.window), nn.ReLU()]
        for _ in range(cfg.rewrite):
            layers += [nn.Conv1d(cfg.channels, cfg.channels, 1), nn.ReLU()]
        layers.append(nn.Conv1d(cfg.channels, cfg.dimension, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.layers(F.pad(wav, (self.pad, self.pad)).unsqueeze(1))


def scaled_init(encoder: ConvEncoder | None, decoder: ConvDecoder | None,
                cfg: ModelConfig) -> None:
    """``model.init = "scaled"``: He-normal weights (ReLU gain) and zero biases in every
    convolution; the encoder's windowed first layer divided by ``input_rms`` and by the RMS of
    its window, its last (linear) layer with gain 1, the decoder's transposed convolution
    ``output_gain * sqrt(2 / (channels * kernel))``. Embeddings then have about unit scale and
    the output depends on the input at step 0 (see :class:`~dldiy_sing.config.ModelConfig`)."""
    with torch.no_grad():
        for part in (encoder, decoder):
            if part is None:
                continue
            convs = [m for m in part.modules() if isinstance(m, nn.Conv1d | nn.ConvTranspose1d)]
            for m in convs:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
            if part is encoder:
                first, last = convs[0], convs[-1]
                win = float(first.window.square().mean()) if first.window is not None else 1.0
                first.weight.div_(cfg.input_rms * win ** 0.5)
                last.weight.mul_(0.5 ** 0.5)
            else:
                out = convs[-1]
                out.weight.normal_(0.0, cfg.output_gain * (2.0 / (cfg.channels * cfg.kernel))
                                   ** 0.5)


class Autoencoder(nn.Module):
    """Stage 1 of the schedule: ``decoder(encoder(wav))``, ``[B, 64000] -> [B, 64000]``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.encoder, self.decoder = ConvEncoder(cfg), ConvDecoder(cfg)
        if cfg.init == "scaled":
            scaled_init(self.encoder, self.decoder, cfg)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(wav))


class SequenceGenerator(nn.Module):
    """LSTM over time steps; the input at step t is the concatenation of the instrument (16),
    pitch (8), velocity (2) embeddings and a learned embedding of t (4); a linear layer maps each
    hidden state to a D-dim decoder input (paper section 3.1)."""

    def __init__(self, cfg: ModelConfig, n_instruments: int, n_velocities: int,
                 steps: int | None = None):
        super().__init__()
        self.steps = steps or num_steps(cfg)
        self.instrument = nn.Embedding(n_instruments, cfg.instrument_dim)
        self.pitch = nn.Embedding(128, cfg.pitch_dim)
        self.velocity = nn.Embedding(n_velocities, cfg.velocity_dim)
        self.time = nn.Embedding(self.steps, cfg.time_dim)
        width = cfg.instrument_dim + cfg.pitch_dim + cfg.velocity_dim + cfg.time_dim
        self.lstm = nn.LSTM(width, cfg.hidden, cfg.layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden, cfg.dimension)

    def forward(self, instrument: torch.Tensor, pitch: torch.Tensor, velocity: torch.Tensor,
                start: int = 0, length: int | None = None,
                hidden: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``instrument, pitch, velocity: [B]`` (indices) -> (embeddings ``[B, D, length]`` of
        steps ``start..start+length``, LSTM state to continue from)."""
        length = self.steps - start if length is None else length
        b = instrument.shape[0]
        fixed = torch.cat([self.instrument(instrument), self.pitch(pitch),
                           self.velocity(velocity)], dim=-1)
        t = self.time(torch.arange(start, start + length, device=instrument.device))
        x = torch.cat([fixed[:, None].expand(-1, length, -1), t[None].expand(b, -1, -1)], -1)
        h, hidden = self.lstm(x, hidden)
        return self.out(h).transpose(1, 2), hidden


class SING(nn.Module):
    """The whole generator: (instrument, pitch, velocity) ``[B]`` -> waveform ``[B, 64000]``."""

    def __init__(self, cfg: ModelConfig, n_instruments: int, n_velocities: int):
        super().__init__()
        self.generator = SequenceGenerator(cfg, n_instruments, n_velocities)
        self.decoder = ConvDecoder(cfg)

    def forward(self, instrument: torch.Tensor, pitch: torch.Tensor,
                velocity: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.generator(instrument, pitch, velocity)[0])
