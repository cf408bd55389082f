"""Configs and presets.

``paper``: the paper's settings (section 3 and the released defaults: 4096 channels, LSTM 3 x 1024,
50 + 50 + 20 epochs, batch 64, Adam 3e-4, eq. 2 with eps = 1, PyTorch's default init) on the full
rendered grid (3 soundfonts x 128 programs).

``small``: a 256-channel decoder and a 3 x 256 LSTM on 6 instruments of one soundfont, about
25 minutes on one loaded core. What is chosen here, and why (short trials on the valid split):

- ``model.init = "scaled"``: at PyTorch's default init the biases drown these quiet notes (RMS
  0.05) within a few layers; the autoencoder's output then hardly depends on its input (the
  outputs of two notes differed by 2e-5, for an output RMS of 0.03) and its loss stayed at
  silence's for hundreds of steps, whatever the learning rate (3e-4, 1e-3, 3e-3).
- ``loss.distance = "mse"``: the released code's default training loss. With eq. 2's L1 and eps =
  1e-2, the 93 % of bins under e x eps dominate the gradient and push the output
  towards silence; the squared distance weighs the loud partials by their error. In 270-step
  trials the log-MSE fell by 37 % with it against 10 % with L1. Evaluation stays eq. 2.
- ``loss.epsilon = 1e-2``: with eps = 1 only 1.8 % of the bins of these notes exceed e x eps,
  and a 250-step trial (corpus twice as loud, scaled init) stayed at silence's loss.
- 12 autoencoder epochs (1152 steps of batch 8; it was still improving), 4 LSTM epochs (its
  valid loss is flat after the first two), 12 end-to-end epochs; Adam 3e-4 as in the paper.
  The LSTM stage alone leaves the embeddings' oscillating (phase) part unexplained: on training
  notes its squared error in the sustained part was close to the embeddings' variance, and
  decoded it scored as silence. The end-to-end stage, free of phase through the spectral loss,
  is where SING learns: its eq. 2 loss on the valid split was still falling at 12 epochs (the
  demo's stage curves), where 2 epochs had left it above silence's; lr 1e-3 was unstable.

``quick``: the model ``demo --train`` trains, a few minutes. ``tiny``: tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dldiy_core import ConfigError, TrainConfig

VELOCITIES = (25, 50, 75, 100, 127)


@dataclass
class DataConfig:
    path: str = ""
    """An NSynth-layout folder (examples.json + audio/) to train on; empty: render the corpus
    below (cached under the dldiy data cache)."""
    soundfonts: list[str] = field(default_factory=lambda: ["fluidr3", "musescore", "timgm6mb"])
    """Soundfonts by short name (fluidr3, musescore, timgm6mb) or path to an .sf2/.sf3 file."""
    programs: list[int] = field(default_factory=lambda: list(range(128)))
    """General MIDI programs rendered from each soundfont (an instrument = soundfont, program)."""
    pitch_min: int = 21
    pitch_max: int = 108
    velocities: list[int] = field(default_factory=lambda: list(VELOCITIES))
    hold_s: float = 3.0
    release_s: float = 1.0
    sample_rate: int = 16000
    gain: float = 1.0
    """fluidsynth master gain (the same for all notes, so velocity stays audible)."""
    min_peak: float = 2e-3
    """Notes whose peak amplitude stays below this are dropped (out-of-range keys are silent)."""
    split_seed: int = 42
    valid_ratio: float = 0.1
    test_ratio: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.pitch_min <= self.pitch_max <= 127:
            raise ConfigError(f"data.pitch_min/pitch_max={self.pitch_min}/{self.pitch_max}: "
                              "need 0 <= pitch_min <= pitch_max <= 127")
        bad = [p for p in self.programs if not 0 <= p <= 127]
        if bad or not self.programs:
            raise ConfigError(f"data.programs: General MIDI programs are 0..127 (got {bad or []})")
        badv = [v for v in self.velocities if not 1 <= v <= 127]
        if badv or not self.velocities:
            raise ConfigError(f"data.velocities: MIDI velocities are 1..127 (got {badv or []})")
        if self.sample_rate != 16000 or abs(self.hold_s + self.release_s - 4.0) > 1e-9:
            raise ConfigError("data.sample_rate/hold_s/release_s: SING generates 4 s at 16 kHz "
                              "(64000 samples); keep 16000 and hold_s + release_s = 4")
        if not (self.valid_ratio >= 0 and self.test_ratio >= 0
                and self.valid_ratio + self.test_ratio < 1):
            raise ConfigError("data.valid_ratio/test_ratio: need two ratios >= 0 summing below 1")


@dataclass
class ModelConfig:
    channels: int = 4096
    """Channels of every inner layer of the decoder (and encoder)."""
    dimension: int = 128
    """Embedding per step, between the LSTM (or encoder) and the decoder."""
    kernel: int = 1024
    stride: int = 256
    context: int = 9
    """Kernel of the decoder's first convolution."""
    rewrite: int = 2
    """1x1 convolutions with ReLU after the first one."""
    window: bool = True
    """Weights of the wave-facing (transposed) convolutions smoothed by a squared Hann window."""
    init: Literal["torch", "scaled"] = "torch"
    """Initial weights of the encoder and decoder. ``torch``: PyTorch's default, as the released
    code had. With it the biases outweigh the signal after a few layers (the notes' RMS is a few
    hundredths), so the autoencoder starts as a near-constant function of its input and learns
    for a long time before its output depends on the note. ``scaled``: He-normal weights and
    zero biases, the encoder's first layer scaled by ``1 / input_rms`` and the decoder's output
    layer by ``output_gain``, so that the embeddings have unit scale and the output depends on
    the input from the first step."""
    input_rms: float = 0.05
    """Typical RMS of a note (``scaled`` init only; the small corpus: 0.053)."""
    output_gain: float = 0.2
    """Scale of the decoder's output layer at ``scaled`` init (output RMS about 0.007)."""
    hidden: int = 1024
    layers: int = 3
    instrument_dim: int = 16
    pitch_dim: int = 8
    velocity_dim: int = 2
    time_dim: int = 4


