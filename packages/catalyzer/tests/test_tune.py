"""``tune``: lambda and (d_out, r2) on a validation split carved from the training set."""

import json

import numpy as np
import pytest

from dldiy_catalyzer.cli import main
from dldiy_catalyzer.tune import carve_validation, radii_within_budget
from dldiy_core.testing import assert_bad_input, run_cli


def test_validation_is_carved_from_the_training_set_only(splits):
    train, valid = carve_validation(splits, 40, 200)
    assert len(train.xt) == len(splits.xt) - 240
    assert np.array_equal(np.concatenate([train.xt, valid.xb, valid.xq]), splits.xt)
    assert train.xq is splits.xq and train.xb is splits.xb  # test queries and base untouched
    rows = {r.tobytes() for r in splits.xq}
    assert not any(r.tobytes() in rows for r in np.concatenate([valid.xb, valid.xq]))
    # the ground truth is the exact nearest validation database vector
    d2 = ((valid.xq[:, None] - valid.xb[None]) ** 2).sum(-1)
    assert np.array_equal(valid.gt, d2.argmin(1))


def test_radii_within_budget():
    assert radii_within_budget(24, 64)[0] == 79
    assert all(r < 79 for r in radii_within_budget(24, 64)[1:])
    assert radii_within_budget(24, 16) == [3, 2]  # 14 and 11 bits; r2=1 (6 bits) is too short


def test_tune_picks_by_validation_and_keeps_the_best_checkpoint(tmp_path, vectors_file):
    out = tmp_path / "tune"
    sets = ["--preset", "tiny", "--set", f"data.source={vectors_file}",
            "--set", "data.n_base=1500", "--set", "data.n_train=1200", "--set", "data.n_query=100",
            "--set", "train.epochs=2", "--set", "loss.rank_negative=20"]
    result = run_cli(main, ["tune", "--out", str(out), "--d-outs", "24,32", "--lambdas",
                            "0,0.05", "--valid-queries", "50", "--valid-base", "300",
                            "--json", str(tmp_path / "t.json"), *sets])
    assert result.code == 0, result.err
    assert "chosen: d_out=" in result.out
    summary = json.loads((out / "tune.json").read_text())["figures"]
    assert json.loads((tmp_path / "t.json").read_text())["figures"] == summary
    rows = summary["candidates"]
    assert {(r["d_out"], r["lambda"]) for r in rows} == {(24, 0), (24, 0.05), (32, 0),
                                                        (32, 0.05)}
    assert all(len(r["valid_curve"]) >= 2 for r in rows)  # each epoch and the end
    best = max(rows, key=lambda r: r["valid_recall10"])
    chosen = summary["chosen"]
    assert (chosen["d_out"], chosen["lambda"]) == (best["d_out"], best["lambda"])
    assert chosen["r2"] in radii_within_budget(chosen["d_out"], 64)
    assert chosen["valid_recall10"] == max(summary["radii_of_chosen"].values())
    assert summary["n_train_used"] == 1200 - 350
    assert 0 <= chosen["test_recall10"] <= 1
    run = chosen["run"]
    assert (tmp_path / "tune" / run.split("/")[-1] / "best.safetensors").is_file()
    result = run_cli(main, ["eval", "--run", run, "--best", "--json", str(tmp_path / "e.json")])
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "e.json").read_text())["lattice64"]["r2"] == (
        79 if chosen["d_out"] == 24 else 36)


@pytest.mark.parametrize("flags, name", [
    (["--d-outs", "8"], "--d-outs 8"), (["--d-outs", "x"], "--d-outs x"),
    (["--lambdas", "-1"], "--lambdas -1.0"), (["--lambdas", ","], "--lambdas"),
    (["--bits", "65"], "--bits 65"), (["--valid-queries", "5000"], "--valid-queries 5000")])
def test_tune_bad_input_is_one_line(tmp_path, vectors_file, flags, name):
    sets = ["--preset", "tiny", "--set", f"data.source={vectors_file}",
            "--set", "data.n_base=1500", "--set", "data.n_train=1200", "--set", "data.n_query=100"]
    assert_bad_input(main, ["tune", "--out", str(tmp_path / "t"), *flags, *sets], name,
                     inputs=[vectors_file], absent=[tmp_path / "t"])
