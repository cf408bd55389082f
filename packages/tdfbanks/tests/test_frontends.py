import numpy as np
import pytest
import torch

from dldiy_tdfbanks.filterbank import (
    MODES,
    TDFilterbank,
    gabor_filters,
    mel_energies,
    mel_triangles,
)
from dldiy_tdfbanks.frontend import MFSC, fft_conv
from dldiy_tdfbanks.models import make_frontend

FRONTENDS = ["mfsc", *(f"tdfb-{m}" for m in MODES), "leaf", "sincnet"]


def speechlike(n: int, seed: int = 0) -> torch.Tensor:
    """Noise bursts and chirps: energy moving across all bands, like speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16_000
    chirp = np.sin(2 * np.pi * (100 + 3000 * t) * t) * (1 + np.sin(2 * np.pi * 3 * t))
    noise = rng.standard_normal(n) * (np.sin(2 * np.pi * 1.7 * t) > 0.3)
    return torch.tensor(0.3 * chirp + 0.1 * noise, dtype=torch.float32)


@pytest.mark.parametrize("name", FRONTENDS)
def test_a_padded_batch_equals_its_items_one_by_one(name):
    torch.manual_seed(0)
    fe = make_frontend(name).eval()
    items = [speechlike(n, seed=n) for n in (4000, 6399, 5123)]
    batch = torch.zeros(3, 6399)
    for i, x in enumerate(items):
        batch[i, :len(x)] = x
    feats, frames = fe(batch, torch.tensor([len(x) for x in items]))
    # The band path (fixed filters) truncates each band on a grid set by the batch's length;
    # the FFT path's transform size follows the input's length, and its rounding shows in the
    # log energy of quiet bands (up to ~6e-4 with the FFT kernels of some CPUs). A padding
    # leak would be orders of magnitude larger.
    atol = {"band": 1e-2, "fft": 1e-3}.get(getattr(fe, "impl", None), 2e-4)
    for i, x in enumerate(items):
        alone, n = fe(x[None])
        assert frames[i] == n[0] == len(x) // 160 + 1
        torch.testing.assert_close(feats[i, :, :n[0]], alone[0], atol=atol, rtol=1e-4)
        assert feats[i, :, n[0]:].abs().sum() == 0


def test_fixed_has_no_trainable_parameter_and_learn_modes_pass_gradients():
    x = speechlike(3200)[None]
    assert not [p for p in TDFilterbank(mode="fixed").parameters() if p.requires_grad]
    trainable = {}
    for mode in ("learn-all", "learn-filterbank", "random"):
        fe = TDFilterbank(mode=mode, preemphasis=True)
        fe(x)[0].pow(2).mean().backward()
        trainable[mode] = {n for n, p in fe.named_parameters() if p.requires_grad}
        for n, p in fe.named_parameters():
            if p.requires_grad:
                assert p.grad is not None and p.grad.abs().sum() > 0, (mode, n)
    assert trainable["learn-all"] == {"filters", "lowpass", "preemphasis"}
    assert trainable["learn-filterbank"] == {"filters"}


def test_initial_filters_peak_at_the_mel_centres_with_matched_energy():
    peak, fwhm = mel_triangles()
    phi = TDFilterbank().filter_response()
    response = torch.fft.fft(phi, n=16_000).abs()  # 1 Hz bins
    found = response[:, :8000].argmax(1).double()
    assert (found - peak).abs().max() <= 2 + 0.05 * fwhm.max()
    assert torch.allclose((phi.abs() ** 2).sum(1).double(), mel_energies(), rtol=1e-4)
    # the power response's half-maximum width is the triangle's
    power = response[:, :8000] ** 2
    width = (power >= 0.5 * power.amax(1, keepdim=True)).sum(1).double()
    assert ((width - fwhm).abs() / fwhm)[10:].max() < 0.1  # top bands: not truncated by 401 taps


def test_fft_and_direct_convolution_agree():
    x = torch.stack([speechlike(4801), speechlike(4801, seed=3)])
    w = torch.randn(6, 401)
    torch.testing.assert_close(fft_conv(x, w), torch.nn.functional.conv1d(
        x[:, None], w[:, None], padding=200), atol=1e-4, rtol=1e-4)
    for mode in ("fixed", "random"):
        fft, direct = TDFilterbank(mode=mode, impl="fft"), TDFilterbank(mode=mode, impl="direct")
        direct.load_state_dict(fft.state_dict())  # random mode: the same random filters
        torch.testing.assert_close(fft(x)[0], direct(x)[0], atol=1e-3, rtol=1e-3)


def test_band_implementation_agrees_with_the_direct_convolution_at_a_reduced_rate():
    """Every frame, padding included, of a padded batch (items of 0.06-2 s), at gain 1 (in
    [-1, 1]; the default 16-bit scale is tested in test_band_exact.py): a strong chirp crossing
    a band edge of a quiet channel is the hard case."""
    items = [speechlike(n, seed=n) for n in (1000, 4000, 6399, 5121, 32_000)]
    batch = torch.zeros(len(items), 32_000)
    for i, x in enumerate(items):
        batch[i, :len(x)] = x
    lengths = torch.tensor([len(x) for x in items])
    band = TDFilterbank(impl="band")
    band.gain = 1.0
    plan = band.subband_plan()
    # Most channels run well below the full rate (else the path would be pointless).
    assert sum(len(g.channels) / g.decimation for g in plan.groups) < 10
    for normalize in (False, True):
        band.normalize = normalize
        direct = TDFilterbank(impl="direct", normalize=normalize)
        direct.gain = 1.0
        with torch.no_grad():
            error = (band(batch, lengths)[0] - direct(batch, lengths)[0]).abs()
        assert float(error.quantile(0.999)) < 5e-3 and float(error.max()) < 0.2, normalize
    noise = torch.randn(2, 16_000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(band(noise)[0], direct(noise)[0], atol=3e-3, rtol=0)
    assert TDFilterbank().impl == "band" and TDFilterbank(mode="learn-all").impl == "fft"
    with pytest.raises(ValueError, match="band"):
        TDFilterbank(mode="learn-all", impl="band")


def test_input_gain_scales_the_waveform_before_the_front_end():
    x = speechlike(3200)[None]
    plain, scaled = make_frontend("mfsc", gain=1.0), make_frontend("mfsc", gain=4.0)
    plain.normalize = scaled.normalize = False
    torch.testing.assert_close(torch.expm1(scaled(x)[0]), 16 * torch.expm1(plain(x)[0]),
                               rtol=1e-4, atol=1e-3)


def test_band_plan_follows_loaded_filters():
    fe, other = TDFilterbank(), TDFilterbank(mode="random")
    before = fe.subband_plan()
    assert fe.subband_plan() is before
    fe.load_state_dict(other.state_dict())
    assert fe.subband_plan() is not before


def test_fixed_tdfbanks_track_mfsc_channel_by_channel():
    x = speechlike(48_000)[None]
    a, _ = TDFilterbank(normalize=False)(x)
    b, _ = MFSC(normalize=False)(x)
    corr = [np.corrcoef(a[0, i], b[0, i])[0, 1] for i in range(40)]
    assert np.mean(corr) > 0.95
    assert 0.8 < float(a.mean() / b.mean()) < 1.2


def test_energy_scale_of_the_filter_front_ends_matches_mfsc():
    """White noise through every mel-initialised filterbank: the same energy per band as MFSC
    (before the log), so the front ends compare like with like."""
    x = torch.randn(1, 32_000, generator=torch.Generator().manual_seed(0))
    ref = torch.expm1(MFSC(normalize=False)(x)[0])
    for fe in (TDFilterbank(normalize=False), make_frontend("sincnet")):
        fe.normalize = False
        with torch.no_grad():
            ratio = (torch.expm1(fe(x)[0]).mean(-1) / ref.mean(-1))[0, 5:]
        assert 0.8 < float(ratio.median()) < 1.25, type(fe).__name__


def test_recognizer_output_does_not_depend_on_the_batch():
    from dldiy_tdfbanks.models import Recognizer

    torch.manual_seed(0)
    model = Recognizer(make_frontend("mfsc"), channels=16, layers=3, first_stride=2,
                       dropout=0.0).eval()
    items = [speechlike(n, seed=n) for n in (4000, 6399)]
    batch = torch.zeros(2, 6399)
    for i, x in enumerate(items):
        batch[i, :len(x)] = x
    out, frames = model(batch, torch.tensor([4000, 6399]))
    alone, n = model(items[0][None])
    assert frames[0] == n[0]
    torch.testing.assert_close(out[0, :n[0]], alone[0], atol=1e-4, rtol=1e-4)


def test_gabor_filter_energy_and_centre():
    phi = gabor_filters(torch.tensor([1000.0]), torch.tensor([200.0]), torch.tensor([3.0]))
    assert phi.shape == (1, 401)
    assert abs(float((phi.abs() ** 2).sum()) - 3.0) < 1e-4
    assert int(torch.fft.fft(phi[0], n=16_000).abs().argmax()) == 1000


@pytest.mark.parametrize("name", ["mfsc", "tdfb-fixed", "leaf"])
def test_the_input_gain_travels_with_the_state_dict(name):
    trained = make_frontend(name, gain=1.0)
    state = trained.state_dict()
    assert float(state["input_gain"]) == 1.0
    fresh = make_frontend(name)
    assert fresh.gain == 32768
    fresh.load_state_dict(state)
    assert fresh.gain == 1.0
    x = speechlike(3200)[None]
    with torch.no_grad():
        torch.testing.assert_close(fresh(x)[0], trained(x)[0])
    # a state dict saved before the gain was saved: the gain the module was built with stays
    del state["input_gain"]
    older = make_frontend(name, gain=4.0)
    older.load_state_dict(state)
    assert older.gain == 4.0


def test_spcen_smoother_without_a_frame_loop_equals_the_recursion():
    from dldiy_tdfbanks.leaf import BLOCK, smooth

    g = torch.Generator().manual_seed(0)
    energy = torch.rand(2, 5, 2 * BLOCK + 7, generator=g, dtype=torch.float64) * 100
    s = torch.tensor([1e-3, 0.04, 0.3, 0.9, 1.0], dtype=torch.float64, requires_grad=True)

    def recursion(e, s):
        m, out = e[..., 0], []
        for t in range(e.shape[-1]):
            m = (1 - s) * m + s * e[..., t]
            out.append(m)
        return torch.stack(out, -1)

    fast, slow = smooth(energy, s), recursion(energy, s)
    torch.testing.assert_close(fast, slow)
    g_fast, = torch.autograd.grad(fast.sum(), s)
    g_slow, = torch.autograd.grad(slow.sum(), s)
    torch.testing.assert_close(g_fast, g_slow)
    torch.testing.assert_close(smooth(energy[..., :3], s), recursion(energy[..., :3], s))
