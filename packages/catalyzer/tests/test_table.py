"""``table``: the paper's rows over seeds, settings chosen on validation, resumable."""

import json

import numpy as np
import pytest

from dldiy_catalyzer.cli import main
from dldiy_catalyzer.table import summarize
from dldiy_catalyzer.tune import radii_within_budget
from dldiy_core.testing import assert_bad_input, run_cli


def sets(vectors_file, epochs=1):
    return ["--preset", "tiny", "--set", f"data.source={vectors_file}",
            "--set", "data.n_base=1500", "--set", "data.n_train=1200",
            "--set", "data.n_query=100", "--set", f"train.epochs={epochs}",
            "--set", "loss.rank_negative=20"]


def test_summary_is_mean_and_sample_std_over_the_seeds_done():
    runs = {"a": {"1": {"recall1": 0.1, "recall10": 0.5, "recall100": 0.9},
                  "2": {"recall1": 0.3, "recall10": 0.7, "recall100": 1.0}},
            "b": {"2": {"recall1": 0.2, "recall10": 0.4, "recall100": 0.8}}}
    rows = summarize(runs, [1, 2, 3])
    assert rows["a"]["n_seeds"] == 2 and not rows["a"]["complete"]
    assert rows["a"]["recall10_mean"] == pytest.approx(0.6)
    assert rows["a"]["recall10_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert rows["a"]["recall10_text"] == "0.600 ± 0.141"
    assert rows["b"]["recall10_text"] == "0.400 (1 seed)"
    assert summarize(runs, [1, 2])["a"]["complete"]


def test_table_rows_choice_on_validation_and_resume(tmp_path, vectors_file):
    out, js = tmp_path / "table", tmp_path / "t.json"
    args = ["table", "--out", str(out), "--json", str(js), "--seeds", "1", "--d-outs", "24,32",
            "--lambdas", "0.05", "--valid-queries", "50", "--valid-base", "300",
            *sets(vectors_file)]
    result = run_cli(main, args)
    assert result.code == 0, result.err
    fig = json.loads(js.read_text())["figures"]
    expected = {f"{k}{b}" for b in (16, 32, 64)
                for k in ("lattice", "catalyzer-opq", "pq", "opq", "rr-pq")}
    expected |= {f"{k}{b}" for b in (16, 32, 64, 128) for k in ("binary", "lsh")}
    assert set(fig["rows"]) == expected and set(fig["complete_rows"]) == expected
    for row in fig["runs"].values():
        assert set(row) == {"1"}
        r = row["1"]
        assert 0 <= r["recall1"] <= r["recall10"] <= r["recall100"] <= 1
    # each budget's choice is the best validation figure among the candidates and radii
    cands = fig["tuning"]["candidates"]
    for bits, c in fig["tuning"]["chosen"].items():
        assert c["r2"] in radii_within_budget(c["d_out"], int(bits))
        assert c["bits"] <= int(bits)
        tried = [v for cand in cands for k, v in cand["valid_recall10"].items()
                 if k.startswith(f"{bits}:")]
        assert c["valid_recall10"] == max(tried)
    # a resumed table that is complete trains nothing again
    before = js.read_text()
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.safetensors")}
    result = run_cli(main, ["table", *args[1:], "--resume"])
    assert result.code == 0, result.err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.safetensors")} == stamps
    assert json.loads(js.read_text())["figures"]["runs"] == json.loads(before)["figures"]["runs"]
    # an interrupted table: a row missing from the file is computed again (its network
    # resumed from the run folder), the rest kept
    rec = json.loads(before)
    del rec["figures"]["runs"]["binary128"]
    js.write_text(json.dumps(rec))
    result = run_cli(main, ["table", *args[1:], "--resume"])
    assert result.code == 0, result.err
    again = json.loads(js.read_text())["figures"]
    assert again["runs"]["binary128"] == json.loads(before)["figures"]["runs"]["binary128"]
    assert again["runs"]["lattice64"] == json.loads(before)["figures"]["runs"]["lattice64"]


def test_table_refuses_to_replace_or_mix(tmp_path, vectors_file):
    out, js = tmp_path / "table", tmp_path / "t.json"
    base = ["table", "--out", str(out), "--json", str(js), "--seeds", "1", "--d-outs", "24",
            "--lambdas", "0.05", "--valid-queries", "50", "--valid-base", "300", "--no-binary"]
    assert run_cli(main, [*base, *sets(vectors_file)]).code == 0
    kept = js.read_text()
    assert_bad_input(main, [*base, *sets(vectors_file)], str(js), inputs=[vectors_file])
    assert_bad_input(main, [*base, "--resume", *sets(vectors_file, epochs=2)], "other settings",
                     inputs=[vectors_file])
    assert js.read_text() == kept


@pytest.mark.parametrize("flags, name", [
    (["--seeds", "1,1"], "--seeds 1,1"), (["--seeds", "x"], "--seeds x"),
    (["--d-outs", "8"], "--d-outs 8"), (["--lambdas", "-1"], "--lambdas -1.0"),
    (["--valid-queries", "5000"], "--valid-queries 5000")])
def test_table_bad_input_is_one_line(tmp_path, vectors_file, flags, name):
    out = tmp_path / "t"
    assert_bad_input(main, ["table", "--out", str(out), "--json", str(tmp_path / "t.json"),
                            *flags, *sets(vectors_file)], name, inputs=[vectors_file],
                     absent=[out, tmp_path / "t.json"])


def test_the_tuning_seed_reuses_the_tuning_network(tmp_path, vectors_file):
    out, js = tmp_path / "table", tmp_path / "t.json"
    result = run_cli(main, ["table", "--out", str(out), "--json", str(js), "--seeds", "1234",
                            "--d-outs", "24", "--lambdas", "0.05", "--valid-queries", "50",
                            "--valid-base", "300", "--no-binary", "--no-baselines",
                            *sets(vectors_file)])
    assert result.code == 0, result.err
    assert (out / "tune" / "d24-lambda0.05" / "best.safetensors").is_file()
    assert not (out / "seed1234").exists()  # trained once, for tuning
    rows = json.loads(js.read_text())["figures"]["rows"]
    assert set(rows) == {f"{k}{b}" for k in ("lattice", "catalyzer-opq") for b in (16, 32, 64)}
    assert rows["lattice64"]["n_seeds"] == 1
