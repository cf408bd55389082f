"""``dldiy-tdfbanks bench``: front-end throughput (seconds of audio per second), all measured on
the same batch in one run, alternating, median of repeats."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .filterbank import TDFilterbank
from .frontend import MFSC
from .models import make_frontend


def _median_time(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up (plans, allocations)
    for _ in range(repeats):
        for k, fn in fns.items():  # alternate, so a noisy neighbour hits every path alike
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


REAL_SPEECH = Path("/usr/share/pocketsphinx/test/data")
"""Debian's pocketsphinx-testdata: 10 real recordings (58 s)."""


def speech_batch(batch: int, seconds: float) -> torch.Tensor | None:
    """``[batch, T]`` consecutive pieces of the real recordings, end to end (None when the
    Debian package is not installed)."""
    from .audio import load_audio

    files = sorted(REAL_SPEECH.glob("*/*.wav")) if REAL_SPEECH.is_dir() else []
    if not files:
        return None
    audio = np.concatenate([load_audio(f, resample=True) for f in files])
    n = int(seconds * 16_000)
    audio = np.tile(audio, -(-batch * n // len(audio)))
    return torch.from_numpy(audio[:batch * n].copy()).view(batch, n)


def low_tones(seconds: float = 3.0) -> torch.Tensor:
    """120 and 240 Hz (amplitude-modulated) over noise 74 dB down: the case where the band
    path's dropped response shows (as in tests/test_band_exact.py)."""
    t = np.arange(int(seconds * 16_000)) / 16_000
    x = (0.5 * np.sin(2 * np.pi * 120 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
         + 0.3 * np.sin(2 * np.pi * 240 * t))
    x = x + 1e-4 * np.random.default_rng(0).standard_normal(len(t))
    return torch.tensor(x, dtype=torch.float32)[None]


def run_bench(batch: int = 8, seconds: float = 4.0, repeats: int = 5, seed: int = 0) -> dict:
    """Forward (and forward+backward) throughput of every front end on one ``[batch, T]``
    batch of white noise, and of the fixed TD-filterbank and MFSC on real speech (where the
    band path computes some channels again); the band path's largest deviation from the direct
    convolution (normalised features, standard deviations) on noise, real speech and low tones
    over a quiet floor. All at the default input gain (:data:`.frontend.GAIN`). The machine's
    load average at the start and the end, where the OS gives one."""
    load_start = _load_average()
    torch.manual_seed(seed)
    x = torch.randn(batch, int(seconds * 16_000)) * 0.1
    audio_s = batch * seconds
    fixed, fixed_fft = TDFilterbank(), TDFilterbank(impl="fft")  # fixed: the band path
    fixed_direct = TDFilterbank(impl="direct")
    learn = TDFilterbank(mode="learn-all")
    mfsc, leaf, sinc = MFSC(), make_frontend("leaf"), make_frontend("sincnet")

    def fwdbwd(fe):
        def run():
            fe.zero_grad()
            fe(x)[0].pow(2).mean().backward()
        return run

    with torch.no_grad():
        fwd = _median_time({"tdfb": lambda: fixed(x), "tdfb_fft": lambda: fixed_fft(x),
                            "mfsc": lambda: mfsc(x),
                            "tdfb_direct": lambda: fixed_direct(x), "leaf": lambda: leaf(x),
                            "sincnet": lambda: sinc(x)}, repeats)
    bwd = _median_time({"tdfb": fwdbwd(learn), "leaf": fwdbwd(leaf)}, repeats)
    out = {f"{k}_fwd_audio_s_per_s": audio_s / t for k, t in fwd.items()}
    out.update({f"{k}_fwdbwd_audio_s_per_s": audio_s / t for k, t in bwd.items()})
    out["tdfb_slowdown_vs_mfsc"] = fwd["tdfb"] / fwd["mfsc"]
    out["tdfb_speedup_vs_direct"] = fwd["tdfb_direct"] / fwd["tdfb"]
    out["tdfb_speedup_vs_fft"] = fwd["tdfb_fft"] / fwd["tdfb"]
    speech = speech_batch(batch, seconds)
    if speech is not None:
        with torch.no_grad():
            on_speech = _median_time({"tdfb": lambda: fixed(speech), "mfsc": lambda: mfsc(speech)},
                                     repeats)
        out["tdfb_speech_fwd_audio_s_per_s"] = audio_s / on_speech["tdfb"]
        out["mfsc_speech_fwd_audio_s_per_s"] = audio_s / on_speech["mfsc"]
        out["tdfb_speech_slowdown_vs_mfsc"] = on_speech["tdfb"] / on_speech["mfsc"]
        fixed(speech)  # the share of item channels, and of frames, the band path computed again
        plan = fixed.subband_plan()
        out["tdfb_speech_share_recomputed"] = plan.last_flagged / (batch * fixed.n_channels)
        out["tdfb_speech_share_frames_recomputed"] = plan.last_flagged_frames / (
            batch * fixed.n_channels * (speech.shape[1] // fixed.stride + 1))
    # what the speed costs: normalised features, band vs direct, in standard deviations
    devs = {"noise": x, "low_tones": low_tones(), **({"speech": speech} if speech is not None
                                                     else {})}
    with torch.no_grad():
        for name, batch_x in devs.items():
            out[f"tdfb_band_max_dev_std_{name}"] = float(
                (fixed(batch_x)[0] - fixed_direct(batch_x)[0]).abs().max())
    out["tdfb_band_max_dev_std"] = max(out[f"tdfb_band_max_dev_std_{k}"] for k in devs)
    out["tdfb_band_max_abs_dev"] = out["tdfb_band_max_dev_std_noise"]  # the earlier key
    out.update(batch=batch, seconds_per_item=seconds, repeats=repeats,
               threads=torch.get_num_threads(), input_gain=fixed.gain,
               deviation_inputs=sorted(devs))
    if load_start is not None:  # how busy the machine was: ratios move with it
        out.update(load_average_start=load_start, load_average_end=_load_average())
    return out


def _load_average() -> float | None:
    """The machine's 1-minute load average (None where the OS does not give one)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
