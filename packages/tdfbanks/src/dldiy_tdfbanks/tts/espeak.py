"""espeak-ng (GPL-3.0-or-later, Debian's ``libespeak-ng``), in this process through ctypes, with
phoneme events; its Kirshenbaum phonemes mapped to TIMIT's 61 (r-colouring by accent). Loaded
only when the corpus builder asks for the ``espeak`` engine."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from pathlib import Path

import numpy as np

from dldiy_core import UserError

from .common import BadItem, Segments, Spoken

log = logging.getLogger(__name__)


RHOTIC_ACCENTS = frozenset({"en-us", "en-us-nyc"})
"""Accents whose r-coloured vowels (``A@`` in "harm") carry the r; others write it apart."""

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_DONT_EXIT = 0x0001, 0x8000
_CHARS_UTF8, _ENDPAUSE = 1, 0x1000
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_RATE, _PITCH, _RANGE = 1, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of speak_lib.h."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


def _load_espeak() -> ctypes.CDLL:
    names = [ctypes.util.find_library("espeak-ng"), "libespeak-ng.so.1", "libespeak-ng.so"]
    for name in filter(None, names):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise UserError("engine espeak: libespeak-ng not found (a Debian package, GPL-3.0): "
                    "apt-get install espeak-ng libespeak-ng1")


class Espeak:
    """libespeak-ng in this process (the library has global state: use :meth:`get`)."""

    _instance: Espeak | None = None

    @classmethod
    def get(cls) -> Espeak:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def __init__(self):
        lib = self.lib = _load_espeak()
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                          _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
        if self.rate <= 0:
            raise UserError("espeak_Initialize failed (is espeak-ng-data installed? "
                            "apt-get install espeak-ng)")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []
        self._callback = _CALLBACK(self._on_audio)  # kept alive: the library holds a pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._voice = ""

    def _on_audio(self, wav, n: int, events) -> int:
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self._events.append((e.audio_position, e.id.string.decode("utf-8", "replace")))
            i += 1
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        return 0

    def has_voice(self, name: str) -> bool:
        """Whether espeak knows the voice ``name`` (it is then the current voice)."""
        ok = self.lib.espeak_SetVoiceByName(name.encode()) == 0
        self._voice = name if ok else ""
        return ok

    def synth(self, text: str, voice: str, rate: int = 175, pitch: int = 50,
              pitch_range: int = 50) -> Spoken:
        """``voice`` like ``en-us+f3``; ``rate`` words/min; ``pitch``, ``pitch_range`` 0..100."""
        if voice != self._voice and not self.has_voice(voice):
            raise BadItem("tts_failed", f"espeak-ng has no voice {voice!r}")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0,
                                    _CHARS_UTF8 | _ENDPAUSE, None, None)
        if err != 0:
            raise BadItem("tts_failed", f"espeak_Synth returned {err}")
        audio = (np.concatenate(self._chunks).astype(np.float32) / 32768.0 if self._chunks
                 else np.zeros(0, np.float32))
        total = len(audio) / self.rate
        # a phoneme lasts until the next one starts; events carry milliseconds
        starts = [(ms / 1000.0, p) for ms, p in self._events]
        if starts and starts[0][0] > 0:
            starts.insert(0, (0.0, "_"))  # the first phoneme may start a few ms in
        segs: Segments = []
        for k, (t, p) in enumerate(starts):
            end = starts[k + 1][0] if k + 1 < len(starts) else total
            if end > t:
                segs.append((t, end, p))
        return Spoken(audio, self.rate, segs)


def require_espeak(accents: list[str]) -> Espeak:
    """The library, checked to know every accent; :class:`UserError` otherwise."""
    engine = Espeak.get()
    missing = [a for a in accents if not engine.has_voice(a)]
    if missing:
        raise UserError(f"espeak-ng has no voice(s) {missing}: apt-get install espeak-ng-data")
    return engine


_ESPEAK_BASE: dict[str, tuple[str, ...]] = {
    # stops and affricates (espeak times a stop from its closure: no separate bcl/dcl here)
    "p": ("p",), "b": ("b",), "t": ("t",), "d": ("d",), "k": ("k",), "g": ("g",),
    "t#": ("dx",), "d#": ("dx",), "*": ("dx",), "t2": ("t",), "t[": ("t",), "d[": ("d",),
    "?": ("q",), "tS": ("ch",), "dZ": ("jh",),
    # fricatives; Scottish "loch" x is written k, as TIMIT transcribers would
    "f": ("f",), "v": ("v",), "T": ("th",), "D": ("dh",), "s": ("s",), "z": ("z",),
    "S": ("sh",), "Z": ("zh",), "h": ("hh",), "x": ("k",), "C": ("hh",),
    # nasals, liquids, glides (w# is Scottish voiceless "wh")
    "m": ("m",), "n": ("n",), "N": ("ng",), "m-": ("em",), "n-": ("en",), "@L": ("el",),
    "l": ("l",), "l/": ("l",), "l-": ("el",), "r": ("r",), "r-": ("r",), "w": ("w",),
    "w#": ("w",), "j": ("y",),
    # vowels of the non-rhotic accents; the rhotic ones override below
    "a": ("ae",), "a#": ("ax",), "aa": ("aa",), "A:": ("aa",), "A@": ("aa",), "0": ("aa",),
    "0:": ("ao",), "O:": ("ao",), "O2": ("ao",), "O@": ("ao",), "o@": ("ao",), "E": ("eh",),
    "e": ("eh",), "e@": ("eh",), "I": ("ih",), "I2": ("ix",), "I#": ("ix",), "i": ("iy",),
    "i:": ("iy",), "i@": ("iy", "ax"), "i@3": ("ih", "ax"), "IR": ("er",), "VR": ("er",),
    "U": ("uh",), "u:": ("uw",), "U@": ("uh", "ax"), "V": ("ah",), "@": ("ax",),
    "@2": ("ax",), "@5": ("ax",), "@-": ("ax",), "3": ("ax",), "3:": ("er",),
    "aI": ("ay",), "aI2": ("ay",), "aI@": ("ay", "ax"), "aI3": ("ay", "ax"), "aU": ("aw",),
    "aU@": ("aw", "ax"), "eI": ("ey",), "OI": ("oy",), "oU": ("ow",), "@U": ("ow",),
    # pauses: edges become h# later, pauses inside pau
    "_": ("pau",), "_:": ("pau",), "_!": ("pau",), "_|": ("pau",),
}
_ESPEAK_RHOTIC = {
    "aa": ("ae",), "A@": ("aa", "r"), "O@": ("ao", "r"), "o@": ("ao", "r"), "e@": ("eh", "r"),
    "i@3": ("ih", "r"), "U@": ("uh", "r"), "3": ("axr",), "aI3": ("ay", "axr"),
    "aU@": ("aw", "axr"),
}
ESPEAK_TO_TIMIT: dict[str, dict[str, tuple[str, ...]]] = {
    "rhotic": {**_ESPEAK_BASE, **_ESPEAK_RHOTIC}, "non-rhotic": dict(_ESPEAK_BASE)}
"""espeak phoneme -> TIMIT phones; two phones share the span 60:40 (vowel, then r or schwa)."""
ESPEAK_MERGE = frozenset({";"})
"""Transition marks with a duration (a y-glide between vowels): added to the phone before."""
SPLIT_FIRST = 0.6


def espeak_to_timit(segs: Segments, accent: str) -> Segments:
    """espeak phonemes of ``accent`` -> TIMIT61 segments; unknown -> :class:`BadItem`."""
    table = ESPEAK_TO_TIMIT["rhotic" if accent in RHOTIC_ACCENTS else "non-rhotic"]
    out: Segments = []
    for s, e, p in segs:
        if p in ESPEAK_MERGE:
            if out:
                out[-1] = (out[-1][0], e, out[-1][2])
                continue
            p = "_"
        if p not in table:
            raise BadItem("unmapped_phone", f"espeak phoneme {p!r} ({accent})")
        labels = table[p]
        if labels == ("r",) and out and out[-1][2] in ("r", "axr", "er"):
            out[-1] = (out[-1][0], e, out[-1][2])  # a linking r after an r-coloured vowel
        elif len(labels) == 1:
            out.append((s, e, labels[0]))
        else:
            mid = s + SPLIT_FIRST * (e - s)
            out += [(s, mid, labels[0]), (mid, e, labels[1])]
    return out


def espeak_variants_missing(engine: Espeak, variants: list[str]) -> list[str]:
    """Variants with no file in espeak-ng-data (the library silently ignores unknown ones)."""
    path = ctypes.c_char_p()
    engine.lib.espeak_Info.restype = ctypes.c_char_p
    engine.lib.espeak_Info(ctypes.byref(path))
    folder = Path((path.value or b"").decode(), "voices", "!v")
    return [v for v in variants if not (folder / v).is_file()]
