"""dldiy-tdfbanks: "Learning filterbanks from raw speech for phone recognition" (Zeghidour,
Usunier, Kokkinos, Schatz, Synnaeve, Dupoux; ICASSP 2018).

A time-domain filterbank layer (complex Gabor filters, squared modulus, squared-Hann lowpass,
log compression, per-utterance normalisation) starts as a mel filterbank and is trained with a
convolutional phone recognizer (CTC); the experiment compares it with MFSC, fixed, learn-all,
learn-filterbank and random-init front ends (and LEAF / SincNet) by phone error rate, on TIMIT
or on a phone-aligned multi-voice corpus synthesized here from Debian text.
"""

from .config import PRESETS, Config
from .filterbank import TDFilterbank
from .frontend import MFSC, Frontend
from .leaf import LEAF
from .models import Recognizer, make_frontend
from .phones import TIMIT39, TIMIT61, fold, phone_error_rate
from .sincnet import SincNet

__all__ = ["LEAF", "MFSC", "PRESETS", "TIMIT39", "TIMIT61", "Config", "Frontend", "Recognizer",
           "SincNet", "TDFilterbank", "fold", "make_frontend", "phone_error_rate"]
