"""``dldiy-tdfbanks bench``: front-end throughput (seconds of audio per second), all measured on
the same batch in one run, alternating, median of repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

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


def run_bench(batch: int = 8, seconds: float = 4.0, repeats: int = 5, seed: int = 0) -> dict:
    """Forward (and forward+backward) throughput of every front end on one ``[batch, T]``
    batch of white noise (throughput does not depend on the content)."""
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
    with torch.no_grad():  # what the speed costs: normalised features, band vs direct
        out["tdfb_band_max_abs_dev"] = float((fixed(x)[0] - fixed_direct(x)[0]).abs().max())
    out.update(batch=batch, seconds_per_item=seconds, repeats=repeats,
               threads=torch.get_num_threads())
    return out
