"""The command line end to end on the tone corpus: train, resume, eval, features, experiment."""

import json

import numpy as np
import soundfile as sf

from dldiy_core.testing import assert_same_weights, assert_user_error, list_files, run_cli
from dldiy_tdfbanks.cli import main


def train_args(corpus, out, frontend="tdfb-learn-all", epochs=2):
    return ["train", "--preset", "tiny", "--out", str(out), "--set", f"data.corpus={corpus}",
            "--set", f"model.frontend={frontend}", "--set", f"train.epochs={epochs}"]


def test_ctc_training_overfits_the_tone_corpus(tone_corpus, tmp_path):
    run = tmp_path / "run"
    args = train_args(tone_corpus, run, epochs=25)
    result = run_cli(main, [*args, "--set", "model.channels=64", "--set", "train.log_every=3"])
    assert result.code == 0, result.err
    losses = [json.loads(x)["loss"] for x in (run / "metrics.jsonl").read_text().splitlines()
              if '"train"' in x]
    assert losses[-1] < 0.3 * losses[0]
    out = tmp_path / "per.json"
    assert run_cli(main, ["eval", "--run", str(run), "--json", str(out)]).code == 0
    per = json.loads(out.read_text())
    assert per["test"]["per"] < 0.25 and per["dev"]["utterances"] == 4


def test_resume_equals_an_uninterrupted_run(tone_corpus, tmp_path):
    assert run_cli(main, train_args(tone_corpus, tmp_path / "a", epochs=2)).code == 0
    assert run_cli(main, train_args(tone_corpus, tmp_path / "b", epochs=1)).code == 0
    result = run_cli(main, [*train_args(tone_corpus, tmp_path / "b", epochs=2), "--resume"])
    assert result.code == 0, result.err
    assert_same_weights(tmp_path / "a/checkpoint.safetensors",
                        tmp_path / "b/checkpoint.safetensors")


def test_features_of_a_file_and_a_folder(tone_corpus, tmp_path):
    wav = next(tone_corpus.rglob("*.WAV"))
    result = run_cli(main, ["features", str(wav), "--out", str(tmp_path / "f.npy")])
    assert result.code == 0, result.err
    feats = np.load(tmp_path / "f.npy")
    assert feats.shape == (40, sf.info(wav).frames // 160 + 1)
    result = run_cli(main, ["features", str(tone_corpus / "TEST"), "--out", str(tmp_path / "ft"),
                            "--frontend", "mfsc"])
    assert result.code == 0, result.err
    assert len(list((tmp_path / "ft").rglob("*.npy"))) == 4


def test_bad_input_is_one_line_and_writes_nothing(tone_corpus, tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(folder / "a.wav", np.zeros(16000), 16000)
    sf.write(folder / "b.wav", np.zeros((16000, 2)), 16000)
    result = run_cli(main, ["features", str(folder), "--out", str(tmp_path / "feats")])
    assert_user_error(result, "b.wav", "channels")
    assert not list_files(tmp_path / "feats")
    sf.write(folder / "b.wav", np.zeros(16000), 22050)
    assert_user_error(run_cli(main, ["features", str(folder / "b.wav"), "--out",
                                     str(tmp_path / "x.npy")]), "b.wav", "--resample")
    assert run_cli(main, ["features", str(folder / "b.wav"), "--out", str(tmp_path / "x.npy"),
                          "--resample"]).code == 0
    phn = next(tone_corpus.rglob("TRAIN/*/*/*.PHN"))
    phn.write_text(phn.read_text() + "0 10 zz\n")
    result = run_cli(main, train_args(tone_corpus, tmp_path / "run"))
    assert_user_error(result, str(phn), "unknown phone 'zz'")
    assert_user_error(run_cli(main, ["eval", "--run", str(tmp_path)]), "checkpoint")
    assert_user_error(run_cli(main, [*train_args(tone_corpus, tmp_path / "run"), "--set",
                                     "model.input_gain=0"]), "input_gain")
    wav = next(tone_corpus.rglob("TEST/*/*/*.WAV"))
    assert_user_error(run_cli(main, ["features", str(wav), "--out", str(tmp_path)]),
                      "contains the input")


def test_experiment_writes_the_table_and_filter_plots(tone_corpus, tmp_path):
    out = tmp_path / "exp"
    args = ["experiment", "--preset", "tiny", "--out", str(out), "--set",
            f"data.corpus={tone_corpus}", "--set", "experiment=mfsc,tdfb-learn-all"]
    result = run_cli(main, args)
    assert result.code == 0, result.err
    table = json.loads((out / "experiment.json").read_text())["figures"]
    assert set(table) == {"mfsc", "tdfb-learn-all"}
    assert all(0 <= r["test_per"] <= 1.5 for r in table.values())
    assert {"filter_responses.png", "centre_frequencies.png", "lowpass.png",
            "index.html"} <= list_files(out)
    assert "tdfb-learn-all" in (out / "report.md").read_text()
    # the folder holds an experiment: refused without --resume; --resume reuses the finished
    # front ends; other settings are refused, not mixed in
    assert_user_error(run_cli(main, args), "exp", "already holds a run")
    assert run_cli(main, [*args, "--resume"]).code == 0
    assert_user_error(run_cli(main, [*args, "--resume", "--set", "lr=0.1"]),
                      "experiment-config.json", "other settings", "lr")
    assert_user_error(run_cli(main, [*args, "--set", "experiment=mfsc,nope"]), "nope")


def test_bucketed_batches_shard_the_single_process_batches(tone_corpus):
    from dldiy_tdfbanks.data import BucketBatches, load_split

    data = load_split(tone_corpus, "train")
    one = BucketBatches(data, 4, seed=3)._indices(1)
    two = [BucketBatches(data, 4, seed=3, rank=r, world=2)._indices(1) for r in (0, 1)]
    assert [sorted(b.tolist()) for b in one] == [
        sorted(a.tolist() + b.tolist()) for a, b in zip(*two, strict=True)]
    assert sorted(i for b in one for i in b.tolist()) == list(range(len(data)))
    again = BucketBatches(data, 4, seed=3)._indices(2)  # reshuffled every epoch
    assert [b.tolist() for b in one] != [b.tolist() for b in again]


def test_two_process_torchrun_training(tone_corpus, tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "dldiy_tdfbanks",
                          *train_args(tone_corpus, tmp_path / "ddp")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = run_cli(main, ["eval", "--run", str(tmp_path / "ddp"), "--split", "test"])
    assert result.code == 0, result.err


def test_demo_on_a_given_corpus(tone_corpus, tmp_path):
    result = run_cli(main, ["demo", "--preset", "tiny", "--out", str(tmp_path / "demo"),
                            "--set", f"data.corpus={tone_corpus}"])
    assert result.code == 0, result.err
    files = list_files(tmp_path / "demo")
    assert {"index.html", "summary.json", "mfsc_correlation_synthesized.png"} <= files
    assert len([f for f in files if f.endswith(".wav")]) == 3
