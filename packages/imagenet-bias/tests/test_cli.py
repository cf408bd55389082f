"""Every command end to end on a small bring-your-own model and generated images."""

import json

import pytest
from conftest import tiny_args

from dldiy_core.testing import run_cli
from dldiy_imagenet_bias.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLDIY_DATA", str(tmp_path / "cache"))


def test_eval_and_mistakes(tiny_setup, tmp_path):
    r = run_cli(main, ["eval", *tiny_args(tiny_setup), "--json", str(tmp_path / "e.json")])
    assert r.code == 0, r.err
    rec = json.loads((tmp_path / "e.json").read_text())
    assert rec["figures"]["n_images"] == 15 and "commit" in rec and "machine" in rec
    r = run_cli(main, ["mistakes", *tiny_args(tiny_setup), "--json", str(tmp_path / "m.json")])
    assert r.code == 0, r.err
    m = json.loads((tmp_path / "m.json").read_text())
    assert len(m["records"]) == 15 and m["n_mistakes"] == sum(
        not x["top1_ok"] for x in m["records"])


def test_predict_lists_every_image(tiny_setup):
    r = run_cli(main, ["predict", *tiny_args(tiny_setup)])
    assert r.code == 0, r.err
    assert len([line for line in r.out.splitlines() if line.strip()]) == 15


def test_study_attack_explain_criticize_report(tiny_setup, tmp_path):
    r = run_cli(main, ["study", *tiny_args(tiny_setup), "--out", str(tmp_path / "study")])
    assert r.code == 0, r.err
    assert (tmp_path / "study" / "index.html").exists()
    r = run_cli(main, ["attack", *tiny_args(tiny_setup)])
    assert r.code == 0, r.err
    a = json.loads(r.out)
    assert [p["eps"] for p in a["pgd"]] == [0.0, 0.01]
    r = run_cli(main, ["explain", *tiny_args(tiny_setup), "--out", str(tmp_path / "ex")])
    assert r.code == 0, r.err
    assert (tmp_path / "ex" / "explanations.png").exists()
    r = run_cli(main, ["criticize", *tiny_args(tiny_setup), "--out", str(tmp_path / "cr"),
                       "--json", str(tmp_path / "cr.json")])
    assert r.code == 0, r.err
    probe = json.loads((tmp_path / "cr.json").read_text())["figures"]
    assert probe["n_labels"] == 3 and len(probe["bias_probe"]) == 10
    crit = json.loads((tmp_path / "cr" / "criticism.json").read_text())
    assert len(crit) == 3 and all(len(v["prototypes"]) == 2 for v in crit.values())
    r = run_cli(main, ["report", *tiny_args(tiny_setup), "--out", str(tmp_path / "rep"),
                       "--json", str(tmp_path / "rep.json")])
    assert r.code == 0, r.err
    assert (tmp_path / "rep" / "index.html").exists()
    assert json.loads((tmp_path / "rep.json").read_text())["figures"]["n_images"] == 15


def test_bench_keys(tiny_setup, tmp_path):
    r = run_cli(main, ["bench", *tiny_args(tiny_setup), "--images", "8", "--mmd-points", "300",
                       "--rounds", "1",
                       "--json", str(tmp_path / "b.json")])
    assert r.code == 0, r.err
    f = json.loads((tmp_path / "b.json").read_text())["figures"]
    for key in ("infer_images_per_s_fp32", "infer_images_per_s_bf16", "bf16_top1_agreement",
                "features_images_per_s", "mmd_critic_s_300", "pgd10_images_per_s"):
        assert f[key] > 0, key
