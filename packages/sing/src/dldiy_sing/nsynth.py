"""NSynth-layout datasets: ``examples.json`` (note name -> metadata) + ``audio/<note>.wav``.

Reads the real NSynth (Engel et al. 2017) and the rendered corpus alike. Notes are split by
(instrument, pitch) as in SING (section 4.1): all velocities of one pair go to the same split,
so valid/test hold pitch/instrument combinations never seen in training.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dldiy_core import TensorData, UserError

from .models import NOTE_SAMPLES

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000
REQUIRED = ("instrument_str", "pitch", "velocity")
PRELOAD_BYTES = 3 << 30


@dataclass
class Note:
    name: str
    instrument: int
    """Index into :attr:`NSynth.instruments`."""
    pitch: int
    velocity: int
    """Index into :attr:`NSynth.velocities`."""
    family: str


class NSynth:
    """The metadata of an NSynth folder; :meth:`audio` reads one note as ``[64000]`` float32.

    Attributes:
        instruments: instrument names (``instrument_str``), sorted; a note's ``instrument`` is an
            index into it.
        velocities: the MIDI velocities present, sorted.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        path = self.folder / "examples.json"
        try:
            meta = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{path}: not found (an NSynth folder holds examples.json and "
                            "audio/)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(f"{path}: not readable NSynth metadata ({e})") from None
        if not isinstance(meta, dict) or not meta:
            raise UserError(f"{path}: expected a non-empty object of notes")
        for name, m in meta.items():
            missing = [k for k in REQUIRED if not isinstance(m, dict) or k not in m]
            if missing:
                raise UserError(f"{path}: note '{name}' lacks {', '.join(missing)}")
            if not (isinstance(m["pitch"], int) and 0 <= m["pitch"] <= 127
                    and isinstance(m["velocity"], int) and 0 <= m["velocity"] <= 127):
                raise UserError(f"{path}: note '{name}' has pitch {m['pitch']!r} / velocity "
                                f"{m['velocity']!r} outside MIDI 0..127")
        self.instruments = sorted({m["instrument_str"] for m in meta.values()})
        self.velocities = sorted({m["velocity"] for m in meta.values()})
        inst = {n: i for i, n in enumerate(self.instruments)}
        vel = {v: i for i, v in enumerate(self.velocities)}
        self.notes = [Note(name, inst[m["instrument_str"]], m["pitch"], vel[m["velocity"]],
                           str(m.get("instrument_family_str", "")))
                      for name, m in sorted(meta.items())]

    def __len__(self) -> int:
        return len(self.notes)

    def audio(self, i: int) -> np.ndarray:
        """Note ``i`` as ``[64000]`` float32 in [-1, 1] (shorter files are zero padded)."""
        import soundfile

        path = self.folder / "audio" / f"{self.notes[i].name}.wav"
        if not path.is_file():
            raise UserError(f"{path}: audio file missing (listed in examples.json)")
        try:
            wav, sr = soundfile.read(path, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
            raise UserError(f"{path}: not a readable WAV ({' '.join(str(e).split())})"
                            ) from None
        if sr != SAMPLE_RATE:
            raise UserError(f"{path}: sample rate {sr} Hz, expected {SAMPLE_RATE}")
        if wav.shape[1] != 1:
            raise UserError(f"{path}: {wav.shape[1]} channels, expected mono")
        wav = wav[:NOTE_SAMPLES, 0]
        if not np.isfinite(wav).all():
            raise UserError(f"{path}: NaN or inf samples")
        return np.pad(wav, (0, NOTE_SAMPLES - len(wav)))

    def split(self, seed: int = 42, valid: float = 0.1, test: float = 0.1
              ) -> dict[str, np.ndarray]:
        """Indices of ``train``/``valid``/``test``: each (instrument, pitch) pair is drawn into
        one split with probabilities ``1 - valid - test``, ``valid``, ``test``."""
        pairs = sorted({(n.instrument, n.pitch) for n in self.notes})
        draw = np.random.default_rng(seed).random(len(pairs))
        where = {p: ("valid" if u < valid else "test" if u < valid + test else "train")
                 for p, u in zip(pairs, draw, strict=True)}
        out: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
        for i, n in enumerate(self.notes):
            out[where[(n.instrument, n.pitch)]].append(i)
        return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}

    def labels(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(instrument, pitch, velocity) index tensors ``[n]`` of notes ``index``."""
        rows = [(self.notes[i].instrument, self.notes[i].pitch, self.notes[i].velocity)
                for i in index]
        t = torch.tensor(rows, dtype=torch.long).reshape(-1, 3)
        return t[:, 0], t[:, 1], t[:, 2]


class LazyNotes(Dataset):
    """Notes read from disk on each access: ``(instrument, pitch, velocity, wav [64000])``."""

    def __init__(self, corpus: NSynth, index: np.ndarray):
        self.corpus, self.index = corpus, np.asarray(index)
        self.inst, self.pitch, self.vel = corpus.labels(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        return (self.inst[i], self.pitch[i], self.vel[i],
                torch.from_numpy(self.corpus.audio(int(self.index[i]))))


def notes_dataset(corpus: NSynth, index: np.ndarray, preload: bool | None = None) -> Dataset:
    """The notes ``index`` as a dataset of ``(instrument, pitch, velocity, wav)``; held in memory
    (one index op per batch) when they fit in 3 GiB, else read from disk per note."""
    if preload is None:
        preload = len(index) * NOTE_SAMPLES * 4 <= PRELOAD_BYTES
    if not preload:
        return LazyNotes(corpus, index)
    wav = torch.from_numpy(np.stack([corpus.audio(int(i)) for i in index])) if len(index) \
        else torch.zeros(0, NOTE_SAMPLES)
    return TensorData(*corpus.labels(index), wav)


def write_nsynth(folder: str | Path, notes: list[dict], audio: list[np.ndarray]) -> Path:
    """Write notes (dicts with at least instrument_str, pitch, velocity) and their ``[T]`` float
    audio in the NSynth layout; the note name is ``<instrument_str>-<pitch>-<velocity>``."""
    import soundfile

    folder = Path(folder)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    meta = {}
    for i, (m, wav) in enumerate(zip(notes, audio, strict=True)):
        name = f"{m['instrument_str']}-{m['pitch']:03d}-{m['velocity']:03d}"
        soundfile.write(folder / "audio" / f"{name}.wav", np.clip(wav, -1, 1), SAMPLE_RATE,
                        subtype="PCM_16")
        meta[name] = {"note": i, "note_str": name, "sample_rate": SAMPLE_RATE, **m}
    (folder / "examples.json").write_text(json.dumps(meta, indent=1))
    return folder
