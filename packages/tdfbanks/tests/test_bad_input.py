"""Bad input, as a careful user would try it: every case is one line naming the file or setting,
exit 2, no traceback, inputs unchanged and nothing written (issue 12's cases for tdfbanks)."""

import errno
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import make_tone_corpus, tone_utterance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dldiy_core import UserError
from dldiy_core.testing import (
    assert_bad_input,
    assert_config_bounds,
    bad_outputs,
    corrupted_bytes,
    failing_writes,
    reads_or_refuses,
    run_cli,
)
from dldiy_tdfbanks.audio import load_audio, write_sphere
from dldiy_tdfbanks.cli import main
from dldiy_tdfbanks.config import PRESETS, Config
from dldiy_tdfbanks.corpus import CorpusConfig
from dldiy_tdfbanks.timit import read_phn

FAST = ["--preset", "tiny", "--set", "model.frontend=mfsc", "--set", "model.channels=8",
        "--set", "train.epochs=1"]
BENCH = ["--batch", "1", "--seconds", "0.05", "--repeats", "1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tone corpus, a finished run on it and a few audio files, shared by the module (the
    inputs every case checks are unchanged afterwards)."""
    root = tmp_path_factory.mktemp("bad")
    corpus = make_tone_corpus(root / "tones", per_speaker=2)
    run = root / "run"
    result = run_cli(main, ["train", "--out", run, "--set", f"data.corpus={corpus}", *FAST])
    assert result.code == 0, result.err
    wave, _ = tone_utterance(np.random.default_rng(0))
    audio, other = root / "audio", root / "other"
    audio.mkdir()
    other.mkdir()
    sf.write(audio / "x.wav", wave, 16000)
    sf.write(other / "x.flac", wave, 16000)
    return {"root": root, "corpus": corpus, "run": run, "wav": audio / "x.wav",
            "flac": other / "x.flac", "audio": audio, "other": other, "wave": wave}


def train_args(corpus, out, *extra):
    return ["train", "--out", out, "--set", f"data.corpus={corpus}", *FAST, *extra]


# ---------------------------------------------------------------------------- settings


def test_config_bounds():
    assert assert_config_bounds(Config, PRESETS) > 30
    assert assert_config_bounds(CorpusConfig) > 20


@pytest.mark.parametrize("setting", [
    "lr=-1", "data.train_hours=-1", "model.channels=-1", "model.kernel=0",
    "model.first_stride=0", "model.dropout=1.5", "frontend_lr=nan", "weight_decay=-1",
    "model.layers=0", "data.max_seconds=0", "model.input_gain=inf", "train.batch_size=0"])
def test_out_of_range_setting_is_refused_before_work(world, tmp_path, setting):
    out = tmp_path / "run"
    assert_bad_input(main, train_args(world["corpus"], out, "--set", setting),
                     f"'{setting.split('=')[0]}'", inputs=[world["corpus"]], absent=[out])


@pytest.mark.parametrize("setting,names", [
    ("model.kernel=4", ["model.kernel=4", "odd"]),
    ("experiment=mfsc,nope", ["nope"]),
    ("experiment=mfsc,mfsc", ["twice"]),
    ("model.impl=band --set model.frontend=tdfb-learn-all", ["model.impl=band", "fixed"]),
    ("min_words=9 max_words=3", ["min_words=9", "max_words=3"]),
])
def test_settings_that_do_not_fit_together(world, tmp_path, setting, names):
    if setting.startswith("min_words"):
        from dldiy_core import check_config

        with pytest.raises(UserError, match="above max_words"):
            check_config(CorpusConfig(min_words=9, max_words=3))
        return
    out = tmp_path / "run"
    sets = [x for s in setting.split(" --set ") for x in ("--set", s)]
    assert_bad_input(main, train_args(world["corpus"], out, *sets), *names,
                     inputs=[world["corpus"]], absent=[out])


def test_a_length_limit_that_leaves_no_utterance_names_the_setting(world, tmp_path):
    out = tmp_path / "run"
    assert_bad_input(main, train_args(world["corpus"], out, "--set", "data.max_seconds=0.01"),
                     "data.max_seconds", inputs=[world["corpus"]], absent=[out])


def test_a_stride_that_leaves_ctc_too_few_frames_is_refused(world, tmp_path):
    out = tmp_path / "run"
    assert_bad_input(main, train_args(world["corpus"], out, "--set", "model.first_stride=40"),
                     "model.first_stride", "fewer output frames", inputs=[world["corpus"]],
                     absent=[out])


@pytest.mark.parametrize("argv,name", [
    (["bench", "--batch", "0"], "--batch"), (["bench", "--seconds", "0"], "--seconds"),
    (["bench", "--seconds", "nan"], "--seconds"), (["bench", "--repeats", "0"], "--repeats"),
    (["data", "build", "--seed", "-1"], "--seed"), (["data", "build", "--hours", "nan"],
                                                    "--hours"),
    (["data", "build", "--hours", "-1"], "--hours")])
def test_out_of_range_flags(tmp_path, argv, name):
    assert_bad_input(main, [*argv, *(["--out", tmp_path / "c"] if argv[0] == "data" else [])],
                     name, absent=[tmp_path / "c"])


# ---------------------------------------------------------------------------- outputs


def test_features_never_replace_an_input_or_a_run(world, tmp_path):
    wav, flac, run = world["wav"], world["flac"], world["run"]
    for src in (wav, flac):
        for out, name in bad_outputs(tmp_path, [src], runs=[run]):
            assert_bad_input(main, ["features", src, "--out", out], name,
                             inputs=[world["audio"], world["other"], run])
    assert_bad_input(main, ["features", wav, "--run", run, "--out",
                            run / "checkpoint.safetensors", "--force"], "checkpoint.safetensors",
                     inputs=[run, wav])


def test_features_of_a_folder_never_replace_an_input_or_a_run(world, tmp_path):
    audio, run = world["audio"], world["run"]
    for out, name in bad_outputs(tmp_path, [audio], runs=[run], folder=True):
        assert_bad_input(main, ["features", audio, "--out", out], name, inputs=[audio, run])


def test_train_never_replaces_an_input_or_a_run(world, tmp_path):
    corpus, run = world["corpus"], world["run"]
    for out, name in bad_outputs(tmp_path, [corpus], runs=[run], folder=True):
        assert_bad_input(main, train_args(corpus, out), name, inputs=[corpus, run])
    assert_bad_input(main, train_args(corpus, tmp_path / "none", "--resume"), "none",
                     "no run to resume", inputs=[corpus], absent=[tmp_path / "none"])
    assert_bad_input(main, [*train_args(corpus, run), "--resume", "--force"], "--force",
                     inputs=[run])


def test_eval_and_bench_json_never_replace_an_input_or_a_run(world, tmp_path):
    corpus, run = world["corpus"], world["run"]
    phn = sorted(corpus.rglob("TEST/*/*/*.PHN"))[0]  # read by eval, so a hard link is seen
    cases = [*bad_outputs(tmp_path, [phn], runs=[run]), (run / "metrics.jsonl", "metrics")]
    for out, name in cases:
        assert_bad_input(main, ["eval", "--run", run, "--split", "test", "--json", out], name,
                         inputs=[corpus, run])
    for out, name in bad_outputs(tmp_path, [], runs=[run]):
        assert_bad_input(main, ["bench", *BENCH, "--json", out], name, inputs=[run])


def test_experiment_and_demo_never_replace_an_input_or_a_run(world, tmp_path):
    corpus, run = world["corpus"], world["run"]
    for cmd in ("experiment", "demo"):
        for out, name in bad_outputs(tmp_path, [corpus], runs=[run], folder=True):
            assert_bad_input(main, [cmd, "--out", out, "--set", f"data.corpus={corpus}", *FAST],
                             name, inputs=[corpus, run])
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "experiment-config.json").write_text("{}\n")
    assert_bad_input(main, ["demo", "--out", exp, "--set", f"data.corpus={corpus}", *FAST],
                     "exp", "already holds a run", inputs=[corpus, exp])
    assert_bad_input(main, ["experiment", "--out", tmp_path / "new", "--resume", "--set",
                            f"data.corpus={corpus}", *FAST], "new", "no experiment to resume",
                     inputs=[corpus])


def test_experiment_damaged_files_are_one_line(world, tmp_path):
    corpus = world["corpus"]
    args = ["experiment", "--out", tmp_path / "exp", "--set", f"data.corpus={corpus}", *FAST,
            "--set", "experiment=mfsc"]
    assert run_cli(main, args).code == 0
    result = tmp_path / "exp" / "mfsc" / "seed0" / "result.json"
    result.write_text("{not json")
    assert_bad_input(main, [*args, "--resume"], "result.json", "corrupt",
                     inputs=[corpus, tmp_path / "exp"])
    marker = tmp_path / "exp" / "experiment-config.json"
    marker.write_text("[1, 2]")
    assert_bad_input(main, [*args, "--resume"], "experiment-config.json", "corrupt",
                     inputs=[corpus, tmp_path / "exp"])


def test_data_build_refuses_other_folders_before_synthesis(world, tmp_path):
    run = world["run"]
    for out, name in bad_outputs(tmp_path, [], runs=[run], folder=True):
        assert_bad_input(main, ["data", "build", "--hours", "0.01", "--out", out], name,
                         inputs=[run])
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("my notes\n")
    assert_bad_input(main, ["data", "build", "--hours", "0.01", "--out", other], "mine",
                     "not empty", inputs=[other])
    build = tmp_path / "build"
    build.mkdir()
    (build / "build-config.json").write_text("{oops")
    assert_bad_input(main, ["data", "build", "--hours", "0.01", "--out", build], "build",
                     "already holds a run", inputs=[build])
    assert_bad_input(main, ["data", "build", "--hours", "0.01", "--out", build, "--resume"],
                     "build-config.json", "corrupt", inputs=[build])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_failing_writes_leave_nothing(world, tmp_path, code):
    why = "no space left" if code == errno.ENOSPC else "read-only"
    wav, run, corpus = world["wav"], world["run"], world["corpus"]
    with failing_writes(code):
        out = tmp_path / "f.npy"
        assert_bad_input(main, ["features", wav, "--out", out], "f.npy", why,
                         inputs=[world["audio"]], absent=[out])
        out = tmp_path / "feats"
        assert_bad_input(main, ["features", world["audio"], "--out", out], "feats", why,
                         inputs=[world["audio"]], absent=[out / "x.npy"])
        out = tmp_path / "per.json"
        assert_bad_input(main, ["eval", "--run", run, "--split", "test", "--json", out],
                         "per.json", why, inputs=[run, corpus], absent=[out])
        out = tmp_path / "bench.json"
        assert_bad_input(main, ["bench", *BENCH, "--json", out], "bench.json", why,
                         absent=[out])
        out = tmp_path / "t"
        assert_bad_input(main, train_args(corpus, out), "t", why, inputs=[corpus],
                         absent=[out / "checkpoint.safetensors"])
        out = tmp_path / "e"
        assert_bad_input(main, ["experiment", "--out", out, "--set", f"data.corpus={corpus}",
                                *FAST], "experiment-config.json", why, inputs=[corpus],
                         absent=[out / "experiment-config.json"])
    # the old file survives a failed replacement
    out = tmp_path / "keep.npy"
    assert run_cli(main, ["features", wav, "--out", out]).code == 0
    before = out.read_bytes()
    with failing_writes(code):
        assert_bad_input(main, ["features", wav, "--out", out, "--frontend", "mfsc"],
                         "keep.npy", why, inputs=[world["audio"]])
    assert out.read_bytes() == before


# ---------------------------------------------------------------------------- audio files


def _audio_cases(root: Path, wave: np.ndarray) -> list[tuple[Path, str]]:
    cases = []
    huge = root / "huge.wav"
    sf.write(huge, np.full(16000, 1e30, np.float32), 16000, subtype="FLOAT")
    cases.append((huge, "full scale"))
    nan = root / "nan.wav"
    sf.write(nan, np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    cases.append((nan, "NaN"))
    for name, fmt in [("cut.wav", "WAV"), ("cut.flac", "FLAC")]:
        full = root / f"full-{name}"
        sf.write(full, np.tile(wave, 3), 16000, format=fmt)
        raw = full.read_bytes()
        (root / name).write_bytes(raw[: len(raw) // 2])
        cases.append((root / name, "truncated" if fmt == "WAV" else "corrupt"))
    sph = root / "full.sph"
    write_sphere(sph, wave, 16000)
    raw = sph.read_bytes()
    (root / "cut.sph").write_bytes(raw[: 1024 + (len(raw) - 1024) // 2])
    cases.append((root / "cut.sph", "truncated"))
    stereo = root / "stereo.wav"
    sf.write(stereo, np.stack([wave, wave], 1), 16000)
    cases.append((stereo, "channels"))
    rate = root / "rate.wav"
    sf.write(rate, wave, 22050)
    cases.append((rate, "--resample"))
    short = root / "short.wav"
    sf.write(short, wave[:100], 16000)
    cases.append((short, "shorter than one filter"))
    (root / "empty.wav").write_bytes(b"")
    cases.append((root / "empty.wav", "corrupt"))
    (root / "junk.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    cases.append((root / "junk.wav", "corrupt"))
    (root / "folder.wav").mkdir()
    cases.append((root / "folder.wav", "no audio files"))
    cases.append((root / "missing.wav", "not found"))
    return cases


def test_bad_audio_files_are_one_line(world, tmp_path):
    for path, why in _audio_cases(tmp_path, world["wave"]):
        out = tmp_path / "out" / f"{path.name}.npy"
        assert_bad_input(main, ["features", path, "--out", out], path.name, why,
                         inputs=[path] if path.exists() else [], absent=[out])


def test_one_bad_file_in_a_folder_writes_nothing(world, tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(folder / "a.wav", world["wave"], 16000)
    raw = (folder / "a.wav").read_bytes()
    (folder / "b.wav").write_bytes(raw[:-100])
    out = tmp_path / "feats"
    assert_bad_input(main, ["features", folder, "--out", out], "b.wav", "truncated",
                     inputs=[folder], absent=[out])


_WAVE = tone_utterance(np.random.default_rng(1))[0]


def _encoded(fmt: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"x.{fmt}"
        if fmt == "sph":
            write_sphere(path, _WAVE, 16000)
        else:
            sf.write(path, _WAVE, 16000, format=fmt.upper())
        return path.read_bytes()


@pytest.mark.parametrize("fmt", ["wav", "flac", "sph"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_audio_reads_or_is_refused_never_crashes(fmt, data):
    """Any damage: read, or one line naming the file; never a traceback, never NaN."""
    blob = data.draw(corrupted_bytes(_encoded(fmt)))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"damaged.{fmt}"
        path.write_bytes(blob)
        x = reads_or_refuses(load_audio, path)
        if x is not None:
            assert np.isfinite(x).all() and x.ndim == 1


@pytest.mark.parametrize("fmt", ["wav", "flac", "sph"])
@settings(max_examples=25, deadline=None)
@given(frac=st.floats(0.0, 0.999))
def test_truncated_audio_is_refused_not_shortened(fmt, frac):
    """A file cut anywhere gives an error, never fewer samples without a word."""
    raw = _encoded(fmt)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"cut.{fmt}"
        path.write_bytes(raw[: int(len(raw) * frac)])
        assert reads_or_refuses(load_audio, path) is None


# ---------------------------------------------------------------------------- phone files


def _edit_phn(corpus: Path, root: Path, edit) -> tuple[Path, Path]:
    copy = root / "corpus"
    shutil.copytree(corpus, copy)
    phn = sorted(copy.rglob("TRAIN/*/*/*.PHN"))[0]
    lines = [line.split() for line in phn.read_text().splitlines()]
    edit(phn, lines)
    return copy, phn


def _write(phn, lines):
    phn.write_text("".join(" ".join(map(str, x)) + "\n" for x in lines))


def _overlap(phn, lines):
    lines[2][0] = int(lines[2][0]) - 100
    _write(phn, lines)


def _backwards(phn, lines):
    lines[1], lines[2] = lines[2], lines[1]
    _write(phn, lines)


def _past_end(phn, lines):
    lines[-1][1] = int(lines[-1][1]) + 500
    _write(phn, lines)


def _resampled_past_end(phn, lines):
    wav = phn.with_suffix(".WAV")
    x, _ = sf.read(wav)
    sf.write(wav, x[::2], 8000, subtype="PCM_16", format="WAV")  # .PHN still counts 16 kHz


@pytest.mark.parametrize("edit,why,extra", [
    (_overlap, "overlaps", []), (_backwards, "goes back in time", []),
    (_past_end, "beyond the audio", []),
    (_resampled_past_end, "beyond the audio", ["--set", "data.resample=true"])])
def test_bad_phone_intervals_are_refused(world, tmp_path, edit, why, extra):
    corpus, phn = _edit_phn(world["corpus"], tmp_path, edit)
    out = tmp_path / "run"
    assert_bad_input(main, [*train_args(corpus, out), *extra], phn.name, why, inputs=[corpus],
                     absent=[out / "checkpoint.safetensors"])


def test_truncated_corpus_audio_is_named_not_blamed_on_the_phones(world, tmp_path):
    def cut(phn, lines):
        wav = phn.with_suffix(".WAV")
        wav.write_bytes(wav.read_bytes()[:-2000])
    corpus, phn = _edit_phn(world["corpus"], tmp_path, cut)
    assert_bad_input(main, train_args(corpus, tmp_path / "run"), phn.with_suffix(".WAV").name,
                     "truncated", inputs=[corpus])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_damaged_phone_files_read_or_are_refused(data):
    valid = b"0 1200 h#\n1200 2400 aa\n2400 3000 s\n3000 4000 h#\n"
    blob = data.draw(corrupted_bytes(valid))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "X.PHN"
        path.write_bytes(blob)
        phones = reads_or_refuses(read_phn, path, 4000)
        if phones is not None:
            assert all(0 <= s < e <= 4000 for s, e, _ in phones)
            assert all(a[1] <= b[0] for a, b in zip(phones, phones[1:], strict=False))


# ---------------------------------------------------------------------------- runs


def test_damaged_or_missing_runs_are_one_line(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    ckpt = run / "checkpoint.safetensors"
    raw = bytearray(ckpt.read_bytes())
    raw[-20] ^= 0x10
    ckpt.write_bytes(bytes(raw))
    assert_bad_input(main, ["eval", "--run", run], "checkpoint.safetensors", inputs=[run])
    assert_bad_input(main, ["features", world["wav"], "--run", run, "--out", tmp_path / "f.npy"],
                     "checkpoint.safetensors", inputs=[run], absent=[tmp_path / "f.npy"])
    # features reads the checkpoint eval scores: the best on dev, when the run kept one
    best_run = tmp_path / "best_run"
    shutil.copytree(world["run"], best_run)
    (best_run / "best.safetensors").write_bytes(b"not a checkpoint")
    assert_bad_input(main, ["features", world["wav"], "--run", best_run, "--out",
                            tmp_path / "g.npy"], "best.safetensors", inputs=[best_run],
                     absent=[tmp_path / "g.npy"])
    assert_bad_input(main, ["eval", "--run", tmp_path / "nope"], "nope", "not found")
    assert_bad_input(main, ["eval", "--run", world["run"], "--corpus", tmp_path / "nocorpus"],
                     "nocorpus", "not found", inputs=[world["run"]])
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": {"dropout": 2}}))
    assert_bad_input(main, train_args(world["corpus"], tmp_path / "r", "--config", cfg),
                     "cfg.json", "model.dropout", inputs=[cfg, world["corpus"]])


def test_data_build_resume_and_force(tmp_path, monkeypatch):
    from dldiy_tdfbanks import corpus as corpus_mod

    checked = []
    monkeypatch.setattr(corpus_mod, "check_engines", lambda cfg: checked.append(cfg))
    cfg = CorpusConfig(train_hours=0.01)
    build = tmp_path / "build"
    (build / "TRAIN" / "DR1" / "FX0").mkdir(parents=True)
    (build / "TRAIN" / "DR1" / "FX0" / "SI1.WAV").write_bytes(b"x")
    for name in ("sentences.txt", "corpus.json", "notes.txt"):
        (build / name).write_text("x\n")
    corpus_mod._same_build(build, cfg)  # writes build-config.json: the marker
    corpus_mod.prepare_build(build, cfg, resume=True)  # same settings: continued, kept
    assert (build / "TRAIN" / "DR1" / "FX0" / "SI1.WAV").exists() and not checked
    with pytest.raises(UserError, match="built with another config"):
        corpus_mod.prepare_build(build, CorpusConfig(train_hours=0.02), resume=True)
    corpus_mod.prepare_build(build, cfg, force=True)  # the old build goes, other files stay
    assert checked and sorted(p.name for p in build.iterdir()) == ["notes.txt"]


def test_a_bad_corpus_leaves_no_experiment_or_demo_folder(world, tmp_path):
    corpus, phn = _edit_phn(world["corpus"], tmp_path, _overlap)
    for cmd in ("experiment", "demo"):
        out = tmp_path / cmd
        assert_bad_input(main, [cmd, "--out", out, "--set", f"data.corpus={corpus}", *FAST],
                         phn.name, "overlaps", inputs=[corpus], absent=[out])
