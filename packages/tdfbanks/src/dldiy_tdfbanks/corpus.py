"""A phone-aligned multi-voice speech corpus in TIMIT layout, synthesized from Debian text.

Sentences of the World English Bible (:mod:`.text`) are read by festival, espeak-ng and piper
voices (:mod:`.tts`). A *speaker* is one engine + voice + rate/pitch setting; every speaker belongs
to one split, and the espeak voice variants of dev and test never occur in train. Each utterance is
resampled to 16 kHz, its phones mapped to TIMIT's 61 (edges ``h#``, pauses ``pau``) and written
with :func:`.timit.write_utterance`. A build is resumable (an existing ``.WAV`` is kept) and ends
with ``corpus.json``, the summary :func:`build_corpus` returns.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dldiy_core import (
    UserError,
    atomic_write_text,
    bounded,
    check_config,
    check_outputs,
    make_dir,
    os_error,
    progress,
    read_input,
    to_dict,
)

from .audio import MIN_SAMPLES, SAMPLE_RATE
from .markers import BUILD_MARKER
from .segments import check_silence, pad_edges, tidy_segments, to_samples
from .text import BIBLE_RANGE, corpus_sentences
from .timit import SPLITS, write_utterance
from .tts import (
    BadItem,
    Espeak,
    Spoken,
    espeak_to_timit,
    espeak_variants_missing,
    festival_batch,
    festival_setup,
    festival_to_timit,
    piper_synth,
    piper_to_timit,
    require_espeak,
    require_festival,
    require_piper,
)
from .voices import ESPEAK_VARIANTS, Speaker, plan_speakers, sentence_plan

log = logging.getLogger(__name__)

SKIP_REASONS = ("tts_failed", "empty_audio", "unmapped_phone", "segments_beyond_audio",
                "bad_alignment", "too_short", "too_long")


@dataclass
class CorpusConfig:
    """What to synthesize. The amounts are audio after 16 kHz resampling, edge silences
    included; every split gets them to within one sentence per speaker."""

    train_hours: float = bounded(2.2, gt=0)
    dev_minutes: float = bounded(18.0, ge=0)
    test_minutes: float = bounded(18.0, ge=0)
    seed: int = bounded(0, ge=0)
    engines: list[str] = field(default_factory=lambda: ["festival", "espeak"])
    """festival, espeak, piper. piper (the ``[corpus]`` extra) is not a default: its one voice
    is fine-tuned from a voice whose licence is not established (README, Licences)."""
    festival_voices: list[str] = field(default_factory=lambda: ["kal", "ked", "slt"])
    """Short names of :data:`.tts.FESTIVAL_VOICES`."""
    espeak_accents: list[str] = field(default_factory=lambda: [
        "en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
        "en-gb-x-gbcwmd", "en-us-nyc"])
    espeak_variants: list[str] = field(default_factory=lambda: list(ESPEAK_VARIANTS))
    speaker_minutes: float = bounded(2.5, gt=0)
    """Audio per speaker; sets the number of speakers of each split."""
    festival_share: float = bounded(0.4, ge=0, le=1)
    """Fraction of each split's speakers voiced by festival (at least one; espeak gets the
    speakers festival and piper leave)."""
    piper_share: float = bounded(0.2, ge=0, le=1)
    """Fraction of each split's speakers voiced by piper (at least one) when it is an engine."""
    min_words: int = bounded(5, ge=1)
    max_words: int = bounded(20, ge=1)
    max_seconds: float = bounded(8.0, gt=0)
    """Longer utterances are skipped (``too_long``): the trainer leaves them out anyway."""
    bible_range: str = BIBLE_RANGE
    dither: float = bounded(1e-4, ge=0)
    """Std of the Gaussian noise added to every sample (no digital silence: log features)."""
    workers: int = bounded(2, ge=1)
    """>1: one thread per engine (festival synthesizes in its own process, espeak and piper's
    onnxruntime work outside Python's lock, so both cores work); 1: one after the other."""

    def check(self) -> None:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words={self.min_words} is above max_words={self.max_words}")
        if self.festival_share + self.piper_share > 1:
            raise ValueError(f"festival_share + piper_share = "
                             f"{self.festival_share + self.piper_share:g} is above 1")
        if self.max_seconds * SAMPLE_RATE < MIN_SAMPLES:
            raise ValueError(f"max_seconds={self.max_seconds:g} leaves no utterance long enough "
                             f"for one filter ({MIN_SAMPLES} samples)")


# ------------------------------------------------------------------------------ one utterance


@functools.lru_cache(maxsize=64)
def _resampler(src: int, dst: int):
    """torchaudio's resampler with its sinc kernel built once (building it costs more than
    applying it to a sentence)."""
    import torchaudio

    return torchaudio.transforms.Resample(src, dst)


