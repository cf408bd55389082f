"""Speech synthesizers that report when each phone starts, one engine a module: festival
(:mod:`.festival`), espeak-ng (:mod:`.espeak`) and piper (:mod:`.piper`, from the
``dldiy-tdfbanks[corpus]`` extra). All return a :class:`Spoken`: samples at the engine's own
rate and the engine's phones with times in seconds, mapped to TIMIT's 61 by
:func:`festival_to_timit`, :func:`espeak_to_timit` and :func:`piper_to_timit`.

Only the corpus builder uses them; the front ends and the recognizer never import them.
"""

from .common import BadItem, Segments, Spoken
from .espeak import (
    _ESPEAK_BASE,
    _ESPEAK_RHOTIC,
    ESPEAK_MERGE,
    ESPEAK_TO_TIMIT,
    RHOTIC_ACCENTS,
    SPLIT_FIRST,
    Espeak,
    espeak_to_timit,
    espeak_variants_missing,
    require_espeak,
)
from .festival import (
    FESTIVAL_PACKAGES,
    FESTIVAL_TO_TIMIT,
    FESTIVAL_VOICES,
    festival_batch,
    festival_setup,
    festival_to_timit,
    read_segs,
    require_festival,
)
from .piper import (
    _PIPER_RELABEL,
    CORPUS_EXTRA,
    PIPER_NEXT,
    PIPER_PREV,
    PIPER_TO_TIMIT,
    PIPER_UNITS,
    PIPER_VOICE,
    PIPER_WORD,
    piper_synth,
    piper_to_timit,
    piper_voice,
    require_piper,
)

__all__ = [
    "BadItem", "CORPUS_EXTRA", "ESPEAK_MERGE", "ESPEAK_TO_TIMIT", "Espeak", "FESTIVAL_PACKAGES",
    "FESTIVAL_TO_TIMIT", "FESTIVAL_VOICES", "PIPER_NEXT", "PIPER_PREV", "PIPER_TO_TIMIT",
    "PIPER_UNITS", "PIPER_VOICE", "PIPER_WORD", "RHOTIC_ACCENTS", "SPLIT_FIRST", "Segments",
    "Spoken", "_ESPEAK_BASE", "_ESPEAK_RHOTIC", "_PIPER_RELABEL", "espeak_to_timit",
    "espeak_variants_missing", "festival_batch", "festival_setup", "festival_to_timit",
    "piper_synth", "piper_to_timit", "piper_voice", "read_segs", "require_espeak",
    "require_festival", "require_piper",
]
