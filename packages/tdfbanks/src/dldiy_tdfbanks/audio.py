"""Audio files: RIFF/FLAC/OGG through soundfile, NIST SPHERE (TIMIT's .WAV) read here.

Every problem is a :class:`UserError` naming the file: missing or unreadable, wrong sample rate
(unless ``resample``), more than one channel, empty, truncated (fewer samples than the header
announces) or corrupt data, NaN/infinite samples or samples far beyond full scale, a clip shorter
than one filter.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from dldiy_core import UserError, atomic_path, check_input, os_error, read_input

SAMPLE_RATE = 16_000
MIN_SAMPLES = 401
"""One TD-filterbank filter (25 ms at 16 kHz): shorter clips are refused as too short to hold
one full analysis window."""
BLOCK = 1 << 16
"""Samples read at a time."""
MAX_AMPLITUDE = 1e4
"""Largest sample magnitude accepted. Audio is read at full scale +-1; a file beyond this is
not audio at that scale (its squared filter outputs would overflow float32 into NaN features)."""


def _sphere_header(raw: bytes, path: Path) -> tuple[dict[str, str], int]:
    if not raw.startswith(b"NIST_1A"):
        raise UserError(f"{path}: not a NIST SPHERE file")
    try:
        size = int(raw[8:16])
        if not 16 < size <= len(raw):
            raise ValueError
        fields = {}
        for line in raw[16:size].decode("ascii").splitlines():
            parts = line.split(None, 2)
            if parts and parts[0] == "end_head":
                break
            if len(parts) == 3:
                fields[parts[0]] = parts[2].strip()
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{path}: corrupt NIST SPHERE header") from None
    return fields, size


def read_sphere(path: Path) -> tuple[np.ndarray, int]:
    """16-bit PCM NIST SPHERE -> (samples ``[T, C]`` float32 in [-1, 1], sample rate).

    A body shorter than the header's ``sample_count`` is refused as truncated."""
    raw = read_input(path, "audio file")
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
    if "sample_count" in h:
        try:
            count = int(h["sample_count"])
        except ValueError:
            raise UserError(f"{path}: NIST SPHERE header has a bad sample_count "
                            f"{h['sample_count']!r}") from None
        if count < 0:
            raise UserError(f"{path}: NIST SPHERE header has a bad sample_count {count}")
        if count > n:
            raise UserError(f"{path}: truncated: the header announces {count} samples, the file "
                            f"holds {n}")
        n = count
    elif len(body) % (2 * channels):
        raise UserError(f"{path}: truncated: the data ends inside a sample")
    x = np.frombuffer(body[: n * 2 * channels], dtype=f"{order}i2").reshape(n, channels)
    return x.astype(np.float32) / 32768.0, rate


def _check_riff(path: Path, head: bytes, size: int) -> None:
    """A RIFF WAV whose ``data`` chunk announces more bytes than the file holds is truncated
    (libsndfile would quietly return the samples that are there)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= len(head):
        cid, length = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if cid == b"data":
            if length in (0, 0xFFFFFFFF):  # streamed: length unknown
                return
            have = size - (pos + 8)
            if length > have:
                raise UserError(f"{path}: truncated: the WAV header announces {length} bytes of "
                                f"samples, the file holds {max(have, 0)}")
            return
        pos += 8 + length + (length & 1)


def read_audio(path: str | Path, *, register: bool = True) -> tuple[np.ndarray, int]:
    """Any supported audio file -> (samples ``[T, C]`` float32, sample rate), checked:
    readable, not truncated, finite and within :data:`MAX_AMPLITUDE`."""
    import soundfile as sf

    path = check_input(path, "audio file", register=register)
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            size = f.seek(0, 2)
    except OSError as e:
        raise os_error(e, path, "read audio file") from None
    if head.startswith(b"NIST_1A"):
        x, rate = read_sphere(path)
    else:
        _check_riff(path, head, size)
        try:
            with sf.SoundFile(path) as snd:
                rate, announced, channels = snd.samplerate, snd.frames, snd.channels
                # in blocks: a damaged header announcing billions of samples allocates nothing
                blocks = list(snd.blocks(BLOCK, dtype="float32", always_2d=True))
            x = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
            why = " ".join(str(e).split()).replace(f"'{path}'", "the file")
            raise UserError(f"{path}: unreadable or corrupt audio ({why})") from None
        except OSError as e:
            raise os_error(e, path, "read audio file") from None
        if len(x) < announced:
            raise UserError(f"{path}: truncated: {len(x)} of the {announced} samples its header "
                            "announces")
    if x.size == 0:
        raise UserError(f"{path}: no audio samples (an empty or truncated file)")
    if not np.isfinite(x).all():
        raise UserError(f"{path}: audio contains NaN or infinite samples")
    peak = float(np.abs(x).max())
    if peak > MAX_AMPLITUDE:
        raise UserError(f"{path}: samples reach {peak:.3g}; audio is read at full scale +-1 and "
                        f"at most +-{MAX_AMPLITUDE:g} is accepted")
    return x, rate


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, resample: bool = False,
               min_samples: int = MIN_SAMPLES) -> np.ndarray:
    """A mono audio file -> float32 samples ``[T]`` at ``sample_rate`` (checks:
    :func:`read_audio`, one channel, the rate unless ``resample``, at least ``min_samples``)."""
    return to_mono_rate(path, *read_audio(path), sample_rate, resample, min_samples)


def to_mono_rate(path: str | Path, x: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE,
                 resample: bool = False, min_samples: int = MIN_SAMPLES) -> np.ndarray:
    """Samples ``[T, C]`` read from ``path`` at ``rate`` -> mono ``[T']`` at ``sample_rate``."""
    if x.shape[1] != 1:
        raise UserError(f"{path}: {x.shape[1]} channels; expected mono audio")
    x = x[:, 0]
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


def write_sphere(path: Path, x: np.ndarray, rate: int) -> None:
    """Mono float samples -> 16-bit little-endian NIST SPHERE (TIMIT's layout), atomically."""
    pcm = np.clip(np.round(np.asarray(x) * 32767), -32768, 32767).astype("<i2")
    fields = (f"sample_count -i {len(pcm)}\nsample_rate -i {rate}\nchannel_count -i 1\n"
              "sample_byte_format -s2 01\nsample_n_bytes -i 2\nsample_coding -s3 pcm\n"
              "end_head\n")
    header = f"NIST_1A\n   1024\n{fields}".encode("ascii").ljust(1024, b" ")
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + pcm.tobytes())


def save_wav(path: str | Path, x: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Mono float samples -> 16-bit RIFF WAV, atomically."""
    import soundfile as sf

    with atomic_path(Path(path)) as tmp:
        sf.write(tmp, np.asarray(x, dtype=np.float32), rate, subtype="PCM_16", format="WAV")