def finish(spoken: Spoken, spk: Speaker, cfg: CorpusConfig, rng: np.random.Generator,
           ) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Engine output -> (16 kHz float32 samples ``[T]``, TIMIT61 sample intervals)."""
    import torch

    x = spoken.audio
    if len(x) == 0 or not np.isfinite(x).all() or float(np.abs(x).max()) < 1e-4:
        raise BadItem("empty_audio", f"{len(x)} samples, silent or not finite")
    if spk.engine == "festival":
        mapped = festival_to_timit(spoken.phones)
    elif spk.engine == "piper":
        mapped = piper_to_timit(spoken.phones)
    else:
        mapped = espeak_to_timit(spoken.phones, spk.accent)
    segs = tidy_segments(mapped, len(x) / spoken.rate)
    # warp: read the samples as if recorded at rate * warp (pitch and formants * warp)
    src = round(spoken.rate * spk.warp)
    if src != SAMPLE_RATE:
        with torch.no_grad():
            x = _resampler(src, SAMPLE_RATE)(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    segs = [(s / spk.warp, e / spk.warp, p) for s, e, p in segs]
    segs[-1] = (segs[-1][0], len(x) / SAMPLE_RATE, segs[-1][2])
    x, segs = pad_edges(x, segs, rng.uniform(0.1, 0.25), rng.uniform(0.1, 0.25), SAMPLE_RATE)
    x = x * (spk.gain / float(np.abs(x).max())) + rng.normal(0.0, cfg.dither, len(x))
    x = np.clip(x, -1.0, 1.0).astype(np.float32)
    if len(x) < MIN_SAMPLES:
        raise BadItem("too_short", f"{len(x)} samples < {MIN_SAMPLES}")
    if len(x) > cfg.max_seconds * SAMPLE_RATE:
        raise BadItem("too_long", f"{len(x) / SAMPLE_RATE:.2f} s > {cfg.max_seconds} s")
    phones = to_samples(segs, len(x))
    check_silence(x, phones)
    return x, phones


# ------------------------------------------------------------------------------ one speaker


@dataclass
class SpeakerResult:
    speaker: Speaker
    utterances: int = 0
    seconds: float = 0.0
    written: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    """``(utterance path, reason, detail)``."""


def _synthesize(spk: Speaker, chunk: list[tuple[int, str]]) -> dict[int, Spoken | BadItem]:
    if spk.engine == "festival":
        setup = festival_setup(spk.voice, spk.rate, spk.pitch or None)
        return festival_batch(chunk, setup)
    out: dict[int, Spoken | BadItem] = {}
    for idx, text in chunk:
        try:
            if spk.engine == "piper":
                out[idx] = piper_synth(text, spk.rate, spk.pitch, spk.pitch_range)
            else:
                out[idx] = Espeak.get().synth(text, spk.voice, int(spk.rate), int(spk.pitch),
                                              int(spk.pitch_range))
        except BadItem as e:
            out[idx] = e
    return out


def run_speaker(out: Path, spk: Speaker, items: list[tuple[int, str]], cfg: CorpusConfig,
                ) -> SpeakerResult:
    """Read ``items`` (sentence index, text) in order until ``spk.target_s`` of audio exist;
    utterances already on disk count and are kept (resume)."""
    import soundfile as sf

    folder = out / spk.split.upper() / spk.dialect / spk.id
    res = SpeakerResult(spk)
    pending = list(items)
    chunk_max = 16 if spk.engine == "festival" else 1  # one festival start per batch
    while pending and res.seconds < spk.target_s:
        wav = folder / f"SI{pending[0][0]}.WAV"
        if wav.exists():
            if spk.engine == "espeak":
                # said again, unused: espeak's output depends slightly on everything it said
                # before in this process, so a resumed build replays to match a fresh one
                _synthesize(spk, pending[:1])
            try:
                res.seconds += sf.info(wav).frames / SAMPLE_RATE
            except (sf.LibsndfileError, RuntimeError) as e:
                raise UserError(f"{wav}: unreadable audio of an earlier build ({e}); delete it "
                                "to synthesize it again") from None
            res.utterances += 1
            pending.pop(0)
            continue
        want = min(chunk_max, 2 + math.ceil((spk.target_s - res.seconds) / 3.0))
        chunk: list[tuple[int, str]] = []
        for idx, text in pending:
            if len(chunk) == want or (folder / f"SI{idx}.WAV").exists():
                break
            chunk.append((idx, text))
        spoken = _synthesize(spk, chunk)
        for idx, text in chunk:
            if res.seconds >= spk.target_s:
                break  # the rest of the chunk is not needed (same choice on a resume)
            pending.pop(0)
            name = f"{spk.split.upper()}/{spk.dialect}/{spk.id}/SI{idx}"
            seed = [cfg.seed, zlib.crc32(spk.id.encode()), idx]
            try:
                result = spoken[idx]
                if isinstance(result, BadItem):
                    raise result
                audio, phones = finish(result, spk, cfg, np.random.default_rng(seed))
            except BadItem as e:
                res.skipped.append((name, e.reason, e.detail))
                continue
            write_utterance(out, spk.split, spk.dialect, spk.id, f"SI{idx}", audio, phones, text)
            res.seconds += len(audio) / SAMPLE_RATE
            res.utterances += 1
            res.written += 1
    return res


# ------------------------------------------------------------------------------ the corpus


def check_engines(cfg: CorpusConfig) -> None:
    """:class:`UserError` for an unknown or missing engine, voice, accent or variant."""
    unknown = [e for e in cfg.engines if e not in ("festival", "espeak", "piper")]
    if unknown or not cfg.engines:
        raise UserError(f"engines {cfg.engines}: choose from festival, espeak, piper")
    if "festival" in cfg.engines:
        require_festival(cfg.festival_voices)
    if "espeak" in cfg.engines:
        missing = espeak_variants_missing(require_espeak(cfg.espeak_accents), cfg.espeak_variants)
        if missing:
            raise UserError(f"espeak-ng has no voice variant(s) {missing}")
    if "piper" in cfg.engines:
        require_piper()


def load_sentences(out: Path, cfg: CorpusConfig) -> list[str]:
    """The sentences, kept in ``<out>/sentences.txt`` so a resumed build reads the same ones."""
    key = f"# {cfg.bible_range} | {cfg.min_words}-{cfg.max_words} words"
    cache = out / "sentences.txt"
    if cache.is_file():
        try:
            lines = read_input(cache, "sentence list", register=False).decode("utf-8").splitlines()
        except UnicodeDecodeError:
            lines = []  # damaged: written again below
        if lines and lines[0] == key:
            return lines[1:]
    sentences = corpus_sentences(cfg.bible_range, cfg.min_words, cfg.max_words)
    atomic_write_text(cache, "\n".join([key, *sentences]) + "\n")
    return sentences


BUILD_FILES = (BUILD_MARKER, "sentences.txt", "corpus.json")
"""The files of a build beside its split folders (``build-config.json`` first: the marker)."""


def _read_build_config(path: Path) -> dict:
    try:
        data = json.loads(read_input(path, "build config", register=False).decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: corrupt build config ({e}); --force starts the corpus "
                        "over") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: corrupt build config (not a JSON object); --force starts the "
                        "corpus over")
    return data


def _same_build(out: Path, cfg: CorpusConfig) -> None:
    """Refuse to resume a folder built with another config (mixed plans)."""
    mine = {k: v for k, v in to_dict(cfg).items() if k != "workers"}
    path = out / BUILD_MARKER
    if path.is_file():
        theirs = {k: v for k, v in _read_build_config(path).items() if k != "workers"}
        if theirs != mine:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise UserError(f"{out}: built with another config (differs in {diff}); "
                            "choose an empty folder")
    else:
        atomic_write_text(path, json.dumps(mine, indent=2) + "\n")


def prepare_build(out: Path, cfg: CorpusConfig, resume: bool = False,
                  force: bool = False) -> None:
    """Check a ``data build`` folder before any synthesis: settings in range; the folder new,
    empty, or a build of this package (continued with ``resume`` if built with the same
    settings, deleted and started over with ``force``); anything else is refused."""
    check_config(cfg)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a corpus folder")
    check_outputs([out], force=force, resume=resume)  # inputs, runs, builds (the marker)
    marker = out / BUILD_FILES[0]
    if resume and not marker.is_file():
        raise UserError(f"{out}: no corpus build to resume there (no {marker.name})")
    try:
        others = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    except OSError as e:
        raise os_error(e, out, "read folder") from None
    if marker.is_file():
        if resume:
            _same_build(out, cfg)
            return
        # force: the old build goes (only its own files and split folders), once the engines
        # are known to be there to build the new one
        import shutil

        check_engines(cfg)

        try:
            for name in others:
                p = out / name
                if p.is_dir() and name.lower() in SPLITS:
                    shutil.rmtree(p)
                elif p.is_file() and (name in BUILD_FILES[1:] or ".tmp-" in name):
                    p.unlink()
            marker.unlink()
        except OSError as e:
            raise os_error(e, None, "delete the previous build") from None
        log.info("%s: the previous build was deleted (--force)", out)
        return
    if others:
        raise UserError(f"{out}: not empty and not a corpus build ({', '.join(others[:3])}"
                        f"{'...' if len(others) > 3 else ''}); choose a new or empty folder")
    check_engines(cfg)  # a missing engine (the corpus extra) is said before the folder exists
    make_dir(out)


def summarize(results: list[SpeakerResult], cfg: CorpusConfig, n_sentences: int,
              seconds: float) -> dict:
    """``corpus.json``: per split hours, utterances, speakers and skips by reason."""
    splits = {}
    for split in SPLITS:
        group = [r for r in results if r.speaker.split == split]
        engines = {e: {"hours": round(sum(r.seconds for r in group if r.speaker.engine == e)
                                      / 3600, 4),
                       "speakers": sum(r.speaker.engine == e for r in group)}
                   for e in cfg.engines}
        splits[split] = {
            "hours": round(sum(r.seconds for r in group) / 3600, 4),
            "utterances": sum(r.utterances for r in group), "speakers": len(group),
            "engines": engines,
            "skipped": dict(Counter(reason for r in group for _, reason, _ in r.skipped))}
    skipped = Counter(reason for r in results for _, reason, _ in r.skipped)
    speakers = [{**asdict(r.speaker), "utterances": r.utterances,
                 "seconds": round(r.seconds, 2), "skipped": len(r.skipped)}
                for r in sorted(results, key=lambda r: (SPLITS.index(r.speaker.split),
                                                        r.speaker.id))]
    skipped_all = {**{r: 0 for r in SKIP_REASONS}, **skipped}
    return {"splits": splits, "skipped": skipped_all, "skipped_total": sum(skipped.values()),
            "engines": list(cfg.engines), "sentences_available": n_sentences,
            "written": sum(r.written for r in results),
            "build_seconds": round(seconds, 1), "config": to_dict(cfg), "speakers": speakers}


def build_corpus(out: Path, cfg: CorpusConfig | None = None) -> dict:
    """Synthesize the corpus into ``out`` (TIMIT layout), resuming a partial build; returns
    the summary also written to ``<out>/corpus.json``."""
    cfg = cfg or CorpusConfig()
    out = Path(out)
    t0 = time.time()
    check_engines(cfg)
    make_dir(out)
    _same_build(out, cfg)
    stale = list(out.rglob(".*.tmp-*"))  # a killed build's half-written file (never read)
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("%s: removed %d half-written files of an interrupted build", out, len(stale))
    sentences = load_sentences(out, cfg)
    speakers = plan_speakers(cfg)
    plan = sentence_plan(speakers, len(sentences), cfg.seed)
    jobs = [(out, s, [(i, sentences[i]) for i in plan[s.id]], cfg) for s in speakers]
    log.info("%s: %d speakers (%s), %d sentences available", out, len(speakers),
             ", ".join(f"{sp} {sum(s.split == sp for s in speakers)}" for sp in SPLITS),
             len(sentences))
    results: list[SpeakerResult] = []
    bar = progress(total=len(jobs), desc="speakers", unit="spk")

    def done(res: SpeakerResult) -> None:
        spk = res.speaker
        for name, reason, detail in res.skipped:
            log.warning("skipped %s (%s %s): %s: %s", name, spk.engine, spk.voice, reason, detail)
        log.info("%s %s (%s %s): %d utterances, %.1f min, %d new, %d skipped", spk.split,
                 spk.id, spk.engine, spk.voice, res.utterances, res.seconds / 60, res.written,
                 len(res.skipped))
        results.append(res)
        bar.update(1)
        bar.set_postfix(hours=f"{sum(r.seconds for r in results) / 3600:.2f}")

    try:
        if cfg.workers > 1:
            # one lane per engine: festival speakers (synthesis in festival's own process),
            # espeak speakers (in this process; the library is not reentrant, so one thread
            # only) and piper speakers (onnxruntime, one thread)
            lanes = {e: ThreadPoolExecutor(1, thread_name_prefix=e) for e in cfg.engines}
            try:
                futures = [lanes[job[1].engine].submit(run_speaker, *job) for job in jobs]
                for fut in as_completed(futures):
                    done(fut.result())
            finally:
                for lane in lanes.values():
                    lane.shutdown(cancel_futures=True)
        else:
            for job in jobs:
                done(run_speaker(*job))
    finally:
        bar.close()
    summary = summarize(results, cfg, len(sentences), time.time() - t0)
    for split, s in summary["splits"].items():
        log.info("%s: %.3f h, %d utterances, %d speakers, skipped %s", split, s["hours"],
                 s["utterances"], s["speakers"], s["skipped"] or "none")
    atomic_write_text(out / "corpus.json", json.dumps(summary, indent=2) + "\n")
    return summary
