"""Embedding files: fastText/word2vec ``.vec`` text (with its ``n d`` header) and ``.npy`` +
vocabulary, read streaming (only the first ``max_words`` rows), and normalisation.

Row-level problems in a ``.vec`` (wrong number of values, duplicate or empty word,
undecodable bytes, NaN/inf) skip the row and are counted; file-level problems (no header, a
header that disagrees with the rows, also when only ``max_words`` rows are read, tabs between
values, a truncated last row, an empty file) are a one-line error. A ``.npy`` must be a finite
2-d array of numbers with one word a line in its vocabulary (no blank or duplicate word).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dldiy_core import (
    UserError,
    atomic_path,
    open_input,
    os_error,
    read_input,
)

log = logging.getLogger(__name__)


@dataclass
class Embeddings:
    """``words[i]`` has vector ``vectors[i]``; ``vectors`` is ``[n, d]`` float32."""

    words: list[str]
    vectors: np.ndarray

    def index(self) -> dict[str, int]:
        """Word -> row (also the frequency rank: rows are in frequency order)."""
        return {w: i for i, w in enumerate(self.words)}


def _row_count(f, first: bytes, d: int, path: Path, lineno: int) -> int:
    """Count the non-blank rows ``first`` and those left in ``f`` (after ``max_words``),
    refusing a truncated last row (no end of line and a wrong number of values)."""
    count, last = 1, first
    for raw in f:
        lineno += 1
        if raw.strip():
            count, last = count + 1, raw
    if last and not last.endswith(b"\n") and len(last.split()) != d + 1:
        raise UserError(f"{path}:{lineno}: truncated file (the last row has no end of line "
                        f"and {len(last.split()) - 1} of {d} values)")
    return count


def read_vec(path: str | Path, max_words: int | None = None) -> tuple[Embeddings, Counter]:
    """Read a ``.vec`` file; returns the embeddings and the skipped-row counts by reason.

    The header's row count is checked against the file also when only the first
    ``max_words`` rows are read (the rest are counted, not parsed); blank lines are ignored.
    """
    path = Path(path)
    skipped: Counter = Counter()
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    more = 0  # rows after the first max_words
    with open_input(path, "rb", "embeddings") as f:
        header = f.readline().removeprefix(b"\xef\xbb\xbf").split()  # a UTF-8 BOM is fine
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise UserError(f"{path}: line 1 should be the header 'n_words dim', "
                            f"got {b' '.join(header)[:60]!r}")
        n, d = (int(h) for h in header)
        if n == 0 or d == 0:
            raise UserError(f"{path}: the header '{n} {d}' announces no vectors")
        lineno = 1
        for lineno, raw in enumerate(f, start=2):
            if not raw.strip():
                continue
            if max_words is not None and len(words) >= max_words:
                more = _row_count(f, raw, d, path, lineno)
                break
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                skipped["undecodable bytes"] += 1
                continue
            if "\t" in line:
                raise UserError(f"{path}:{lineno}: values separated by tabs; a .vec row is "
                                "'word v1 v2 ...' separated by single spaces")
            ended = line.endswith("\n")
            parts = line.rstrip("\n").rstrip("\r").rstrip(" ").split(" ")
            if len(parts) != d + 1:
                if not ended:
                    raise UserError(f"{path}:{lineno}: truncated file (the last row has no end "
                                    f"of line and {len(parts) - 1} of {d} values)")
                if not words and not skipped and len(parts) > 1:
                    raise UserError(f"{path}:{lineno}: the header says {d} dimensions, this row "
                                    f"has {len(parts) - 1} values")
                skipped["wrong number of values"] += 1
                continue
            word = parts[0]
            if not word:
                skipped["empty word"] += 1
                continue
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
    total = len(words) + sum(skipped.values()) + more
    if total != n:
        raise UserError(f"{path}: the header says {n} rows, the file has {total}")
    if not words:
        raise UserError(f"{path}: no usable rows ("
                        + ", ".join(f"{v} {k}" for k, v in skipped.items()) + ")")
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


def read_vocabulary(path: str | Path) -> list[str]:
    """A vocabulary file: one word a line (utf-8), no blank, duplicate or spaced word."""
    path = Path(path)
    try:
        text = read_input(path, "vocabulary").decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not utf-8 ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    seen: set[str] = set()
    words = []
    for lineno, line in enumerate(lines, 1):
        word = line.removesuffix("\r")
        if not word or any(c.isspace() for c in word):
            raise UserError(f"{path}:{lineno}: expected one word, got {word!r}")
        if word in seen:
            raise UserError(f"{path}:{lineno}: duplicate word {word!r}")
        seen.add(word)
        words.append(word)
    if not words:
        raise UserError(f"{path}: no words")
    return words


def read_npy(vectors: str | Path, words: str | Path, max_words: int | None = None) -> Embeddings:
    """``.npy [n, d]`` (numbers, finite) + a vocabulary file (one word per line, same order).

    Only the first ``max_words`` rows are read (and checked for NaN/inf)."""
    vectors, words = Path(vectors), Path(words)
    with open_input(vectors, "rb", "embeddings") as f:
        if f.read(6) != b"\x93NUMPY":
            raise UserError(f"{vectors}: not a .npy file (it does not start with the NumPy "
                            "magic string)")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            dtype = read_header(f)[2] if read_header else np.dtype(np.float32)  # 3.0: np.load
        except Exception as e:  # numpy's header parser: ValueError, SyntaxError...
            detail = " ".join(str(e).split())[:120]
            raise UserError(f"{vectors}: not a readable .npy header ({detail})") from None
    if dtype.hasobject:
        raise UserError(f"{vectors}: holds Python objects (pickled data is never loaded); "
                        "expected an array of numbers")
    try:
        x = np.load(vectors, mmap_mode="r", allow_pickle=False)
    except OSError as e:
        raise os_error(e, vectors, "read embeddings") from None
    except Exception as e:  # numpy's header parser: ValueError, TypeError, SyntaxError...
        detail = " ".join(str(e).split())[:120]
        raise UserError(f"{vectors}: not a readable .npy array ({detail})") from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
        raise UserError(f"{vectors}: expected an array of numbers, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 2 or 0 in x.shape:
        raise UserError(f"{vectors}: expected a 2-d array [words, dim], got shape {x.shape}")
    vocab = read_vocabulary(words)
    if len(x) != len(vocab):
        raise UserError(f"{vectors}: {x.shape[0]} rows for the {len(vocab)} words of {words}")
    n = len(vocab) if max_words is None else min(max_words, len(vocab))
    try:
        rows = np.array(x[:n], dtype=np.float32)
    except (OSError, ValueError) as e:
        raise UserError(f"{vectors}: cannot read the rows ({e})") from None
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
    if len(bad):
        i = int(bad[0])
        raise UserError(f"{vectors}: row {i} (word {vocab[i]!r}, counting from 0) is not finite "
                        f"(NaN or inf); rows with NaN or inf among the first {n}: {len(bad)}")
    return Embeddings(vocab[:n], rows)


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


def reduce_dim(emb: Embeddings, d: int) -> Embeddings:
    """PCA to ``d`` dims: ``[n, D] -> [n, d]``; how French 300-d is brought to English 50-d.

    Exact SVD of the centred vectors (deterministic); each component's sign is fixed so its
    largest loading is positive. The output is centred.
    """
    x = np.asarray(emb.vectors, dtype=np.float64)
    if not 0 < d <= min(x.shape):
        raise UserError(f"reduce_dim: d={d} must be in 1..{min(x.shape)}")
    x = x - x.mean(axis=0)
    vt = np.linalg.svd(x, full_matrices=False)[2][:d]
    vt *= np.sign(vt[np.arange(d), np.abs(vt).argmax(axis=1)])[:, None]
    y = x @ vt.T
    log.info("PCA %d -> %d dims keeps %.1f%% of the variance", x.shape[1], d,
             100 * (y**2).sum() / max((x**2).sum(), 1e-30))
    return Embeddings(list(emb.words), y.astype(np.float32))
