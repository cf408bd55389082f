"""WordNet 3.0 noun hierarchy, read from the Debian ``wordnet-base`` data files.

ImageNet class ids (``n02123045``) are WordNet 3.0 noun offsets, so the hierarchy gives each
mistake a severity (Stock & Cissé sec. 3: many "mistakes" confuse near-synonyms or
parts/wholes; Bertinetto et al. 2020 measure mistake severity in the same tree).

``data.noun`` lines read ``offset lex_filenum ss_type w_cnt(hex) word lex_id ... p_cnt
pointer... | gloss``; hypernyms are the ``@`` and ``@i`` (instance) pointers. The parser is a
few lines, needs no corpus download, and reads the files Debian installs.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dldiy_core import UserError

log = logging.getLogger(__name__)

WORDNET_DIRS = ("/usr/share/wordnet", "/usr/share/wordnet/dict", "/usr/local/share/wordnet")


def wordnet_dir() -> Path:
    """``$WNSEARCHDIR`` or the Debian location of the WordNet data files."""
    for d in ([os.environ["WNSEARCHDIR"]] if os.environ.get("WNSEARCHDIR") else []) + \
            list(WORDNET_DIRS):
        if (Path(d) / "data.noun").is_file():
            return Path(d)
    raise UserError("WordNet data.noun not found: install the Debian package wordnet-base "
                    "(or set WNSEARCHDIR)")


@dataclass
class WordNet:
    """Noun synsets by wnid (``n`` + 8-digit offset): lemmas, gloss, hypernyms."""

    words: dict[str, list[str]] = field(default_factory=dict)
    hypernyms: dict[str, list[str]] = field(default_factory=dict)
    glosses: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, lines) -> WordNet:
        """Parse ``data.noun`` lines (license header lines start with two spaces)."""
        wn = cls()
        for line in lines:
            if line.startswith("  ") or not line.strip():
                continue
            head, _, gloss = line.partition(" | ")
            f = head.split()
            wnid = "n" + f[0]
            n_words = int(f[3], 16)
            words = [f[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            i = 4 + 2 * n_words
            n_ptrs = int(f[i])
            hyper = []
            for j in range(n_ptrs):
                sym, off, pos = f[i + 1 + 4 * j: i + 4 + 4 * j]
                if sym in ("@", "@i") and pos == "n":
                    hyper.append("n" + off)
            wn.words[wnid] = words
            wn.hypernyms[wnid] = hyper
            wn.glosses[wnid] = gloss.strip()
        return wn

    def __contains__(self, wnid: str) -> bool:
        return wnid in self.words

    def name(self, wnid: str) -> str:
        return self.words[wnid][0] if wnid in self.words else wnid

    def ancestors(self, wnid: str) -> dict[str, int]:
        """Every hypernym of ``wnid`` (itself included) with its shortest distance in edges."""
        return _ancestors(self, wnid)

    def distance(self, a: str, b: str) -> int:
        """Shortest path between two synsets through a common hypernym (edges; 0 if equal)."""
        da, db = self.ancestors(a), self.ancestors(b)
        common = da.keys() & db.keys()
        if not common:
            raise UserError(f"WordNet: {a} and {b} share no hypernym")
        return min(da[c] + db[c] for c in common)

    def lowest_common_ancestor(self, a: str, b: str) -> str:
        """The common hypernym on the shortest path between ``a`` and ``b``."""
        da, db = self.ancestors(a), self.ancestors(b)
        common = da.keys() & db.keys()
        return min(common, key=lambda c: (da[c] + db[c], c))

    def is_a(self, wnid: str, ancestor: str) -> bool:
        return ancestor in self.ancestors(wnid)

    def lookup(self, lemma: str) -> list[str]:
        """Synsets holding ``lemma`` (slow: a scan; for building mappings, not in loops)."""
        lemma = lemma.replace("_", " ").lower()
        return [w for w, ws in self.words.items() if lemma in (x.lower() for x in ws)]


def _ancestors(wn: WordNet, wnid: str) -> dict[str, int]:
    cache = wn.__dict__.setdefault("_anc_cache", {})
    if wnid in cache:
        return cache[wnid]
    if wnid not in wn.words:
        raise UserError(f"WordNet: unknown synset {wnid}")
    dist = {wnid: 0}
    queue = deque([wnid])
    while queue:
        s = queue.popleft()
        for h in wn.hypernyms.get(s, ()):
            if h not in dist:
                dist[h] = dist[s] + 1
                queue.append(h)
    cache[wnid] = dist
    return dist


@lru_cache(maxsize=2)
def load_wordnet(folder: str | None = None) -> WordNet:
    """The noun hierarchy from ``folder`` (default: :func:`wordnet_dir`), parsed once and kept
    as JSON in the data cache (keyed by the file's size and time)."""
    import json

    from dldiy_core import atomic_write_text, data_cache

    path = Path(folder or wordnet_dir()) / "data.noun"
    try:
        st = path.stat()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    cache = data_cache("imagenet-bias") / f"wordnet-{st.st_size}-{int(st.st_mtime)}.json"
    if cache.is_file():
        try:
            d = json.loads(cache.read_text())
            return WordNet(d["words"], d["hypernyms"], d["glosses"])
        except (OSError, ValueError, KeyError):
            log.warning("%s: unreadable cache, parsing WordNet again", cache)
    wn = _parse_file(path)
    try:
        atomic_write_text(cache, json.dumps({"words": wn.words, "hypernyms": wn.hypernyms,
                                             "glosses": wn.glosses}))
    except (OSError, UserError) as e:
        log.warning("WordNet cache not written (%s)", e)
    return wn


def _parse_file(path: Path) -> WordNet:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            wn = WordNet.parse(f)
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except (ValueError, IndexError):
        raise UserError(f"{path}: not a WordNet data.noun file") from None
    log.debug("WordNet: %d noun synsets from %s", len(wn.words), path)
    return wn
