"""The built pairs by name: which builder makes each and which files hold its two sides."""

from __future__ import annotations

from pathlib import Path

from dldiy_core import UserError, make_dir

from . import en_fr_pairs
from .pair_cache import cache_root

PAIRS = {"en-fr": ("en", "fr"), "en-fr-glove": ("en", "fr"), "en-en": ("en", "man"),
         "man-man": ("even", "odd"), "man-cbow": ("even", "odd"),
         "man-fasttext": ("even", "odd")}
"""Pair -> (source, target) file stems in the pair's folder. ``en-fr``: the spaCy md tables
(English and French vectors trained alike, 300-d); ``en-fr-glove``: GloVe 50-d against the
French table brought to 50-d by PCA, a documented hard pair; the others: ``manpages.py``."""
TRANSLATION_PAIRS = ("en-fr", "en-fr-glove")
"""Pairs with a real bilingual dictionary (identical strings are not the gold one there)."""


def build_pair(name: str) -> Path:
    """The pair's folder under ``cache_root()``, built on first use."""
    if name not in PAIRS:
        raise UserError(f"pair '{name}': expected one of {', '.join(PAIRS)}")
    make_dir(cache_root())  # a file in the way or no permission: one line before any work
    if name == "en-fr":
        return en_fr_pairs.build_en_fr(cache_root() / name)
    if name == "en-fr-glove":
        return en_fr_pairs.build_en_fr_glove(cache_root() / name)
    from . import manpages  # gensim is imported only to build these

    if name == "en-en":
        return manpages.build_en_en(cache_root() / name)
    odd = {"man-man": "skipgram", "man-cbow": "cbow", "man-fasttext": "fasttext"}[name]
    return manpages.build_man_man(cache_root() / name, odd=odd)
