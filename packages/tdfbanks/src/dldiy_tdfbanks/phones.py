"""TIMIT phone sets, the 61 -> 39 folding (Lee & Hon 1989) and the phone error rate."""

from __future__ import annotations

from collections.abc import Sequence

TIMIT61: tuple[str, ...] = (
    "aa", "ae", "ah", "ao", "aw", "ax", "ax-h", "axr", "ay", "b", "bcl", "ch", "d", "dcl", "dh",
    "dx", "eh", "el", "em", "en", "eng", "epi", "er", "ey", "f", "g", "gcl", "h#", "hh", "hv", "ih",
    "ix", "iy", "jh", "k", "kcl", "l", "m", "n", "ng", "nx", "ow", "oy", "p", "pau", "pcl", "q",
    "r", "s", "sh", "t", "tcl", "th", "uh", "uw", "ux", "v", "w", "y", "z", "zh",
)

FOLD39: dict[str, str | None] = {p: p for p in TIMIT61}
FOLD39.update({
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l",
    "em": "m", "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw",
    "pcl": "sil", "tcl": "sil", "kcl": "sil", "bcl": "sil", "dcl": "sil", "gcl": "sil",
    "h#": "sil", "pau": "sil", "epi": "sil", "q": None,
})
"""61 -> 39 phones; ``q`` (glottal stop) is deleted."""

TIMIT39: tuple[str, ...] = tuple(sorted({p for p in FOLD39.values() if p is not None}))

BLANK = 0
"""CTC blank index; phone ``i`` of a label set has class ``i + 1``."""


def fold(phones: Sequence[str]) -> list[str]:
    """Fold 61-phone labels to the 39-phone scoring set (Lee & Hon 1989): each phone mapped by
    :data:`FOLD39`, ``q`` deleted, nothing merged (a closure before a pause stays two ``sil``),
    as the standard scoring does to reference and hypothesis alike."""
    return [q for p in phones if (q := FOLD39[p]) is not None]


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def phone_error_rate(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> float:
    """PER = total edit distance / total reference length, both folded to 39 phones."""
    errors = total = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        ref, hyp = fold(ref), fold(hyp)
        errors += edit_distance(ref, hyp)
        total += len(ref)
    return errors / max(total, 1)
