"""What MUSE and vecmap users expect (restarts by the criterion, both spaces exported, NN /
CSLS / inverted-softmax retrieval) and report sentences computed from the run."""

import json

import numpy as np
from test_adversarial import planted_skewed
from test_embeddings_cli import _user_pair

from dldiy_core.testing import run_cli
from dldiy_muse.cli import main
from dldiy_muse.config import AdversarialConfig, MuseConfig, RefineConfig
from dldiy_muse.embeddings import Embeddings, read_vec
from dldiy_muse.pipeline import Pair

TINY = AdversarialConfig(hidden=16, epochs=1, epoch_size=20, dis_most_frequent=600,
                         log_every=10, criterion_words=600)


def _pair(n=600):
    src, tgt, _, pairs = planted_skewed(n=n, seed=3)
    sw, tw = [f"s{i}" for i in range(len(src))], [f"t{i}" for i in range(len(tgt))]
    words = [(sw[s], tw[t]) for s, t in pairs]
    return Pair(Embeddings(sw, src), Embeddings(tw, tgt), words[:300], words[300:])


def test_restarts_keep_the_best_criterion():
    from dldiy_muse.dictionary import mean_csls_cosine
    from dldiy_muse.restarts import align_with_restarts

    pair = _pair()
    cfg = MuseConfig(mode="unsupervised", seed=5, restarts=3, adversarial=TINY,
                     refine=RefineConfig(iterations=1, max_rank=600))
    out = align_with_restarts(cfg, pair, show_progress=False)
    records = [h for h in out.history if h["step"] == "restart"]
    assert [h["seed"] for h in records] == [5, 6, 7] and sum(h["kept"] for h in records) == 1
    best = max(h["restart_criterion"] for h in records)
    assert next(h for h in records if h["kept"])["restart_criterion"] == best
    assert abs(mean_csls_cosine(out.map(pair.src.vectors), pair.tgt.vectors) - best) < 1e-6


