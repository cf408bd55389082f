"""Audio files: RIFF/FLAC/OGG through soundfile, NIST SPHERE (TIMIT's .WAV) read here.

Every problem is a :class:`UserError` naming the file: wrong sample rate (unless ``resample``),
more than one channel, empty or corrupt data, a clip shorter than one filter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dldiy_core import UserError, atomic_path

SAMPLE_RATE = 16_000
MIN_SAMPLES = 401
"""One TD-filterbank filter (25 ms at 16 kHz): shorter clips are refused as too short to hold
one full analysis window."""


def _sphere_header(raw: bytes, path: Path) -> tuple[dict[str, str], int]:
    if not raw.startswith(b"NIST_1A"):
        raise UserError(f"{path}: not a NIST SPHERE file")
    try:
        size = int(raw[8:16])
        fields = {}
        for line in raw[16:size].decode("ascii").splitlines():
            parts = line.split(None, 2)
            if parts and parts[0] == "end_head":
                break
            if len(parts) == 3:
                fields[parts[0]] = parts[2]
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{path}: corrupt NIST SPHERE header") from None
    return fields, size


def read_sphere(path: Path) -> tuple[np.ndarray, int]:
    """16-bit PCM NIST SPHERE -> (samples ``[T, C]`` float32 in [-1, 1], sample rate)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    h, size = _sphere_header(raw, path)
    coding = h.get("sample_coding", "pcm")
    if coding != "pcm":
        raise UserError(f"{path}: NIST SPHERE sample_coding {coding!r} is not supported "
                        "(decompress shorten files first, e.g. with sph2pipe)")
    if h.get("sample_n_bytes", "2") != "2":
        raise UserError(f"{path}: only 16-bit NIST SPHERE files are supported")
    try:
        rate, channels = int(h["sample_rate"]), int(h.get("channel_count", "1"))
    except (KeyError, ValueError):
        raise UserError(f"{path}: NIST SPHERE header lacks a valid sample_rate") from None
    if channels < 1 or rate < 1:
        raise UserError(f"{path}: NIST SPHERE header has {channels} channels at {rate} Hz")
    order = ">" if h.get("sample_byte_format", "01") == "10" else "<"
    body = raw[size:]
    n = len(body) // (2 * channels)
    x = np.frombuffer(body[: n * 2 * channels], dtype=f"{order}i2").reshape(n, channels)
    return x.astype(np.float32) / 32768.0, rate


def write_sphere(path: Path, x: np.ndarray, rate: int) -> None:
    """Mono float samples -> 16-bit little-endian NIST SPHERE (TIMIT's layout), atomically."""
    pcm = np.clip(np.round(np.asarray(x) * 32767), -32768, 32767).astype("<i2")
    fields = (f"sample_count -i {len(pcm)}\nsample_rate -i {rate}\nchannel_count -i 1\n"
              "sample_byte_format -s2 01\nsample_n_bytes -i 2\nsample_coding -s3 pcm\n"
              "end_head\n")
    header = f"NIST_1A\n   1024\n{fields}".encode("ascii").ljust(1024, b" ")
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + pcm.tobytes())


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, resample: bool = False,
               min_samples: int = MIN_SAMPLES) -> np.ndarray:
    """A mono audio file -> float32 samples ``[T]`` at ``sample_rate``."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such audio file")
    try:
        with path.open("rb") as f:
            magic = f.read(7)
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if magic == b"NIST_1A":
        x, rate = read_sphere(path)
    else:
        try:
            x, rate = sf.read(path, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError) as e:
            raise UserError(f"{path}: unreadable or corrupt audio ({e})") from None
    if x.shape[1] != 1:
        raise UserError(f"{path}: {x.shape[1]} channels; expected mono audio")
    x = x[:, 0]
    if len(x) == 0:
        raise UserError(f"{path}: empty audio")
    if not np.isfinite(x).all():
        raise UserError(f"{path}: audio contains NaN or infinite samples")
    if rate != sample_rate:
        if not resample:
            raise UserError(f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz "
                            "(pass --resample to convert)")
        import torch
        import torchaudio.functional as AF

        x = AF.resample(torch.from_numpy(np.ascontiguousarray(x)), rate, sample_rate).numpy()
    if len(x) < min_samples:
        raise UserError(f"{path}: {len(x)} samples is shorter than one filter "
                        f"({min_samples} samples)")
    return np.ascontiguousarray(x, dtype=np.float32)


def save_wav(path: str | Path, x: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Mono float samples -> 16-bit RIFF WAV, atomically."""
    import soundfile as sf

    with atomic_path(Path(path)) as tmp:
        sf.write(tmp, np.asarray(x, dtype=np.float32), rate, subtype="PCM_16", format="WAV")
