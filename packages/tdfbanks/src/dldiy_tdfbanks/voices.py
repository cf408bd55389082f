"""The voices of the corpus: one *speaker* = engine + voice + rate/pitch setting, each in one
split (espeak variants of dev and test never read in train; festival's and piper's voices occur in
every split, each setting in one), and the sentences each one reads."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dldiy_core import UserError

from .timit import SPLITS
from .tts import PIPER_VOICE

if TYPE_CHECKING:
    from .corpus import CorpusConfig

ESPEAK_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "Alex",
    "Alicia", "Andrea", "Andy", "Annie", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo",
    "Jacky", "Lee", "Mario", "Michael", "Mike", "Nguyen", "Storm", "adam", "anika", "antonio",
    "aunty", "belinda", "benjamin", "boris", "david", "ed", "edward", "grandma", "grandpa",
    "gustave", "iven3", "klatt", "klatt2", "klatt3", "klatt4", "linda", "marcelo", "max",
    "michel", "miguel", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph",
    "steph3", "travis", "victor")
"""espeak-ng voice variants that sound like one person (no robots, whispers, echo effects)."""
_FEMALE_VARIANTS = frozenset({"f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika",
                              "aunty", "belinda", "grandma", "linda", "shelby", "steph", "steph3"})
DIALECTS = {"festival": "DR1", "piper": "DR1", "en-us": "DR2", "en-us-nyc": "DR3", "en": "DR4",
            "en-gb-x-rp": "DR5", "en-gb-scotland": "DR6", "en-gb-x-gbclan": "DR7",
            "en-gb-x-gbcwmd": "DR7", "en-029": "DR8"}
"""TIMIT-style dialect folders: festival's and piper's US voices, then one region per espeak
accent."""
PIPER_WARPS: tuple[float, ...] = tuple(round(rate / 22050, 5)
                                       for rate in (20800, 21600, 22050, 22400, 23200))
"""piper's 22.05 kHz read as 20.8 ... 23.2 kHz (warp 0.94 ... 1.05): rates whose ratio to 16 kHz
is a small fraction (13/10, 27/20...), as the festival warps give; an arbitrary one (22050 * 0.94
= 20727, prime to 16000) would make the resampler's sinc kernel 16000 x 20727."""
PIPER_GRID: tuple[tuple[float, float, float, float], ...] = tuple(
    (length, noise, noise_w, warp) for length in (0.9, 0.95, 1.0, 1.05, 1.1, 1.15)
    for noise in (0.5, 0.667, 0.8) for noise_w in (0.6, 0.8, 1.0) for warp in PIPER_WARPS)
"""piper settings ``(length_scale, noise_scale, noise_w, warp)``; each speaker draws one."""


@dataclass(frozen=True)
class Speaker:
    """One voice setting: an engine, a voice and how it reads, in one split."""

    id: str
    """TIMIT-style speaker folder: sex letter, engine letter (F festival, E espeak, P piper), the
    voice, a number."""
    split: str
    dialect: str
    """TIMIT dialect folder (:data:`DIALECTS`)."""
    engine: str
    """``festival``, ``espeak`` or ``piper``."""
    voice: str
    """festival: a short name of :data:`.tts.FESTIVAL_VOICES`; espeak: ``<accent>+<variant>``;
    piper: :data:`.tts.PIPER_VOICE`."""
    accent: str
    """espeak: the accent's voice name (its phone mapping depends on it); others: ``en-us``."""
    rate: float
    """festival: duration stretch (> 1 slower); espeak: words per minute;
    piper: ``length_scale`` (> 1 slower)."""
    pitch: float
    """festival: mean F0 in Hz (0: the voice's own); espeak: pitch 0..100; piper:
    ``noise_scale`` (variation of the voice, not a pitch)."""
    pitch_range: float
    """festival: unused (0); espeak: pitch range 0..100; piper: ``noise_w`` (variation of the
    phone durations)."""
    warp: float
    """festival and piper: the output read at ``warp`` times its rate before resampling to
    16 kHz (pitch and formants move together); espeak: 1."""
    gain: float
    """Peak amplitude the utterance is scaled to (every engine)."""
    target_s: float
    """Seconds of audio this speaker should read."""


def _ids(prefix: str, counters: Counter) -> str:
    counters[prefix] += 1
    return f"{prefix}{counters[prefix] - 1}"


def engine_counts(n: int, engines: list[str], shares: dict[str, float]) -> dict[str, int]:
    """``n`` speakers of one split shared by ``engines``: each engine of ``shares`` (festival,
    piper) gets its fraction, at least one; espeak (else the first engine) the rest, at least
    one."""
    counts = dict.fromkeys(("festival", "espeak", "piper"), 0)
    if n <= 0 or not engines:
        return counts
    rest = "espeak" if "espeak" in engines else engines[0]
    fixed = [e for e in engines if e != rest]
    least = 1 if n >= len(engines) else 0
    for e in fixed:
        counts[e] = max(least, round(n * shares.get(e, 0.0)))
    while sum(counts[e] for e in fixed) > n - least:
        counts[max(fixed, key=lambda e: counts[e])] -= 1
    counts[rest] = n - sum(counts[e] for e in fixed)
    return counts


