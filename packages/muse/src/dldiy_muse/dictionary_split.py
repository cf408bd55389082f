"""The MUSE-style split of a bilingual dictionary into train and test by source frequency.
"""

from __future__ import annotations

import logging

import numpy as np

from dldiy_core import UserError

from .embeddings import Embeddings

log = logging.getLogger(__name__)

def split_dictionary(pairs: list[tuple[str, str]], src_rank: dict[str, int],
                     tgt_vocab: set[str], n_train: int = 5000, n_test: int = 1500,
                     seed: int = 0, band: int = 10_000,
                     test_ranks: tuple[int, int] | None = None,
                     ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """MUSE-style (train, test) dictionaries with no source word in both.

    Only pairs with the source in ``src_rank`` and the target in ``tgt_vocab`` count. Unique
    sources are sorted by rank; the test set takes all translations of ``n_test`` sources drawn
    at random from a pool, and train takes all translations of the first (most frequent)
    ``n_train`` sources not in test. The pool: the sources of rank ``lo <= r < hi`` when
    ``test_ranks = (lo, hi)`` is given (MUSE's test sources come from one frequency band, e.g.
    5k-6.5k); else positions ``[s, s + band)`` of the sorted sources, s = ``n_train`` (or less
    when there are fewer than ``n_train + n_test`` sources, so test still gets ``n_test``).
    Pairs are ordered by source rank.
    """
    kept = sorted((p for p in dict.fromkeys(pairs) if p[0] in src_rank and p[1] in tgt_vocab),
                  key=lambda p: src_rank[p[0]])
    sources = list(dict.fromkeys(s for s, _ in kept))
    if test_ranks is not None:
        lo, hi = test_ranks
        pool = [s for s in sources if lo <= src_rank[s] < hi]
        if len(pool) < n_test:
            raise UserError(f"test ranks {lo}-{hi}: only {len(pool)} dictionary sources, "
                            f"{n_test} needed")
    else:
        start = min(n_train, max(len(sources) - n_test, 0))
        pool = sources[start : start + band]
    rng = np.random.default_rng(seed)
    test_src = {pool[i] for i in rng.choice(len(pool), min(n_test, len(pool)), replace=False)}
    train_src = set([s for s in sources if s not in test_src][:n_train])
    train = [p for p in kept if p[0] in train_src]
    test = [p for p in kept if p[0] in test_src]
    log.info("dictionary: %d usable pairs, %d sources; train %d pairs / %d sources, test %d / %d",
             len(kept), len(sources), len(train), len(train_src), len(test), len(test_src))
    return train, test


def rank_range(pairs: list[tuple[str, str]], src_rank: dict[str, int]) -> list[int]:
    """Lowest and highest source rank among ``pairs`` (``[-1, -1]`` if empty)."""
    ranks = [src_rank[s] for s, _ in pairs]
    return [min(ranks, default=-1), max(ranks, default=-1)]


def split_stats(en: Embeddings, fr: Embeddings, pairs: list[tuple[str, str]],
                train: list[tuple[str, str]], test: list[tuple[str, str]]) -> dict:
    src_rank, tgt_vocab = en.index(), set(fr.words)
    kept = [(s, t) for s, t in pairs if s in src_rank and t in tgt_vocab]
    return {
        "pairs_kept": len(kept), "sources_kept": len({s for s, _ in kept}),
        "coverage": len(kept) / max(len(pairs), 1),
        "train_pairs": len(train), "train_sources": len({s for s, _ in train}),
        "train_src_rank_range": rank_range(train, src_rank),
        "test_pairs": len(test), "test_sources": len({s for s, _ in test}),
        "test_src_rank_range": rank_range(test, src_rank),
    }