@dataclass
class LossConfig:
    kind: Literal["spectral", "wav"] = "spectral"
    """spectral: a distance between log(eps + |STFT|^2) (paper eq. 2); wav: MSE on the
    waveform."""
    distance: Literal["l1", "mse"] = "l1"
    """Training distance between the log power spectrograms: ``l1`` is eq. 2 of the paper;
    ``mse`` is the released code's default training loss (its ``--l1`` flag switched to eq. 2).
    Evaluation and validation always report eq. 2 (L1)."""
    epsilon: float = 1.0
    """The paper's 1 suits NSynth's levels; with the rendered notes only 1.8 % of the bins exceed
    e x eps, so the small presets use 1e-2 (see the module docstring)."""
    n_fft: int = 1024
    hop: int = 256


@dataclass
class StagesConfig:
    ae_epochs: int = 50
    seq_epochs: int = 50
    sing_epochs: int = 20
    truncated: int = 32
    """Truncated backprop through time of the LSTM stage: steps per optimizer step."""
    lr: float = 3e-4
    eval_notes: int = 64
    """Validation notes scored at each epoch end (0: all of the valid split)."""


@dataclass
class SingConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    stages: StagesConfig = field(default_factory=StagesConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=64, seed=0, log_every=20, checkpoint_every=200))


# 6 instruments of different GM families, one soundfont: piano, organ, nylon guitar, violin,
# trumpet, flute; pitches of the two middle octaves and a fifth.
SMALL_DATA = {"soundfonts": ["fluidr3"], "programs": [0, 19, 24, 40, 56, 73],
              "pitch_min": 48, "pitch_max": 79}

PRESETS: dict[str, dict] = {
    "paper": {},
    "small": {"data": SMALL_DATA,
              "model": {"channels": 256, "hidden": 256, "init": "scaled"},
              "loss": {"epsilon": 1e-2, "distance": "mse"},
              "stages": {"ae_epochs": 12, "seq_epochs": 4, "sing_epochs": 12, "eval_notes": 48},
              "train": {"batch_size": 8, "log_every": 10, "checkpoint_every": 50}},
    "quick": {"data": {**SMALL_DATA, "programs": [0, 24, 40, 73], "pitch_min": 55,
                       "pitch_max": 72, "velocities": [50, 100]},
              "model": {"channels": 256, "hidden": 128, "layers": 2, "init": "scaled"},
              "loss": {"epsilon": 1e-2, "distance": "mse"},
              "stages": {"ae_epochs": 6, "seq_epochs": 5, "sing_epochs": 3, "eval_notes": 16},
              "train": {"batch_size": 16, "log_every": 5, "checkpoint_every": 25}},
    "tiny": {"data": {"soundfonts": ["timgm6mb"], "programs": [0, 40], "pitch_min": 60,
                      "pitch_max": 66, "velocities": [100]},
             "model": {"channels": 32, "dimension": 8, "hidden": 16, "layers": 1},
             "stages": {"ae_epochs": 1, "seq_epochs": 1, "sing_epochs": 1, "eval_notes": 4},
             "train": {"batch_size": 4, "log_every": 1, "checkpoint_every": 2,
                       "progress": False}},
}
