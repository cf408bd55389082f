import json
import wave

import numpy as np

from dldiy_core import Report
from dldiy_core.report import fmt, new_figure
from dldiy_core.testing import sine_wave


def test_report_writes_md_html_summary_and_media(tmp_path):
    r = Report(tmp_path / "run", "Toy <demo>")
    r.headline("recall@10", np.float32(0.8125))
    r.section("Results")
    r.text("First paragraph.\n\nSecond & last.")
    r.table(["method", "recall"], [["ours", 0.81234], ["baseline", 0.5]], caption="recalls")
    r.line_plot("curve", {"a": ([1, 2, 3], [3, 2, 1]), "b": ([1, 2, 3], [1, 2, 3])},
                xlabel="step", logy=True)
    fig, ax = new_figure()
    ax.hist(np.random.default_rng(0).normal(size=100))
    r.figure("hist", fig, "a histogram")
    r.image("img", np.zeros((8, 8, 3), dtype=np.uint8))
    r.audio("tone", sine_wave(440, 0.1), 16000, "tone")
    page = r.write().read_text()
    folder = tmp_path / "run"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["report.md", "index.html", "summary.json", "curve.png", "hist.png", "img.png",
         "tone.wav"])
    assert "Toy &lt;demo&gt;" in page and "Second &amp; last." in page
    assert 'src="curve.png"' in page and 'src="tone.wav"' in page and "0.8123" in page
    assert "/" not in "".join(m["path"] for m in json.loads(
        (folder / "summary.json").read_text())["media"])
    md = (folder / "report.md").read_text()
    assert "| ours | 0.8123 |" in md and "![a histogram](hist.png)" in md
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["headlines"] == {"recall@10": 0.8125}
    with wave.open(str(folder / "tone.wav")) as w:
        assert (w.getframerate(), w.getnframes(), w.getsampwidth()) == (16000, 1600, 2)
    assert (folder / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fmt():
    assert [fmt(x) for x in (3, 1234567, 0.123456, 1e-7, float("nan"), "x")] == \
        ["3", "1,234,567", "0.1235", "1.000e-07", "nan", "x"]


def test_attach_shows_a_file_written_beside_the_report(tmp_path):
    import pytest

    report = Report(tmp_path, "t")
    (tmp_path / "episode.gif").write_bytes(b"GIF89a")
    report.attach("episode.gif", "an episode")
    assert '<img src="episode.gif" alt="an episode">' in (report.write()).read_text()
    with pytest.raises(FileNotFoundError):
        report.attach("missing.gif")
