from pathlib import Path

import numpy as np
import pytest

from dldiy_tdfbanks.timit import write_utterance

TONES = {"aa": 300.0, "iy": 700.0, "s": 2500.0, "m": 1200.0, "sh": 4000.0}
"""A test corpus where each phone is a tone: small enough for CTC to learn in seconds."""


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLDIY_DATA", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def own_inputs():
    """Inputs registered by library calls in a test (``scan``, ``read_phn``: outputs may not
    replace them) are forgotten when it ends, as a command's are when it ends (``run_main``),
    so that a later test may build into a corpus an earlier one read."""
    from dldiy_core import input_scope

    with input_scope():
        yield


def tone_utterance(rng: np.random.Generator, n_phones: int = 5, rate: int = 16_000):
    """A waveform and its .PHN segments: ``h#``, random tone phones, ``h#``."""
    names = list(TONES)
    segs, pieces, t = [], [], 0
    labels = ["h#"] + [names[i] for i in rng.integers(0, len(names), n_phones)] + ["h#"]
    for p in labels:
        n = int(rng.integers(1200, 2400))
        if p == "h#":
            x = 0.001 * rng.standard_normal(n)
        else:
            x = 0.3 * np.sin(2 * np.pi * TONES[p] * np.arange(n) / rate)
        pieces.append(x)
        segs.append((t, t + n, p))
        t += n
    return np.concatenate(pieces).astype(np.float32), segs


def make_tone_corpus(root: Path, per_speaker: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split, speakers in {"train": ["FTON0", "MTON1", "MTON2"], "dev": ["FTON3"],
                            "test": ["MTON4"]}.items():
        for spk in speakers:
            for u in range(per_speaker):
                wave, segs = tone_utterance(rng)
                write_utterance(root, split, "DR1", spk, f"SX{u}", wave, segs, "tone text")
    return root


@pytest.fixture
def tone_corpus(tmp_path) -> Path:
    return make_tone_corpus(tmp_path / "tones")
