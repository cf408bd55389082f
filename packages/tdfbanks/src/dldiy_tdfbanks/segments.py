"""Phone segments from a synthesizer -> TIMIT sample intervals: contiguity checks, merged
pauses, edge silences (``h#``), and a check that labelled silence is quiet."""

from __future__ import annotations

import math

import numpy as np

from .audio import SAMPLE_RATE
from .tts import BadItem, Segments


def tidy_segments(segs: Segments, duration: float) -> Segments:
    """Check contiguity, merge neighbouring pauses, end at ``duration``, edge pauses -> ``h#``.

    Raises :class:`BadItem` for a gap or overlap, or phones running past the audio."""
    if not segs:
        raise BadItem("empty_audio", "no phones")
    if segs[-1][1] > duration + 0.05:
        raise BadItem("segments_beyond_audio",
                      f"last phone ends at {segs[-1][1]:.3f} s, audio is {duration:.3f} s")
    out: Segments = []
    for s, e, p in segs:
        prev = out[-1][1] if out else 0.0
        if abs(s - prev) > 1e-6 or e <= s:
            raise BadItem("bad_alignment", f"phone {p!r} at {s:.4f}..{e:.4f} after {prev:.4f}")
        if out and p == "pau" == out[-1][2]:
            out[-1] = (out[-1][0], e, p)
        else:
            out.append((s, e, p))
    s, e, p = out[-1]
    if p == "pau" or e > duration:  # a small overrun (< 50 ms) is clipped
        if s >= duration:
            raise BadItem("segments_beyond_audio", f"phone {p!r} starts after the audio")
        out[-1] = (s, duration, p)
    elif e < duration:
        out.append((e, duration, "pau"))  # a tail with no phone (echo, trailing silence)
    if out[0][2] == "pau":
        out[0] = (*out[0][:2], "h#")
    if out[-1][2] == "pau":
        out[-1] = (*out[-1][:2], "h#")
    return out


def pad_edges(audio: np.ndarray, segs: Segments, lead: float, tail: float, rate: int,
              ) -> tuple[np.ndarray, Segments]:
    """Zeros so that the first and last ``h#`` last at least ``lead`` / ``tail`` seconds
    (espeak starts speaking at once; TIMIT has silence at both ends)."""
    first = segs[0][1] if segs[0][2] == "h#" else 0.0
    last = segs[-1][1] - segs[-1][0] if segs[-1][2] == "h#" else 0.0
    n_pre, n_post = round(max(0.0, lead - first) * rate), round(max(0.0, tail - last) * rate)
    pre = n_pre / rate
    out = [(s + pre if k else 0.0, e + pre, p) for k, (s, e, p) in enumerate(segs)]
    if n_pre and out[0][2] != "h#":
        out.insert(0, (0.0, pre, "h#"))
    end = (len(audio) + n_pre + n_post) / rate
    if out[-1][2] == "h#":
        out[-1] = (out[-1][0], end, "h#")
    elif n_post:
        out.append((out[-1][1], end, "h#"))
    padded = np.concatenate([np.zeros(n_pre, np.float32), audio, np.zeros(n_post, np.float32)])
    return padded, out


def to_samples(segs: Segments, n: int, rate: int = SAMPLE_RATE) -> list[tuple[int, int, str]]:
    """Seconds -> sample intervals covering ``[0, n)``; phones under half a sample vanish."""
    out: list[tuple[int, int, str]] = []
    for k, (_, e, p) in enumerate(segs):
        start = out[-1][1] if out else 0
        end = n if k == len(segs) - 1 else min(n, round(e * rate))
        if end > start:
            out.append((start, end, p))
    return out


def check_silence(audio: np.ndarray, phones: list[tuple[int, int, str]], margin_db: float = 20.0,
                  ) -> None:
    """The edge ``h#`` must be ``margin_db`` quieter than the speech between them, which catches
    a shifted or stretched alignment; raises :class:`BadItem` ``bad_alignment``."""
    edges = [audio[s:e] for s, e, p in (phones[0], phones[-1]) if p == "h#" and e - s >= 160]
    speech = audio[phones[0][1]:phones[-1][0]]
    if not edges or len(speech) == 0:
        return
    quiet = float(np.mean(np.concatenate(edges) ** 2)) + 1e-12
    loud = float(np.mean(speech**2)) + 1e-12
    if 10 * math.log10(loud / quiet) < margin_db:
        raise BadItem("bad_alignment", f"edge silence only {10 * math.log10(loud / quiet):.1f} "
                      f"dB below the speech")
