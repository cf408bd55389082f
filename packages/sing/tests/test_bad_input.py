"""Bad input: one clear line on stderr, exit code 2, and nothing written or replaced."""

import json

import pytest

from dldiy_core.testing import assert_user_error, list_files, run_cli
from dldiy_sing.cli import main


@pytest.fixture
def broken(tmp_path, nsynth_dir):
    """NSynth folders with a missing and a corrupt audio file, a non-soundfont, a note list."""
    import shutil

    missing = shutil.copytree(nsynth_dir, tmp_path / "missing")
    first = sorted((missing / "audio").iterdir())[0]
    first.unlink()
    corrupt = shutil.copytree(nsynth_dir, tmp_path / "corrupt")
    (sorted((corrupt / "audio").iterdir())[0]).write_bytes(b"RIFF....not a wave")
    badjson = tmp_path / "badjson"
    badjson.mkdir()
    (badjson / "examples.json").write_text("{not json")
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"hello, I am not a soundfont" * 10)
    return {"missing": (missing, first.stem), "corrupt": corrupt, "badjson": badjson,
            "fake": fake}


def test_training_data_errors(tmp_path, broken):
    before = list_files(tmp_path)
    out = ["--preset", "tiny", "--out", str(tmp_path / "r")]
    missing, name = broken["missing"]
    cases = [
        (["train", *out, "--set", f"data.path={missing}"], f"{name}.wav: audio file missing"),
        (["train", *out, "--set", f"data.path={broken['corrupt']}"], "not a readable WAV"),
        (["train", *out, "--set", f"data.path={broken['badjson']}"],
         "examples.json: not readable NSynth metadata"),
        (["train", *out, "--set", f"data.path={tmp_path / 'nowhere'}"], "no examples.json"),
        (["data", "--preset", "tiny", "--set", f"data.soundfonts={broken['fake']}"],
         "fake.sf2: not a soundfont"),
        (["data", "--preset", "tiny", "--set", "data.soundfonts=nosuchfont"],
         "nosuchfont: soundfont not found"),
        (["data", "--preset", "tiny", "--set", "data.velocities=[100,300]"],
         "MIDI velocities are 1..127"),
        (["data", "--preset", "tiny", "--set", "data.pitch_max=200"], "data.pitch_min/pitch_max"),
        (["train", *out, "--preset", "nope"], "unknown preset 'nope'"),
    ]
    for argv, message in cases:
        assert_user_error(run_cli(main, argv), message)
    new = list_files(tmp_path) - before
    assert not [f for f in new if not f.startswith("cache/")], new


def test_generate_errors(trained_run, tmp_path):
    run, _ = trained_run
    gen = ["generate", "--run", str(run), "-o", str(tmp_path / "n.wav")]
    listing = tmp_path / "bad.txt"
    listing.write_text("keyboard_test_000 60 100\nkeyboard_test_000 sixty 100\n")
    (tmp_path / "exists.wav").write_bytes(b"keep me")
    cases = [
        ([*gen, "--instrument", "tuba", "--pitch", "60", "--velocity", "100"],
         "unknown instrument 'tuba' (this model knows: brass_test_002, flute_test_001, "
         "keyboard_test_000)"),
        ([*gen, "--instrument", "flute_test_001", "--pitch", "90", "--velocity", "100"],
         "pitch 90 out of range"),
        ([*gen, "--instrument", "flute_test_001", "--pitch", "60", "--velocity", "64"],
         "velocity 64 not among the trained velocities [50, 100]"),
        (["generate", "--run", str(run), "--list", str(listing), "-o", str(tmp_path / "many")],
         "bad.txt:2: expected 'instrument pitch velocity'"),
        (["generate", "--run", str(run), "--instrument", "flute_test_001", "--pitch", "60",
          "--velocity", "100", "-o", str(tmp_path / "exists.wav")], "already exists"),
        (["generate", "--run", str(run), "--instrument", "flute_test_001", "--pitch", "60",
          "--velocity", "100", "-o", str(run / "x.wav")], "inside the run folder"),
        (["generate", "--run", str(tmp_path / "norun"), "--instrument", "a", "--pitch", "1",
          "--velocity", "1", "-o", str(tmp_path / "n.wav")], "no trained SING model"),
    ]
    for argv, message in cases:
        assert_user_error(run_cli(main, argv), message)
    assert (tmp_path / "exists.wav").read_bytes() == b"keep me"
    assert not (tmp_path / "n.wav").exists() and not (tmp_path / "many").exists()


def test_runs_are_never_replaced_and_other_presets_refused(trained_run, tmp_path):
    run, data = trained_run
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*.safetensors")}
    d = ["--set", f"data.path={data}"]
    # training into a folder that holds a run
    assert_user_error(run_cli(main, ["train", "--preset", "tiny", "--out", str(run), *d]),
                      "already holds a run")
    # resuming with another preset's settings
    assert_user_error(run_cli(main, ["train", "--preset", "tiny", "--out", str(run), *d,
                                     "--set", "model.channels=48", "--resume"]),
                      "written with a different config (model.channels: 32 -> 48)")
    # a later stage on the autoencoder of another preset
    import shutil

    other = tmp_path / "other"
    shutil.copytree(run / "ae", other / "ae")
    assert_user_error(run_cli(main, ["train", "--preset", "tiny", "--out", str(other), *d,
                                     "--set", "model.channels=48", "--stage", "seq"]),
                      "does not fit the model")
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*.safetensors")}
    assert before == after
    cfg = json.loads((run / "ae" / "config.json").read_text())
    assert cfg["model"]["channels"] == 32