def test_cli_exports_both_spaces_and_retrieves_three_ways(tmp_path):
    files = _user_pair(tmp_path, n=800)
    dicts = ["--train", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test.txt")]
    run = tmp_path / "run"
    assert run_cli(main, ["align", "--mode", "supervised", *files, *dicts, "--out", str(run),
                          "--set", "refine.iterations=1"]).code == 0
    src_out, tgt_out = tmp_path / "s.vec", tmp_path / "t.vec"
    result = run_cli(main, ["export", "--run", str(run), "--out", str(src_out),
                            "--tgt-out", str(tgt_out)])
    assert result.code == 0, result.err
    s, _ = read_vec(src_out)
    t, _ = read_vec(tgt_out)
    assert len(s.words) == len(t.words) == 800 and t.words[0] == "t0"
    # the exported spaces are aligned: test words' nearest targets are their translations
    gold = [line.split() for line in (tmp_path / "test.txt").read_text().splitlines()]
    si, ti = {w: i for i, w in enumerate(s.words)}, {w: i for i, w in enumerate(t.words)}
    near = (s.vectors[[si[a] for a, _ in gold]] @ t.vectors.T).argmax(axis=1)
    assert (near == [ti[b] for _, b in gold]).mean() >= 0.95
    result = run_cli(main, ["export", "--run", str(run), "--out", str(src_out), "--tgt-out",
                            str(src_out), "--force"])
    assert result.code == 2 and "s.vec" in result.err  # one file for both: refused
    for method in ("csls", "nn", "invsm"):
        out = run_cli(main, ["translate", "--run", str(run), "s3", "--k", "1", "--method",
                             method])
        assert out.code == 0 and out.out.startswith("s3: t"), out.err
    assert run_cli(main, ["eval", "--run", str(run), "--invsm", "--json",
                          str(tmp_path / "e.json")]).code == 0
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["invsm_p@1"] >= 0.95 and scores["csls_p@1"] >= 0.95


def test_report_sentences_follow_the_run():
    from dldiy_muse.report import adversarial_section

    class Page:
        def __init__(self):
            self.texts = []

        def section(self, *a):
            pass

        def figure(self, *a):
            pass

        def text(self, t):
            self.texts.append(t)

    history = [{"step": "adversarial 0", "epoch": 0, "iteration": 0, "criterion": 0.3},
               {"step": "adversarial", "epoch": 1, "iteration": 10, "dis_loss": 0.6,
                "dis_acc": 0.7},
               {"step": "adversarial 1", "epoch": 1, "iteration": 20, "criterion": 0.5,
                "game_seconds": 2.0}]
    iso = {"pairs": 900, "top": 4000, "cosine_correlation": 0.5, "knn_overlap": 0.3, "k": 10,
           "knn_chance": 0.01}
    cfg = MuseConfig(adversarial=TINY)
    good, bad = Page(), Page()
    sup = {"csls_p@1": 0.5, "criterion": 0.6}
    adversarial_section(good, cfg, history, 3.0, sup, {"csls_p@1": 0.48, "criterion": 0.59},
                        iso)
    adversarial_section(bad, cfg, history, 3.0, sup, {"csls_p@1": 0.0, "criterion": 0.65}, iso)
    assert "20 map steps in 2 s" in good.texts[0] and "shorter schedule" in good.texts[0]
    assert "96% of supervised" in good.texts[1] and "a success" in good.texts[1]
    assert "orders the two maps as P@1 does" in good.texts[1]
    assert "a failure" in bad.texts[1] and "disagree" in bad.texts[1]
    paper = MuseConfig()
    page = Page()
    adversarial_section(page, paper, history, 3.0, sup, sup, iso)
    assert "the paper's schedule" in page.texts[0]


def test_study_has_both_baselines(tmp_path):
    from dldiy_muse.study import study

    pair = _pair()
    cfg = MuseConfig(init="adversarial", refine=RefineConfig(iterations=1, max_rank=600),
                     adversarial=TINY,
                     data=MuseConfig().data.__class__(src="s.vec", tgt="t.npy"))
    out = study(cfg, 1, tmp_path / "s.json", show_progress=False, pair=pair)
    assert out["supervised_refined"]["csls_p@1"] == 1.0
    assert out["identical"] is None or "csls_p@1" in out["identical"]
    run = out["runs"][0]
    assert run["seconds"] >= run["init_seconds"] and "ratio_to_supervised" in run
    assert out["selected_csls_p@1"] == run["csls_p@1"]


def test_demo_report_end_to_end_on_a_planted_pair(tmp_path, monkeypatch):
    from dldiy_muse import report

    src, tgt, _, pairs = planted_skewed(n=600, seed=3)
    sw = [f"w{i}" for i in range(len(src))]
    tw = [f"x{j}" for j in range(len(tgt))]
    for s, t in pairs:  # identical strings are the true pairs here
        tw[t] = sw[s]
    words = [(sw[s], tw[t]) for s, t in pairs]
    pair = Pair(Embeddings(sw, src), Embeddings(tw, tgt), words[:300], words[300:])
    monkeypatch.setattr(report, "load_pair", lambda cfg: pair)
    cfg = MuseConfig(adversarial=TINY, refine=RefineConfig(iterations=1, max_rank=600))
    page = report.demo(cfg, tmp_path)
    html = page.read_text(encoding="utf-8")
    assert "Pair en-fr: 600 English and 600 French words, 8-d" in html
    assert ("a success" in html) != ("a failure" in html)
    assert (tmp_path / "run-adversarial" / "alignment.safetensors").is_file()


def test_discriminator_is_fooled_at_the_right_map_only():
    from dldiy_muse.isomorphism import discriminator_accuracy

    src, tgt, R, _ = planted_skewed(n=2000, d=8, overlap=1.0, seed=4)
    right = discriminator_accuracy(src, tgt, R, words=2000, hidden=64, steps=1500)
    flipped = discriminator_accuracy(src, tgt, -R, words=2000, hidden=64, steps=1500)
    unmapped = discriminator_accuracy(src, tgt, np.eye(8, dtype=np.float32), words=2000,
                                      hidden=64, steps=1500)
    assert right < 0.55 and flipped > 0.6 and unmapped > 0.7
