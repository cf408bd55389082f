"""The band path against the direct 401-tap convolution at the default input gain (16-bit
units, where ``log(1 + x)`` is a log and a filter's response 100 dB down still shows)."""

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from dldiy_tdfbanks.filterbank import TDFilterbank
from dldiy_tdfbanks.frontend import GAIN

DATA = Path(__file__).parent / "data"
LIMIT = 0.05
"""Largest deviation allowed, in standard deviations of a channel (normalised features)."""


def real_speech() -> list[torch.Tensor]:
    """Two real recordings (tests/data/README.md), in [-1, 1] like every loaded waveform."""
    out = []
    for name in ("cards-005.flac", "librivox-0880.flac"):
        x, rate = sf.read(DATA / name, dtype="float32")
        assert rate == 16_000
        out.append(torch.from_numpy(x))
    return out


def low_tones_over_a_quiet_floor(seconds: float = 3.0) -> torch.Tensor:
    """A voice-like low pair (120 and 240 Hz, amplitude-modulated) over noise 74 dB down: the
    upper channels hold only the floor, the tones reach them through the filters' tails."""
    t = np.arange(int(seconds * 16_000)) / 16_000
    x = (0.5 * np.sin(2 * np.pi * 120 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
         + 0.3 * np.sin(2 * np.pi * 240 * t))
    x = x + 1e-4 * np.random.default_rng(0).standard_normal(len(t))
    return torch.tensor(x, dtype=torch.float32)


def max_deviation(x: torch.Tensor) -> torch.Tensor:
    """Largest |band - direct| per channel over every frame ``[40]``, normalised features."""
    band, direct = TDFilterbank(), TDFilterbank(impl="direct")
    assert band.impl == "band" and band.gain == GAIN == 32768
    with torch.no_grad():
        return (band(x[None])[0] - direct(x[None])[0]).abs()[0].amax(-1)


def test_band_path_matches_the_direct_convolution_on_real_speech():
    for x in real_speech():
        dev = max_deviation(x)
        assert float(dev.max()) < LIMIT, dev


def test_band_path_matches_the_direct_convolution_on_low_tones_over_a_quiet_floor():
    dev = max_deviation(low_tones_over_a_quiet_floor())
    assert float(dev.max()) < LIMIT, dev


def test_a_dc_offset_is_seen_as_the_direct_convolution_sees_it():
    x = real_speech()[1] + 0.02
    dev = max_deviation(x)
    assert float(dev.max()) < LIMIT, dev


def test_frames_computed_again_equal_the_direct_convolution():
    """``exact_at`` (what the band path computes again where its check flags a frame) on
    frames of every channel of real speech: the direct convolution's energies."""
    x = torch.stack([s[:40_000] for s in real_speech()])
    direct = TDFilterbank(impl="direct", normalize=False)
    plan = TDFilterbank().subband_plan()
    with torch.no_grad():
        reference = direct(x)[0]  # log(1 + energies) [2, 40, 251]
        g = torch.Generator().manual_seed(0)
        item = torch.randint(0, 2, (200,), generator=g)
        channel = torch.randint(0, 40, (200,), generator=g)
        frame = torch.randint(2, 248, (200,), generator=g)
        exact = torch.log1p(plan.exact_at(x * GAIN, item, channel, frame))
    torch.testing.assert_close(exact, reference[item, channel, frame], rtol=1e-4, atol=1e-4)