def plan_speakers(cfg: CorpusConfig) -> list[Speaker]:
    """Every speaker of every split, deterministic in ``cfg.seed``."""
    rng = random.Random(cfg.seed)
    engines = [e for e in ("festival", "espeak", "piper") if e in cfg.engines]
    seconds = {"train": cfg.train_hours * 3600, "dev": cfg.dev_minutes * 60,
               "test": cfg.test_minutes * 60}
    shares = {"festival": cfg.festival_share, "piper": cfg.piper_share}
    counts: dict[str, dict[str, int]] = {}
    for split, sec in seconds.items():
        n = max(len(engines), round(sec / (cfg.speaker_minutes * 60))) if sec > 0 else 0
        counts[split] = engine_counts(n, engines, shares)
    # espeak variants are split between train, dev and test: dev/test voices are new voices
    variants = list(dict.fromkeys(cfg.espeak_variants))
    rng.shuffle(variants)
    pools: dict[str, list[str]] = {}
    for split in ("test", "dev"):
        k = min(counts[split]["espeak"], max(1, len(variants) // 6))
        pools[split], variants = variants[:k], variants[k:]
    pools["train"] = variants
    if counts["train"]["espeak"] and not variants:
        raise UserError("too few espeak variants for voice-disjoint splits")
    # festival settings are drawn without replacement: no two speakers sound the same
    grids = {v: [(r, f, w) for r in (0.9, 0.95, 1.0, 1.05, 1.1, 1.15)
                 for f in ((0.0,) if v == "slt" else tuple(range(85, 140, 5)))
                 for w in (0.92, 0.96, 1.0, 1.04, 1.08)] for v in cfg.festival_voices}
    for grid in grids.values():
        rng.shuffle(grid)
    # piper has one voice: like festival's, it reads in every split, each setting once (its own
    # generator, so adding piper leaves the festival and espeak draws as they were)
    piper_rng = random.Random(cfg.seed + 2)
    piper_grid = list(PIPER_GRID)
    piper_rng.shuffle(piper_grid)
    ids: Counter = Counter()
    out: list[Speaker] = []
    for split in SPLITS:
        per = seconds[split] / max(1, sum(counts[split].values()))
        off = rng.randrange(len(cfg.festival_voices) or 1)
        for k in range(counts[split]["festival"]):
            voice = cfg.festival_voices[(k + off) % len(cfg.festival_voices)]
            if not grids[voice]:
                raise UserError(f"too many festival speakers for voice {voice}")
            rate, f0, warp = grids[voice].pop()
            sex = "F" if voice == "slt" else "M"
            out.append(Speaker(_ids(f"{sex}F{voice.upper()[:3]}", ids), split,
                               DIALECTS["festival"], "festival", voice, "en-us", rate=rate,
                               pitch=float(f0), pitch_range=0.0, warp=warp,
                               gain=round(rng.uniform(0.3, 0.9), 2), target_s=per))
        off = rng.randrange(len(cfg.espeak_accents) or 1)
        for k in range(counts[split]["espeak"]):
            variant = pools[split][k % len(pools[split])]
            accent = cfg.espeak_accents[(k + off) % len(cfg.espeak_accents)]
            vid = cfg.espeak_variants.index(variant)
            spk_id = _ids(("F" if variant in _FEMALE_VARIANTS else "M") + f"E{vid:02d}", ids)
            out.append(Speaker(spk_id, split, DIALECTS.get(accent, "DR8"), "espeak",
                               f"{accent}+{variant}", accent, rate=rng.randrange(145, 200, 5),
                               pitch=rng.randrange(35, 66, 5),
                               pitch_range=rng.randrange(30, 81, 10), warp=1.0,
                               gain=round(rng.uniform(0.3, 0.9), 2), target_s=per))
        for _ in range(counts[split]["piper"]):
            if not piper_grid:
                raise UserError(f"too many piper speakers (at most {len(PIPER_GRID)})")
            length, noise, noise_w, warp = piper_grid.pop()
            out.append(Speaker(_ids("MP" + PIPER_VOICE.upper(), ids), split, DIALECTS["piper"],
                               "piper", PIPER_VOICE,
                               "en-us", rate=length, pitch=noise, pitch_range=noise_w, warp=warp,
                               gain=round(piper_rng.uniform(0.3, 0.9), 2), target_s=per))
    return out


def sentence_plan(speakers: list[Speaker], n_sentences: int, seed: int,
                  ) -> dict[str, list[int]]:
    """Speaker id -> the sentence indices it reads, in order (disjoint between splits; speakers
    of one split start at evenly spaced places of its shuffled share)."""
    order = list(range(n_sentences))
    random.Random(seed + 1).shuffle(order)
    total = sum(s.target_s for s in speakers) or 1.0
    plan: dict[str, list[int]] = {}
    start = 0
    for split in SPLITS:
        group = [s for s in speakers if s.split == split]
        share = sum(s.target_s for s in group) / total
        pool = order[start:start + max(1, round(share * n_sentences))]
        start += len(pool)
        if group and not pool:
            raise UserError(f"only {n_sentences} sentences: too few for three splits")
        for k, spk in enumerate(group):
            first = k * len(pool) // max(1, len(group))
            need = min(len(pool), int(spk.target_s / 1.0) + 20)  # >= 1 s per sentence
            plan[spk.id] = [pool[(first + j) % len(pool)] for j in range(need)]
    return plan
