"""The demo end to end on the real model and images (slow: minutes on 2 cores)."""

import json

import pytest

from dldiy_core.testing import run_cli
from dldiy_imagenet_bias.cli import main


@pytest.mark.slow
def test_demo_writes_the_report(tmp_path):
    out = tmp_path / "demo"
    r = run_cli(main, ["demo", "--out", str(out), "--json", str(tmp_path / "demo.json")])
    assert r.code == 0, r.err
    for name in ("index.html", "report.md", "summary.json", "severity.png", "robustness.png",
                 "explanations.png"):
        assert (out / name).exists(), name
    f = json.loads((tmp_path / "demo.json").read_text())["figures"]
    assert f["n_images"] > 200 and 0 < f["top1"] < f["top5"] <= 1
    assert f["pgd_curve"][0][1] >= f["pgd_curve"][-1][1]
    assert len(f["criticism"]) >= 5
