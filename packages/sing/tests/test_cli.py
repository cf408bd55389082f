"""The command line on a tiny run of all three stages: eval, generate, demo, resume."""

import json

import numpy as np
import pytest
import soundfile

from dldiy_core import load_checkpoint
from dldiy_core.testing import assert_same_weights, run_cli
from dldiy_sing.cli import main


def test_eval_scores_every_split_and_the_baselines(trained_run, tmp_path):
    run, _ = trained_run
    result = run_cli(main, ["eval", "--run", str(run), "--json", str(tmp_path / "e.json")])
    assert result.code == 0, result.err
    scores = json.loads((tmp_path / "e.json").read_text())["figures"]
    for split in ("train", "valid", "test"):
        s = scores[split]
        assert s["notes"] > 0 and s["sing"] > 0 and s["autoencoder"] > 0
        assert s["nearest_neighbour_notes"] > 0 and s["nearest_neighbour"] >= 0
        assert s["silence_log_mse"] > 0 and 0 <= s["sing_peak_match"] <= 1
        assert s["nearest_neighbour_peak_match"] > 0.5  # pitch-shifted: the right partials
        assert s["target_pitch_match"] == 1.0 and s["nearest_neighbour_pitch_match"] > 0.5
        assert 0 <= s["sing_pitch_match"] <= 1
    metrics = [json.loads(line) for line in (run / "seq" / "metrics.jsonl").read_text()
               .splitlines()]
    assert any(m["kind"] == "valid" for m in metrics)


def test_generate_writes_16khz_wav(trained_run, tmp_path):
    run, _ = trained_run
    out = tmp_path / "note.wav"
    result = run_cli(main, ["generate", "--run", str(run), "--instrument", "flute_test_001",
                            "--pitch", "61", "--velocity", "100", "-o", str(out)])
    assert result.code == 0, result.err
    wav, sr = soundfile.read(out)
    assert sr == 16000 and wav.shape == (64000,) and np.isfinite(wav).all()
    info = soundfile.info(out)
    assert info.channels == 1 and info.subtype == "PCM_16"
    listing = tmp_path / "notes.txt"
    listing.write_text("# instrument pitch velocity\nkeyboard_test_000 60 50\n"
                       "brass_test_002 65 100\n")
    result = run_cli(main, ["generate", "--run", str(run), "--list", str(listing),
                            "-o", str(tmp_path / "many")])
    assert result.code == 0, result.err
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == [
        "brass_test_002-065-100.wav", "keyboard_test_000-060-050.wav"]


def test_stage_resume_is_exact(trained_run, tmp_path):
    """The LSTM stage stopped mid-sequence (step 5 of 9 chunks) and resumed, then stage 3:
    the same weights as the uninterrupted run, bit for bit."""
    run, data = trained_run
    out = tmp_path / "run"
    base = ["--preset", "tiny", "--out", str(out), "--set", f"data.path={data}"]
    for argv in (["--stage", "ae"], ["--stage", "seq", "--set", "train.max_steps=5"],
                 ["--stage", "seq", "--resume"], ["--stage", "sing"]):
        result = run_cli(main, ["train", *base, *argv])
        assert result.code == 0, result.err
    carry = load_checkpoint(out / "seq" / "checkpoint.safetensors")["stateful"]["carry"]
    assert carry["hidden"] is not None
    for stage in ("ae", "seq", "sing"):
        assert_same_weights(run / stage / "checkpoint.safetensors",
                            out / stage / "checkpoint.safetensors")
    # a finished stage extended by more epochs; other settings still may not change
    more = ["train", *base, "--stage", "sing", "--resume", "--set", "stages.sing_epochs=2"]
    result = run_cli(main, more)
    assert result.code == 0, result.err
    assert load_checkpoint(out / "sing" / "checkpoint.safetensors")["trainer"]["epoch"] == 2
    result = run_cli(main, [*more, "--set", "stages.lr=1e-3"])
    assert result.code == 2 and "stages.lr" in result.err


def test_demo_on_a_trained_run(trained_run, tmp_path):
    run, _ = trained_run
    result = run_cli(main, ["demo", "--run", str(run), "--out", str(tmp_path / "demo")])
    assert result.code == 0, result.err
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    kinds = {m["kind"] for m in summary["media"]}
    assert kinds == {"image", "audio"}
    assert {"loss_ae.png", "loss_seq.png", "loss_sing.png"} <= {m["path"] for m in
                                                                 summary["media"]}
    assert summary["headlines"]["test spectral loss, SING"] > 0


def test_export_then_generate_and_demo_from_the_model_file(trained_run, tmp_path):
    """An exported model file (float16 SING weights, config, curves) generates what the run
    generates, up to float16 rounding, and drives the demo."""
    run, _ = trained_run
    model = tmp_path / "sing.safetensors"
    assert run_cli(main, ["export", "--run", str(run), "-o", str(model)]).code == 0
    assert run_cli(main, ["export", "--run", str(run), "-o", str(model)]).code == 2  # no --force
    note = ["--instrument", "flute_test_001", "--pitch", "61", "--velocity", "100"]
    for src, name in ((run, "a.wav"), (model, "b.wav")):
        result = run_cli(main, ["generate", "--run", str(src), *note, "-o", str(tmp_path / name)])
        assert result.code == 0, result.err
    a, b = soundfile.read(tmp_path / "a.wav")[0], soundfile.read(tmp_path / "b.wav")[0]
    assert np.abs(a - b).max() <= 0.01 * max(np.abs(a).max(), 1e-3)
    result = run_cli(main, ["demo", "--run", str(model), "--out", str(tmp_path / "demo")])
    assert result.code == 0, result.err
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert "loss_ae.png" in {m["path"] for m in summary["media"]}
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    result = run_cli(main, ["generate", "--run", str(bad), *note, "-o", str(tmp_path / "c.wav")])
    assert result.code == 2 and "bad.safetensors" in result.err


@pytest.mark.integration
@pytest.mark.slow
def test_demo_with_the_packaged_model(tmp_path):
    """The default demo: the packaged small model on the rendered small corpus (needs
    libfluidsynth3 and fluid-soundfont-gm; renders 960 notes)."""
    result = run_cli(main, ["demo", "--out", str(tmp_path / "demo"), "--limit", "8"])
    assert result.code == 0, result.err
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["headlines"]["training notes"] == 765
    assert summary["headlines"]["test spectral loss, SING"] > 0
    assert {"loss_ae.png", "loss_seq.png", "loss_sing.png"} <= {m["path"] for m in
                                                                 summary["media"]}
