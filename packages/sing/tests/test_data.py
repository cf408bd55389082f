"""NSynth layout round trip, the (instrument, pitch) split, and the soundfont renderer."""

import json

import numpy as np
import pytest
from conftest import tiny_notes

from dldiy_sing.config import DataConfig
from dldiy_sing.nsynth import NSynth, notes_dataset, write_nsynth


def test_nsynth_round_trip(tmp_path):
    notes, audio = tiny_notes(pitches=[60, 62], velocities=[100])
    folder = write_nsynth(tmp_path / "ns", notes, audio)
    corpus = NSynth(folder)
    assert len(corpus) == len(notes)
    assert corpus.instruments == sorted({n["instrument_str"] for n in notes})
    assert corpus.velocities == [100]
    for i, note in enumerate(corpus.notes):
        k = next(j for j, n in enumerate(notes)
                 if f"{n['instrument_str']}-{n['pitch']:03d}-{n['velocity']:03d}" == note.name)
        assert corpus.instruments[note.instrument] == notes[k]["instrument_str"]
        assert note.pitch == notes[k]["pitch"]
        # 16-bit PCM: within one quantization step
        np.testing.assert_allclose(corpus.audio(i), audio[k], atol=1.0 / 32767)
    inst, pitch, vel, wav = notes_dataset(corpus, np.arange(len(corpus)))[:]
    assert wav.shape == (len(corpus), 64000) and pitch.tolist() == [n.pitch for n in corpus.notes]


def test_real_nsynth_metadata_is_read(tmp_path):
    """An examples.json with the real NSynth fields (and a 4 s, 16 kHz file) loads."""
    import soundfile

    name = "bass_synthetic_033-022-050"
    meta = {name: {"note": 201034, "sample_rate": 16000, "pitch": 22, "instrument_source": 2,
                   "instrument_family_str": "bass", "instrument_str": "bass_synthetic_033",
                   "note_str": name, "qualities_str": ["dark"], "instrument_source_str":
                   "synthetic", "velocity": 50, "instrument_family": 0, "instrument": 417,
                   "qualities": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]}}
    (tmp_path / "audio").mkdir()
    (tmp_path / "examples.json").write_text(json.dumps(meta))
    soundfile.write(tmp_path / "audio" / f"{name}.wav", np.zeros(64000, np.int16), 16000)
    corpus = NSynth(tmp_path)
    assert corpus.notes[0].family == "bass" and corpus.audio(0).shape == (64000,)


def test_split_leaks_no_instrument_pitch_pair(tmp_path):
    notes, audio = tiny_notes(pitches=range(48, 72), velocities=(25, 100))
    corpus = NSynth(write_nsynth(tmp_path / "ns", notes, [a[:100] for a in audio]))
    split = corpus.split(seed=42)
    pairs = {k: {(corpus.notes[i].instrument, corpus.notes[i].pitch) for i in v}
             for k, v in split.items()}
    assert not pairs["train"] & pairs["valid"] and not pairs["train"] & pairs["test"]
    assert not pairs["valid"] & pairs["test"]
    assert sum(len(v) for v in split.values()) == len(corpus)
    assert len(pairs["valid"]) > 0 and len(pairs["test"]) > 0
    # every velocity of a pair stays together, and the split is a function of the seed
    assert all(len(v) % 2 == 0 for v in split.values())
    again = corpus.split(seed=42)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    assert not np.array_equal(split["test"], corpus.split(seed=7)["test"])


@pytest.mark.integration
def test_render_corpus_from_a_debian_soundfont(tmp_path):
    """Real FluidSynth rendering (needs libfluidsynth3 and timgm6mb-soundfont)."""
    from dldiy_sing.render import build_corpus

    cfg = DataConfig(soundfonts=["timgm6mb"], programs=[0, 73], pitch_min=60, pitch_max=62,
                     velocities=[50, 127])
    folder = build_corpus(cfg)
    corpus = NSynth(folder)
    assert len(corpus) == 12
    assert corpus.instruments == ["piano_timgm6mb_000", "pipe_timgm6mb_073"]
    meta = json.loads((folder / "examples.json").read_text())
    first = meta[corpus.notes[0].name]
    assert first["instrument_family_str"] == "piano" and first["sample_rate"] == 16000
    loud, soft = (corpus.audio(corpus.notes.index(n)) for n in corpus.notes
                  if n.name.startswith("piano") and n.pitch == 60)
    assert np.abs(loud).max() > 0.01 and np.abs(soft).max() != np.abs(loud).max()
    assert (folder / "meta.json").is_file() and build_corpus(cfg) == folder  # cached
    # a key outside every sample of a program is dropped, not kept as silence
    high = DataConfig(soundfonts=["timgm6mb"], programs=[0], pitch_min=127, pitch_max=127,
                      velocities=[100], min_peak=0.99)
    from dldiy_core import UserError
    with pytest.raises(UserError, match="silent"):
        build_corpus(high)
