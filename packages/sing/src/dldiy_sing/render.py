"""The NSynth-like corpus, rendered with FluidSynth from the Debian General MIDI soundfonts.

An instrument is a (soundfont, GM program) pair; its family is the program's GM family (16 of 8
programs). Each note is held 3 s then released for 1 s, rendered at 16 kHz without reverb or
chorus, and mixed to mono; notes that stay silent (keys outside the instrument's samples) are
dropped. The result is written in the NSynth layout (``examples.json`` + ``audio/<note>.wav``,
16-bit PCM) so :mod:`dldiy_sing.nsynth` reads it like the real NSynth.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dldiy_core import UserError, atomic_write_text, data_cache, progress

from .config import DataConfig

log = logging.getLogger(__name__)

SOUNDFONTS = {
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",           # fluid-soundfont-gm, MIT
    "musescore": "/usr/share/sounds/sf3/MuseScore_General_Full.sf3",  # MIT
    "timgm6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",             # timgm6mb-soundfont, GPL-2
}
GM_FAMILIES = ["piano", "chromatic_percussion", "organ", "guitar", "bass", "strings",
               "ensemble", "brass", "reed", "pipe", "synth_lead", "synth_pad", "synth_effects",
               "ethnic", "percussive", "sound_effects"]
SYNTHETIC = {"synth_lead", "synth_pad", "synth_effects"}
ELECTRONIC = {2, 4, 5, 16, 17, 18, 26, 27, 28, 29, 30, 31, 33, 34, 35, 36, 37, 38, 39}
SOURCES = ["acoustic", "electronic", "synthetic"]


def soundfont_path(name: str) -> Path:
    """A short name (fluidr3, musescore, timgm6mb) or a path -> an existing soundfont file."""
    path = Path(SOUNDFONTS.get(name, name))
    if not path.is_file():
        hint = (" (install the Debian soundfont packages: tools/setup)" if name in SOUNDFONTS
                else f"; known names: {', '.join(SOUNDFONTS)}")
        raise UserError(f"{path}: soundfont not found{hint}")
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise UserError(f"{path}: not a soundfont (no RIFF sfbk header)")
    return path


def soundfont_name(name: str) -> str:
    return name if name in SOUNDFONTS else Path(name).stem.lower().replace("-", "_")


def instrument_str(soundfont: str, program: int) -> str:
    """NSynth-style name: ``<gm family>_<soundfont>_<program:03d>``, e.g. guitar_fluidr3_024."""
    return f"{GM_FAMILIES[program // 8]}_{soundfont_name(soundfont)}_{program:03d}"


class Renderer:
    """One FluidSynth synthesizer at 16 kHz, effects off; :meth:`note` renders one note."""

    def __init__(self, cfg: DataConfig):
        try:
            import fluidsynth
        except (ImportError, OSError) as e:
            raise UserError(f"pyfluidsynth: cannot load FluidSynth ({e}); install the Debian "
                            "package libfluidsynth3") from None
        self.cfg = cfg
        self.synth = fluidsynth.Synth(gain=float(cfg.gain), samplerate=float(cfg.sample_rate),
                                      **{"synth.reverb.active": 0, "synth.chorus.active": 0,
                                         "synth.polyphony": 64})
        self.fonts: dict[str, int] = {}

    def load(self, soundfont: str) -> int:
        if soundfont not in self.fonts:
            path = soundfont_path(soundfont)
            sfid = self.synth.sfload(str(path))
            if sfid < 0:
                raise UserError(f"{path}: FluidSynth cannot load this soundfont")
            self.fonts[soundfont] = sfid
        return self.fonts[soundfont]

    def note(self, soundfont: str, program: int, pitch: int, velocity: int) -> np.ndarray:
        """``[hold + release]`` float32 mono samples of one note."""
        c, sr = self.cfg, self.cfg.sample_rate
        sfid = self.load(soundfont)
        if self.synth.program_select(0, sfid, 0, program) != 0:
            raise UserError(f"{soundfont}: no program {program} in bank 0")
        self.synth.noteon(0, pitch, velocity)
        held = self.synth.get_samples(int(round(c.hold_s * sr)))
        self.synth.noteoff(0, pitch)
        released = self.synth.get_samples(int(round(c.release_s * sr)))
        self.synth.all_sounds_off(0)
        self.synth.get_samples(512)  # flush the voice before the next note
        stereo = np.concatenate([held, released]).astype(np.float32).reshape(-1, 2)
        return stereo.mean(axis=1) / 32768.0


def corpus_key(cfg: DataConfig) -> str:
    fields = {k: v for k, v in asdict(cfg).items()
              if k not in ("path", "split_seed", "valid_ratio", "test_ratio")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def corpus_folder(cfg: DataConfig) -> Path:
    """The NSynth-layout folder for ``cfg``: ``data.path`` or the cached rendering."""
    if cfg.path:
        return Path(cfg.path)
    return data_cache("sing") / f"gm-{corpus_key(cfg)}"


def build_corpus(cfg: DataConfig, force: bool = False) -> Path:
    """Render every (soundfont, program, pitch, velocity) of ``cfg`` once; cached.

    The folder is written under a temporary name and renamed when complete, so an interrupted
    build never looks finished.
    """
    folder = corpus_folder(cfg)
    if cfg.path:
        if not (folder / "examples.json").is_file():
            raise UserError(f"{folder}: no examples.json (data.path must be an NSynth folder)")
        return folder
    if (folder / "examples.json").is_file() and not force:
        return folder
    import soundfile

    for sf in cfg.soundfonts:
        soundfont_path(sf)
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "audio").mkdir(parents=True)
    renderer = Renderer(cfg)
    examples: dict[str, dict] = {}
    grid = [(sf, prog, pitch, vel) for sf in cfg.soundfonts for prog in cfg.programs
            for pitch in range(cfg.pitch_min, cfg.pitch_max + 1) for vel in cfg.velocities]
    instruments = {instrument_str(sf, prog): i for i, (sf, prog) in
                   enumerate((sf, p) for sf in cfg.soundfonts for p in cfg.programs)}
    dropped = 0
    for sf, prog, pitch, vel in progress(grid, desc="render", total=len(grid)):
        wav = renderer.note(sf, prog, pitch, vel)
        if np.abs(wav).max() < cfg.min_peak:
            dropped += 1
            continue
        name = instrument_str(sf, prog)
        note = f"{name}-{pitch:03d}-{vel:03d}"
        family = GM_FAMILIES[prog // 8]
        source = 2 if family in SYNTHETIC else int(prog in ELECTRONIC)
        soundfile.write(tmp / "audio" / f"{note}.wav", np.clip(wav, -1, 1), cfg.sample_rate,
                        subtype="PCM_16")
        examples[note] = {
            "note": len(examples), "note_str": note, "instrument": instruments[name],
            "instrument_str": name, "instrument_family": GM_FAMILIES.index(family),
            "instrument_family_str": family, "instrument_source": source,
            "instrument_source_str": SOURCES[source], "pitch": pitch, "velocity": vel,
            "sample_rate": cfg.sample_rate, "qualities": [0] * 10, "qualities_str": [],
            "soundfont": soundfont_name(sf), "program": prog}
    if not examples:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError("data: every rendered note was silent (check data.pitch_min/pitch_max "
                        "and data.min_peak)")
    atomic_write_text(tmp / "examples.json", json.dumps(examples, indent=1) + "\n")
    atomic_write_text(tmp / "meta.json", json.dumps(
        {"config": asdict(cfg), "notes": len(examples), "dropped_silent": dropped}, indent=2))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    log.info("%s: %d notes rendered, %d silent dropped", folder, len(examples), dropped)
    return folder
