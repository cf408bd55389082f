"""festival (Debian; its voices' licences in the README): a subprocess synthesizes a batch of
sentences, ``utt.save.segs`` gives each phone's end time; its radio phone set is TIMIT's."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Hashable
from pathlib import Path
from typing import TypeVar

import numpy as np

from dldiy_core import UserError

from ..phones import TIMIT61
from .common import BadItem, Segments, Spoken

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


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
