"""What counts as a word in the pairs' vocabularies: lowercase letters with inner apostrophes
or hyphens (no punctuation, numbers or symbols), typographic marks made ASCII.
"""

from __future__ import annotations

import re

from .embeddings import Embeddings

WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")  # letters, inner apostrophes/hyphens


def normalize_word(w: str) -> str:
    """Typographic apostrophe/hyphen -> ASCII, as in GloVe."""
    return w.replace("\u2019", "'").replace("\u2010", "-").replace("\u2011", "-")


def is_word(w: str) -> bool:
    """Lowercase letters with inner apostrophes/hyphens (``\\w`` would also let ``½`` in)."""
    return (bool(WORD.fullmatch(w)) and w == w.lower()
            and all(c.isalpha() or c in "'-" for c in w))


def words_only(emb: Embeddings) -> Embeddings:
    """The rows of ``emb`` whose word :func:`is_word`, in their order."""
    keep = [i for i, w in enumerate(emb.words) if is_word(w)]
    return Embeddings([emb.words[i] for i in keep], emb.vectors[keep])
