"""Sentences to read aloud: the World English Bible from Debian's ``sword-text-web``.

Verses come from ``diatheke``; they are joined, split into sentences and kept when every word is
in the CMU pronouncing dictionary (Debian ``festlex-cmu``), so both synthesizers read known words
(no digits, names spelled by letter-to-sound rules, or words glued together by the markup).
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

from dldiy_core import UserError

log = logging.getLogger(__name__)

CMUDICT = Path("/usr/share/festival/dicts/cmu/cmudict-0.4.out")
BIBLE_RANGE = "Gen 1:1-Rev 22:21"

_REF = re.compile(r"(?:^|\s)(?:[IV]{1,3} )?[A-Z][A-Za-z]*(?: (?:of|and|the|[A-Z][A-Za-z]*))*"
                  r"(?: \(Greek\))? \d+:\d+: ")  # "II Samuel 22:21: ", "Esther (Greek) 1:2: "
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?'?")  # letters, one inner or final apostrophe
_TOKEN = re.compile(r"[^\s,.!?]+")


def load_vocabulary(path: Path = CMUDICT) -> frozenset[str]:
    """Lowercase words of the CMU dictionary festival ships (apostrophes removed there)."""
    if not path.is_file():
        raise UserError(f"{path}: CMU dictionary not found: apt-get install festlex-cmu")
    text = path.read_text(encoding="latin-1")
    return frozenset(m.group(1) for m in re.finditer(r'^\("([^"]+)"', text, re.M))


def bible_module() -> str:
    """The installed SWORD module of the World English Bible (``engWEB...``)."""
    if shutil.which("diatheke") is None:
        raise UserError("diatheke not found: apt-get install diatheke sword-text-web")
    out = subprocess.run(["diatheke", "-b", "system", "-k", "modulelistnames"],
                         capture_output=True, text=True, check=False).stdout
    names = [n.strip() for n in out.splitlines() if n.strip().lower().startswith("engweb")]
    if not names:
        raise UserError("no World English Bible SWORD module: apt-get install sword-text-web")
    return names[0]


def bible_text(key: str = BIBLE_RANGE) -> str:
    """Plain text of the verses in ``key`` (a diatheke reference such as ``Matt 1-28``)."""
    module = bible_module()
    proc = subprocess.run(["diatheke", "-b", module, "-f", "plain", "-k", key],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise UserError(f"diatheke -b {module} -k {key!r} printed no text "
                        f"(exit {proc.returncode}): {proc.stderr.strip()[:200]}")
    return proc.stdout


def normalise(sentence: str) -> str:
    """Typographic quotes and dashes -> plain ASCII; clause marks -> commas; one space."""
    s = sentence.replace("\u2019", "'").replace("\u2018", "'")
    s = re.sub(r"[\u201c\u201d\"()\[\]{}]", " ", s)
    s = re.sub(r"\s*[\u2014\u2013;:]\s*", ", ", s)  # em dash, colon: a clause break
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s+([,.!?])", r"\1", s)
    s = re.sub(r",+", ",", s).strip(" ,")
    return s


def split_sentences(text: str, vocab: frozenset[str], min_words: int = 5,
                    max_words: int = 20) -> list[str]:
    """Readable sentences of ``text``: ``min_words..max_words`` dictionary words, letters only
    (with apostrophes and ``, . ! ?``), first occurrence only, in text order."""
    text = re.sub(r"<[^>]*>", " ", text)  # stray markup (psalm titles, line groups)
    text = _REF.sub(" ", text)
    text = re.sub(r"\s+", " ", text.replace("\u201c", " ").replace("\u201d", " "))
    out: list[str] = []
    seen: set[str] = set()
    for raw in re.split(r"(?<=[.!?])\s+", text):
        s = normalise(raw)
        if not s or s[-1] not in ".!?" or not s[0].isupper():
            continue
        words = _TOKEN.findall(s)
        if not min_words <= len(words) <= max_words:
            continue
        if not all(_WORD.fullmatch(w) and w.lower().replace("'", "") in vocab for w in words):
            continue
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def corpus_sentences(key: str = BIBLE_RANGE, min_words: int = 5,
                     max_words: int = 20) -> list[str]:
    """All usable sentences of the Bible range ``key``, in text order."""
    sentences = split_sentences(bible_text(key), load_vocabulary(), min_words, max_words)
    log.info("%d sentences of %d-%d dictionary words from %s", len(sentences), min_words,
             max_words, key)
    if not sentences:
        raise UserError(f"no usable sentences in Bible range {key!r}")
    return sentences
