"""dldiy-sing: "SING: Symbol-to-Instrument Neural Generator" (Défossez, Zeghidour, Usunier,
Bottou, Bach; NeurIPS 2018).

SING generates a whole 4-second note (64000 samples at 16 kHz) in one pass from its instrument,
pitch and velocity: an LSTM turns the three embeddings plus a time embedding into 265 steps of
128-d codes, and a convolutional decoder upsamples them to the waveform. It is trained with a
spectral loss (L1 between log power spectrograms) in three stages: an autoencoder pretrains the
decoder, the LSTM learns to produce the encoder's codes, then both are fine-tuned end to end.
Here it is trained on an NSynth-like corpus rendered from the Debian General MIDI soundfonts.
"""

from .config import PRESETS, SingConfig
from .models import SING, Autoencoder, ConvDecoder, ConvEncoder, SequenceGenerator, num_steps
from .nsynth import NSynth, write_nsynth
from .render import build_corpus
from .spectral import log_power, spectral_loss

__all__ = ["PRESETS", "SING", "Autoencoder", "ConvDecoder", "ConvEncoder", "NSynth",
           "SequenceGenerator", "SingConfig", "build_corpus", "log_power", "num_steps",
           "spectral_loss", "write_nsynth"]
