"""TIMIT-layout corpora: ``<root>/<SPLIT>/<DR>/<SPEAKER>/<UTT>.{WAV,PHN,TXT}``.

Reads the LDC TIMIT distribution (NIST SPHERE .WAV, either case of names) and the corpus that
``data build`` writes in the same layout (RIFF .WAV, plus a DEV split). For real TIMIT, which
has no DEV folder, the usual recipe (as Kaldi's and the paper's): train = the 462 TRAIN speakers,
dev = the standard 50-speaker development set (:data:`DEV_SPEAKERS`, 400 utterances), test =
the 24-speaker core test set (:data:`CORE_TEST_SPEAKERS`, 192 utterances); the other 94 TEST
speakers are not used, and the SA sentences (read by every speaker) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dldiy_core import UserError, atomic_write_text, check_input, os_error, read_input

from .audio import SAMPLE_RATE, load_audio, read_audio, save_wav, to_mono_rate
from .phones import TIMIT61

CORE_TEST_SPEAKERS = frozenset([
    "MDAB0", "MWBT0", "FELC0", "MTAS1", "MWEW0", "FPAS0", "MJMP0", "MLNT0", "FPKT0", "MLLL0",
    "MTLS0", "FJLM0", "MBPM0", "MKLT0", "FNLP0", "MCMJ0", "MJDH0", "FMGD0", "MGRT0", "MNJM0",
    "FDHC0", "MJLN0", "MPAM0", "FMLD0"])

DEV_SPEAKERS = frozenset([
    "FAKS0", "FDAC1", "FJEM0", "MGWT0", "MJAR0", "MMDB1", "MMDM2", "MPDF0", "FCMH0", "FKMS0",
    "MBDG0", "MBWM0", "MCSH0", "FADG0", "FDMS0", "FEDW0", "MGJF0", "MGLB0", "MRTK0", "MTAA0",
    "MTDT0", "MTHC0", "MWJG0", "FNMR0", "FREW0", "FSEM0", "MBNS0", "MMJR0", "MDLS0", "MDLF0",
    "MDVC0", "MERS0", "FMAH0", "FDRW0", "MRCS0", "MRJM4", "FCAL1", "MMWH0", "FJSJ0", "MAJC0",
    "MJSW0", "MREB0", "FGJD0", "FJMG0", "MROA0", "MTEB0", "MJFC0", "MRJR0", "FMML0", "MRWS1",
])
"""The standard 50-speaker TIMIT development set (TEST speakers outside the core test set)."""

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Utterance:
    """One utterance: its .WAV path, speaker and split; labels are read on demand."""

    wav: Path
    speaker: str
    split: str

    @property
    def id(self) -> str:
        return f"{self.speaker}/{self.wav.stem}"

    def sibling(self, ext: str) -> Path:
        for name in (self.wav.stem + ext.upper(), self.wav.stem + ext.lower()):
            if (p := self.wav.with_name(name)).is_file():
                return p
        raise UserError(f"{self.wav}: no {ext.upper()} file beside it")

    def audio(self, resample: bool = False) -> np.ndarray:
        return load_audio(self.wav, resample=resample)

    def phones(self, n_samples: int | None = None) -> list[tuple[int, int, str]]:
        return read_phn(self.sibling(".phn"), n_samples)

    def read(self, resample: bool = False) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        """Audio ``[T]`` at 16 kHz and its phones, checked against the audio as recorded (the
        .PHN sample times count samples at the file's own rate, also when resampling)."""
        x, rate = read_audio(self.wav)
        phones = self.phones(len(x))
        return to_mono_rate(self.wav, x, rate, resample=resample), phones


def read_phn(path: Path, n_samples: int | None = None) -> list[tuple[int, int, str]]:
    """A .PHN file -> ``[(start_sample, end_sample, phone)]``, checked line by line: known
    phones, ``0 <= start < end``, in time order without overlap (gaps are allowed), and, given
    ``n_samples``, within the audio."""
    try:
        lines = read_input(path, "phone file").decode("ascii").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not an ASCII phone file (byte {e.start})") from None
    out: list[tuple[int, int, str]] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3:
            raise UserError(f"{path}:{i}: expected 'start end phone', got {line!r}")
        try:
            start, end = int(parts[0]), int(parts[1])
        except ValueError:
            raise UserError(f"{path}:{i}: sample times must be integers, got {line!r}") from None
        phone = parts[2].lower()
        if phone not in TIMIT61:
            raise UserError(f"{path}:{i}: unknown phone {parts[2]!r} (not a TIMIT phone)")
        if not 0 <= start < end:
            raise UserError(f"{path}:{i}: bad interval {start}..{end} (needs 0 <= start < end)")
        if out and start < out[-1][0]:
            raise UserError(f"{path}:{i}: phone {phone!r} at {start}..{end} goes back in time "
                            f"(the phone before starts at sample {out[-1][0]})")
        if out and start < out[-1][1]:
            raise UserError(f"{path}:{i}: phone {phone!r} at {start}..{end} overlaps the phone "
                            f"before (which ends at sample {out[-1][1]})")
        if n_samples is not None and end > n_samples:
            raise UserError(f"{path}:{i}: phone ends at sample {end}, beyond the audio "
                            f"({n_samples} samples)")
        out.append((start, end, phone))
    if not out:
        raise UserError(f"{path}: no phones")
    return out


def write_utterance(root: Path, split: str, dialect: str, speaker: str, name: str,
                    audio: np.ndarray, phones: list[tuple[int, int, str]], text: str,
                    rate: int = SAMPLE_RATE) -> Path:
    """Write ``.WAV`` (RIFF, 16-bit), ``.PHN`` and ``.TXT`` in TIMIT layout; .WAV last, so an
    utterance whose .WAV exists is complete. Returns the .WAV path."""
    folder = root / split.upper() / dialect.upper() / speaker.upper()
    stem = folder / name.upper()
    for s, e, p in phones:
        if p not in TIMIT61 or not 0 <= s < e <= len(audio):
            raise ValueError(f"{stem}: bad phone segment {(s, e, p)}")
    atomic_write_text(stem.with_suffix(".PHN"), "".join(f"{s} {e} {p}\n" for s, e, p in phones))
    atomic_write_text(stem.with_suffix(".TXT"), f"0 {len(audio)} {text}\n")
    save_wav(stem.with_suffix(".WAV"), audio, rate)
    return stem.with_suffix(".WAV")


def scan(root: str | Path) -> dict[str, list[Utterance]]:
    """All utterances of a TIMIT-layout corpus, by split (``train``, ``dev``, ``test``)."""
    root = check_input(root, "corpus", folder=True)
    found: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
    try:
        split_dirs = sorted(p for p in root.iterdir() if p.is_dir())
        wavs = {d: sorted(d.glob("*/*/*")) for d in split_dirs if d.name.lower() in SPLITS}
    except OSError as e:
        raise os_error(e, None, "read corpus") from None
    for split_dir, files in wavs.items():
        split = split_dir.name.lower()
        for wav in files:
            if wav.suffix.lower() != ".wav" or wav.name.startswith("."):
                continue
            speaker = wav.parent.name.upper()
            if wav.stem.upper().startswith("SA"):
                continue
            target: str | None = split
            if split == "test" and not (root / "DEV").is_dir() and not (root / "dev").is_dir():
                target = ("test" if speaker in CORE_TEST_SPEAKERS else
                          "dev" if speaker in DEV_SPEAKERS else None)  # None: not used
            if target is not None:
                found[target].append(Utterance(wav, speaker, target))
    if not any(found.values()):
        raise UserError(f"{root}: no TIMIT-layout utterances (<SPLIT>/<DR>/<SPEAKER>/<UTT>.WAV)")
    return found
