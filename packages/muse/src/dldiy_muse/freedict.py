"""Debian FreeDict dictionaries (dictd ``.index`` + ``.dict.dz`` files): single-word lowercase
(english, french) pairs.
"""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

from dldiy_core import UserError

from .words import is_word, normalize_word

log = logging.getLogger(__name__)

DICTD = Path("/usr/share/dictd")
_B64 = {c: i for i, c in enumerate(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}

FREEDICT = ("eng-fra", "fra-eng")


FREEDICT_DEBIAN = tuple(f"dict-freedict-{p}" for p in FREEDICT)


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
    return normalize_word(head), [normalize_word(t) for t in out if t]


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
            if is_word(head) and is_word(t):
                seen[(t, head) if flip else (head, t)] = None
    log.info("%s: %d single-word pairs", index, len(seen))
    return list(seen)


def freedict_en_fr(folder: Path = DICTD) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The union of FreeDict ``eng-fra`` and ``fra-eng`` as (en, fr) pairs, and the count each
    gave."""
    found = {p: load_freedict(p, folder) for p in FREEDICT}
    pairs = list(dict.fromkeys(found["eng-fra"] + found["fra-eng"]))
    return pairs, {**{p: len(v) for p, v in found.items()}, "union": len(pairs)}


def freedict_files(folder: Path = DICTD) -> list[Path]:
    return [folder / f"freedict-{p}.{ext}" for p in FREEDICT for ext in ("index", "dict.dz")]
