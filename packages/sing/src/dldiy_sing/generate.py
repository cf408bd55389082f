"""``dldiy-sing generate``: notes of a trained run as 16 kHz mono 16-bit WAV files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from dldiy_core import UserError, prepare_out_file, write_wav

from .evaluate import Run, load_run
from .nsynth import SAMPLE_RATE


def check_note(run: Run, instrument: str | None, pitch: int | None, velocity: int | None,
               where: str = "") -> tuple[int, int, int]:
    """(instrument, pitch, velocity) indices of a requested note; one clear error otherwise."""
    at = f"{where}: " if where else ""
    d = run.cfg.data
    if instrument is None or pitch is None or velocity is None:
        raise UserError(f"{at}give --instrument, --pitch and --velocity (or --list FILE)")
    if instrument not in run.instruments:
        raise UserError(f"{at}unknown instrument '{instrument}' (this model knows: "
                        f"{', '.join(run.instruments)})")
    if not d.pitch_min <= pitch <= d.pitch_max:
        raise UserError(f"{at}pitch {pitch} out of range (the model was trained on "
                        f"{d.pitch_min}..{d.pitch_max})")
    if velocity not in run.velocities:
        raise UserError(f"{at}velocity {velocity} not among the trained velocities "
                        f"{run.velocities}")
    return run.instruments.index(instrument), pitch, run.velocities.index(velocity)


def synthesize(run: Run, notes: list[tuple[int, int, int]], batch_size: int = 32,
               precision: str = "fp32") -> np.ndarray:
    """``[n, 64000]`` float32 waveforms of (instrument, pitch, velocity) index triples."""
    out = []
    dtype = torch.bfloat16 if precision == "bf16" else None
    with torch.no_grad():
        for i in range(0, len(notes), batch_size):
            t = torch.tensor(notes[i:i + batch_size], dtype=torch.long)
            if dtype is None:
                wav = run.sing(t[:, 0], t[:, 1], t[:, 2])
            else:
                with torch.autocast("cpu", dtype=dtype):
                    wav = run.sing(t[:, 0], t[:, 1], t[:, 2])
            out.append(wav.float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 64000), np.float32)


def read_list(path: Path) -> list[tuple[str, int, int, str]]:
    """Lines ``instrument pitch velocity`` (``#`` comments) -> (instrument, pitch, velocity,
    where)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: note list not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the note list ({e})") from None
    rows = []
    for k, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or not re.fullmatch(r"-?\d+", parts[1]) \
                or not re.fullmatch(r"-?\d+", parts[2]):
            raise UserError(f"{path}:{k}: expected 'instrument pitch velocity', got {line!r}")
        rows.append((parts[0], int(parts[1]), int(parts[2]), f"{path}:{k}"))
    if not rows:
        raise UserError(f"{path}: no notes listed")
    return rows


def _refuse(path: Path, run: Path, force: bool) -> None:
    if path.resolve().is_relative_to(run.resolve()):
        raise UserError(f"{path}: inside the run folder {run} (write generated notes elsewhere)")
    if path.exists() and not force:
        raise UserError(f"{path}: already exists (pass --force to replace it)")


def generate_cli(args) -> list[Path]:
    run = load_run(args.run)
    out = Path(args.out)
    if args.list:
        rows = read_list(Path(args.list))
        notes = [check_note(run, i, p, v, where) for i, p, v, where in rows]
        paths = [out / f"{i}-{p:03d}-{v:03d}.wav" for i, p, v, _ in rows]
        if out.exists() and not out.is_dir():
            raise UserError(f"{out}: not a folder (with --list, -o names a folder)")
    else:
        notes = [check_note(run, args.instrument, args.pitch, args.velocity)]
        if out.suffix.lower() != ".wav":
            raise UserError(f"{out}: the output of one note is a .wav file")
        paths = [out]
    for p in paths:
        _refuse(p, Path(args.run), args.force)
        prepare_out_file(p, inputs=[args.run, args.list], force=args.force)
    wavs = synthesize(run, notes)
    for p, w in zip(paths, wavs, strict=True):
        write_wav(p, w, SAMPLE_RATE)
    return paths
