"""The command line end to end on the tone corpus: train, resume, eval, features, experiment."""

import json
import shutil

import numpy as np
import pytest
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
    assert per["checkpoint"] == "checkpoint.safetensors"  # train keeps no best-on-dev weights
    # a run with best.safetensors (experiment runs: best dev PER) is scored with those: here
    # the weights of a one-step run, far worse than the trained last checkpoint
    early = tmp_path / "early"
    assert run_cli(main, [*train_args(tone_corpus, early, epochs=1), "--set",
                          "model.channels=64", "--set", "train.max_steps=1"]).code == 0
    shutil.copy(early / "checkpoint.safetensors", run / "best.safetensors")
    out = tmp_path / "per-best.json"
    assert run_cli(main, ["eval", "--run", str(run), "--json", str(out)]).code == 0
    best = json.loads(out.read_text())
    assert best["checkpoint"] == "best.safetensors"
    assert best["test"]["per"] > max(0.5, 2 * per["test"]["per"])  # one step: near chance


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
    from dldiy_core import input_scope
    from dldiy_tdfbanks.data import load_split
    from dldiy_tdfbanks.evaluate import evaluate
    from dldiy_tdfbanks.experiment import load_run

    out = tmp_path / "exp"
    args = ["experiment", "--preset", "tiny", "--out", str(out), "--set",
            f"data.corpus={tone_corpus}", "--set", "experiment=mfsc,tdfb-learn-all", "--set",
            "train.epochs=12", "--set", "model.channels=64", "--set", "seeds=2", "--set",
            "frontend_lr_grid=1e-2"]
    result = run_cli(main, args)
    assert result.code == 0, result.err
    figures = json.loads((out / "experiment.json").read_text())["figures"]
    rows, tuning = figures["rows"], figures["lr_tuning"]
    assert set(rows) == {"mfsc", "tdfb-learn-all"} and set(tuning) == {"tdfb-learn-all"}
    assert figures["complete"] and figures["runs_done"] == figures["runs_planned"] == 5
    # the learning rate of lowest first-seed dev PER is the row's, for both seeds
    lrs = tuning["tdfb-learn-all"]
    assert set(lrs) == {"0.003", "0.01"}
    assert rows["tdfb-learn-all"]["frontend_lr"] == float(min(lrs, key=lambda k: lrs[k]))
    test = load_split(tone_corpus, "test")
    for name, row in rows.items():
        assert row["n_seeds"] == 2 and row["seeds"] == [0, 1]
        # every run learned the tones (all blanks, an untrained model's output, is a PER of
        # 1); 12 tiny epochs on 12 utterances vary a lot from seed to seed, hence the margins
        assert max(row["test_per"] + row["dev_per"]) < 0.9, (name, row)
        assert row["test_per_mean"] == pytest.approx(np.mean(row["test_per"]))
        assert row["dev_per_std"] == pytest.approx(np.std(row["dev_per"], ddof=1))
        # the dev figure is the best epoch's, and test is scored with that checkpoint
        run = out / row["folder"]
        valid = [json.loads(x)["valid_per"] for x in (run / "metrics.jsonl").read_text()
                 .splitlines() if '"valid"' in x]
        assert len(valid) == 12 and row["dev_per"][0] == min(valid)
        with input_scope():  # the run read here is no input of the commands below
            assert evaluate(load_run(run, best=True)[1], test)["per"] == row["test_per"][0]
    assert np.mean([r["test_per_mean"] for r in rows.values()]) < 0.7, rows
    assert {"filter_responses.png", "centre_frequencies.png", "lowpass.png",
            "index.html"} <= list_files(out)
    assert "tdfb-learn-all" in (out / "report.md").read_text()
    # the folder holds an experiment: refused without --resume; --resume reuses the finished
    # runs; other settings are refused, not mixed in
    assert_user_error(run_cli(main, args), "exp", "already holds a run")
    before = (out / "experiment.json").read_text()
    assert run_cli(main, [*args, "--resume"]).code == 0
    again = json.loads((out / "experiment.json").read_text())["figures"]
    assert again["rows"] == json.loads(before)["figures"]["rows"]
    assert_user_error(run_cli(main, [*args, "--resume", "--set", "lr=0.1"]),
                      "experiment-config.json", "other settings", "lr")
    # --reuse with a third seed: seeds 0 and 1 (and the grid) read from the results file, only
    # seed 2 trained, seeds 0 and 1 as in the file
    first = tmp_path / "first.json"
    shutil.copy(out / "experiment.json", first)
    args2 = [*args[:4], str(tmp_path / "exp2"), *args[5:], "--set", "seeds=3", "--reuse",
             str(first)]
    result = run_cli(main, args2)
    assert result.code == 0, result.err
    reused = json.loads((tmp_path / "exp2" / "experiment.json").read_text())["figures"]
    assert sorted(p.name for p in (tmp_path / "exp2").glob("*/seed*")) == [
        "seed2", f"seed2-flr{rows['tdfb-learn-all']['frontend_lr']:g}"]
    assert reused["runs_done"] == reused["runs_planned"] == 7 and reused["complete"]
    assert reused["reused"]["file"] == str(first) and reused["reused"]["runs"] == 5
    for name, row in rows.items():
        assert reused["rows"][name]["seeds"] == [0, 1, 2]
        for key in ("dev_per", "test_per", "best_epoch"):
            assert reused["rows"][name][key][:2] == row[key], (name, key)
        assert reused["rows"][name]["frontend_lr"] == row["frontend_lr"]
    assert (tmp_path / "exp2" / "filter_responses.png").exists()
    assert_user_error(run_cli(main, [*args2[:-2], "--reuse", str(first), "--set", "lr=0.1",
                                     "--force"]), "first.json", "other settings", "lr")
    assert_user_error(run_cli(main, [*args, "--set", "experiment=mfsc,nope"]), "nope")
    assert_user_error(run_cli(main, [*args, "--set", "frontend_lr_grid=1e-3,-1"]),
                      "frontend_lr_grid")


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
