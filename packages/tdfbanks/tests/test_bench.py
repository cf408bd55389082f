import os

import pytest

from dldiy_tdfbanks.bench import low_tones, run_bench


def test_bench_reports_speeds_ratios_and_the_band_paths_deviation():
    out = run_bench(batch=1, seconds=0.5, repeats=1)
    for key in ("tdfb_fwd_audio_s_per_s", "mfsc_fwd_audio_s_per_s",
                "tdfb_direct_fwd_audio_s_per_s", "tdfb_fwdbwd_audio_s_per_s"):
        assert out[key] > 0, key
    assert out["tdfb_slowdown_vs_mfsc"] == pytest.approx(
        out["mfsc_fwd_audio_s_per_s"] / out["tdfb_fwd_audio_s_per_s"])
    assert out["input_gain"] == 32768 and "low_tones" in out["deviation_inputs"]
    assert out["tdfb_band_max_dev_std"] == max(
        out[f"tdfb_band_max_dev_std_{k}"] for k in out["deviation_inputs"])
    assert 0 <= out["tdfb_band_max_dev_std"] < 0.05
    assert low_tones(1.0).shape == (1, 16_000)
    if hasattr(os, "getloadavg"):
        assert out["load_average_start"] >= 0 and out["load_average_end"] >= 0
