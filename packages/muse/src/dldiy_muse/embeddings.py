"""Embedding files: fastText/word2vec ``.vec`` text (with its ``n d`` header) and ``.npy`` +
vocabulary, read streaming (only the first ``max_words`` rows), and normalisation.

Row-level problems (wrong number of values, duplicate word, undecodable bytes, NaN/inf)
skip the row and are counted; file-level problems (no header, a header that disagrees with
the rows, an empty file) are a one-line error.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from dldiy_core import UserError, atomic_path

from .data import Embeddings

log = logging.getLogger(__name__)


def read_vec(path: str | Path, max_words: int | None = None) -> tuple[Embeddings, Counter]:
    """Read a ``.vec`` file; returns the embeddings and the skipped-row counts by reason."""
    path = Path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as e:
        raise UserError(f"{path}: cannot open ({e.strerror})") from None
    skipped: Counter = Counter()
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    with f:
        header = f.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise UserError(f"{path}: line 1 should be the header 'n_words dim', "
                            f"got {b' '.join(header)[:60]!r}")
        n, d = (int(h) for h in header)
        for lineno, raw in enumerate(f, start=2):
            if max_words is not None and len(words) >= max_words:
                break
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                skipped["undecodable bytes"] += 1
                continue
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if len(parts) != d + 1:
                if not words and not skipped and len(parts) > 1:
                    raise UserError(f"{path}:{lineno}: the header says {d} dimensions, this row "
                                    f"has {len(parts) - 1} values")
                skipped["wrong number of values"] += 1
                continue
            word = parts[0]
            try:
                vec = np.array(parts[1:], dtype=np.float32)
            except ValueError:
                skipped["not numbers"] += 1
                continue
            if not np.isfinite(vec).all():
                skipped["NaN or inf"] += 1
                continue
            if word in seen:
                skipped["duplicate word"] += 1
                continue
            seen.add(word)
            words.append(word)
            rows.append(vec)
    if not words:
        raise UserError(f"{path}: no usable rows")
    if max_words is None and len(words) + sum(skipped.values()) != n:
        raise UserError(f"{path}: the header says {n} rows, the file has "
                        f"{len(words) + sum(skipped.values())}")
    if skipped:
        log.warning("%s: skipped %d rows (%s)", path, sum(skipped.values()),
                    ", ".join(f"{v} {k}" for k, v in skipped.items()))
    return Embeddings(words, np.stack(rows)), skipped


def write_vec(path: str | Path, emb: Embeddings, block: int = 10_000) -> Path:
    """Write ``.vec`` text, streamed in blocks to a temporary file, then renamed."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{len(emb.words)} {emb.vectors.shape[1]}\n")
        for i in range(0, len(emb.words), block):
            for word, vec in zip(emb.words[i:i + block], emb.vectors[i:i + block], strict=True):
                f.write(word + " " + " ".join(f"{v:.5f}" for v in vec) + "\n")
    return Path(path)


def read_npy(vectors: str | Path, words: str | Path, max_words: int | None = None) -> Embeddings:
    """``.npy [n, d]`` + a vocabulary file (one word per line, same order)."""
    try:
        x = np.load(vectors, mmap_mode="r", allow_pickle=False)
        vocab = Path(words).read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{vectors}: cannot read embeddings ({e})") from None
    if x.ndim != 2 or len(x) != len(vocab):
        raise UserError(f"{vectors}: {x.shape} vectors for {len(vocab)} words in {words}")
    n = len(vocab) if max_words is None else min(max_words, len(vocab))
    return Embeddings(vocab[:n], np.array(x[:n], dtype=np.float32))


def read_embeddings(path: str | Path, max_words: int | None = None) -> Embeddings:
    """A ``.vec`` file, or a ``.npy`` with its vocabulary in ``<stem>.words.txt`` beside it."""
    path = Path(path)
    if path.suffix == ".npy":
        return read_npy(path, path.with_suffix(".words.txt"), max_words)
    return read_vec(path, max_words)[0]


def normalize(x: np.ndarray, how: str = "center,unit") -> np.ndarray:
    """``how``: comma list of ``unit`` (rows to length 1) and ``center`` (subtract the mean),
    applied in order, or ``none``. MUSE's usual choice is ``unit,center,unit``."""
    x = np.array(x, dtype=np.float32)
    for step in filter(None, how.split(",")):
        if step == "unit":
            x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        elif step == "center":
            x -= x.mean(axis=0, keepdims=True)
        elif step != "none":
            raise UserError(f"normalisation '{step}': expected unit, center or none")
    return x
