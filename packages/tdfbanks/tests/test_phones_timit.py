import numpy as np
import pytest
import soundfile as sf

from dldiy_core import UserError
from dldiy_tdfbanks.audio import load_audio, write_sphere
from dldiy_tdfbanks.data import PHONE_ID, load_split
from dldiy_tdfbanks.phones import TIMIT39, TIMIT61, edit_distance, fold, phone_error_rate
from dldiy_tdfbanks.timit import (
    CORE_TEST_SPEAKERS,
    DEV_SPEAKERS,
    read_phn,
    scan,
    write_utterance,
)


def test_phone_sets_and_folding():
    assert len(TIMIT61) == 61 and len(TIMIT39) == 39
    # each phone mapped, q deleted, nothing merged (Lee & Hon, standard scoring)
    assert fold(["h#", "ao", "pcl", "p", "q", "ix", "zh", "bcl", "pau", "h#"]) == [
        "sil", "aa", "sil", "p", "ih", "sh", "sil", "sil", "sil"]
    assert fold(["en", "nx", "n", "eng", "axr", "ax-h", "ux", "el", "em", "hv"]) == [
        "n", "n", "n", "ng", "er", "ah", "uw", "l", "m", "hh"]


def test_edit_distance_and_per_on_known_cases():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a"]) == 1 and edit_distance(["a"], []) == 1
    assert edit_distance(list("abc"), list("abc")) == 0
    # one substitution (iy->ih folds to a real error), ao->aa is no error after folding
    assert phone_error_rate([["h#", "ao", "iy", "s"]], [["h#", "aa", "ih", "s"]]) == 1 / 4


def test_timit_layout_round_trip_and_real_timit_splits(tmp_path):
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    segs = [(0, 1000, "h#"), (1000, 5000, "aa"), (5000, 8000, "h#")]
    wav = write_utterance(tmp_path / "c", "train", "dr1", "fxyz0", "sx1", wave, segs, "a text")
    assert wav == tmp_path / "c/TRAIN/DR1/FXYZ0/SX1.WAV"
    assert read_phn(wav.with_suffix(".PHN"), len(wave)) == segs
    np.testing.assert_allclose(load_audio(wav), wave, atol=1 / 32768)
    # LDC TIMIT: NIST SPHERE, lowercase names, no DEV folder, SA sentences left out; dev = the
    # 50 standard dev speakers, test = the 24 core test speakers, other TEST speakers unused
    root = tmp_path / "timit"
    for spk, name in [("MDAB0", "si1"), ("FAKS0", "sx2"), ("FAKS0", "sa1"), ("MABC0", "sx3")]:
        folder = root / "test/dr1" / spk.lower()
        folder.mkdir(parents=True, exist_ok=True)
        write_sphere(folder / f"{name}.wav", wave, 16_000)
        (folder / f"{name}.phn").write_text("0 8000 h#\n")
    found = scan(root)
    assert [u.id for u in found["test"]] == ["MDAB0/si1"]  # core test speaker
    assert [u.id for u in found["dev"]] == ["FAKS0/sx2"]  # a standard dev speaker
    np.testing.assert_allclose(found["test"][0].audio(), wave, atol=1 / 32768)


def test_standard_timit_speaker_sets():
    assert len(CORE_TEST_SPEAKERS) == 24 and len(DEV_SPEAKERS) == 50
    assert not CORE_TEST_SPEAKERS & DEV_SPEAKERS
    # 2 men and 1 woman per dialect region in the core test set: 16 men, 8 women
    assert sum(s.startswith("F") for s in CORE_TEST_SPEAKERS) == 8
    assert sum(s.startswith("F") for s in DEV_SPEAKERS) == 18


def test_bad_audio_and_labels_name_the_file_and_line(tmp_path):
    stereo, rate8k, short, empty, corrupt = (tmp_path / f"{n}.wav" for n in
                                             ("stereo", "rate8k", "short", "empty", "corrupt"))
    sf.write(stereo, np.zeros((16000, 2)), 16000)
    sf.write(rate8k, np.zeros(16000), 8000)
    sf.write(short, np.zeros(300), 16000)
    sf.write(empty, np.zeros(0), 16000)
    corrupt.write_bytes(b"RIFF\x00\x00garbage")
    for path, words in [(stereo, "2 channels"), (rate8k, "8000 Hz"), (short, "shorter"),
                        (empty, "empty"), (corrupt, "corrupt")]:
        with pytest.raises(UserError, match=words) as e:
            load_audio(path)
        assert str(path) in str(e.value)
    assert len(load_audio(rate8k, resample=True)) == 32000
    phn = tmp_path / "x.phn"
    phn.write_text("0 100 h#\n100 200 xx\n")
    with pytest.raises(UserError, match=r"x.phn:2: unknown phone 'xx'"):
        read_phn(phn)
    phn.write_text("0 100 h#\n100 20000 aa\n")
    with pytest.raises(UserError, match=r"x.phn:2: phone ends at sample 20000, beyond"):
        read_phn(phn, 16000)


def test_load_split_labels_and_length_limit(tone_corpus):
    train = load_split(tone_corpus, "train")
    assert len(train) == 12 and 8 < train.seconds() < 40
    waves, lengths, targets, target_lengths = train.get_batch([0, 3])
    assert waves.shape == (2, int(lengths.max())) and target_lengths.sum() == len(targets)
    assert targets.min() >= 1 and targets.max() <= len(TIMIT61)
    assert PHONE_ID["h#"] in train.labels[0]
    with pytest.raises(UserError, match="at most 0.1 s"):
        load_split(tone_corpus, "train", max_seconds=0.1)
    # an hours limit takes utterances round robin over speakers, not the first speaker's
    few = load_split(tone_corpus, "train", max_hours=6 / 3600)
    assert len({i.split("/")[0] for i in few.ids}) == 3 and len(few) < len(train)
