import numpy as np
import pytest
import torch

from dldiy_sing.nsynth import write_nsynth

SR = 16000
# one thread: on a shared, loaded machine two OpenMP threads wait on each other
torch.set_num_threads(1)


def tone(pitch: int, velocity: int, harmonics: list[float], seconds: float = 4.0) -> np.ndarray:
    """A decaying harmonic tone: a stand-in note with a pitch, a level and a timbre."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    x = sum(a * np.sin(2 * np.pi * f0 * (k + 1) * t) for k, a in enumerate(harmonics))
    env = np.minimum(t / 0.01, 1.0) * np.exp(-1.5 * t) * (t < 3.0) + \
        np.exp(-1.5 * 3.0) * np.exp(-8 * (t - 3.0)) * (t >= 3.0)
    return (0.3 * velocity / 127 * env * x / sum(harmonics)).astype(np.float32)


TIMBRES = {"keyboard_test_000": [1.0, 0.5, 0.25], "flute_test_001": [1.0, 0.1],
           "brass_test_002": [1.0, 0.8, 0.6, 0.4]}


def tiny_notes(pitches=range(58, 66), velocities=(50, 100)):
    notes, audio = [], []
    for i, (name, harm) in enumerate(TIMBRES.items()):
        for p in pitches:
            for v in velocities:
                notes.append({"instrument_str": name, "instrument": i, "pitch": p,
                              "velocity": v, "instrument_family_str": name.split("_")[0]})
                audio.append(tone(p, v, harm))
    return notes, audio


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    """Rendered corpora go to a per-test folder."""
    monkeypatch.setenv("DLDIY_DATA", str(tmp_path / "cache"))


@pytest.fixture
def nsynth_dir(tmp_path):
    """48 notes (3 instruments x 8 pitches x 2 velocities) in the NSynth layout."""
    return write_nsynth(tmp_path / "nsynth", *tiny_notes())


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A tiny run of all three stages on the tone set (shared by the tests that read a run)."""
    from dldiy_core.testing import run_cli
    from dldiy_sing.cli import main

    root = tmp_path_factory.mktemp("run")
    data = write_nsynth(root / "nsynth", *tiny_notes())
    out = root / "run"
    result = run_cli(main, ["train", "--preset", "tiny", "--out", str(out),
                            "--set", f"data.path={data}"])
    assert result.code == 0, result.err
    return out, data
