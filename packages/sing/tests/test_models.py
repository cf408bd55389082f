"""Length arithmetic, the spectral loss, and the autoencoder's ability to fit notes."""

import numpy as np
import pytest
import torch
from conftest import tone

from dldiy_sing.config import ModelConfig
from dldiy_sing.models import (
    SING,
    Autoencoder,
    ConvDecoder,
    ConvEncoder,
    encoder_padding,
    num_steps,
)
from dldiy_sing.spectral import log_power, spectral_loss


def test_paper_sizes_give_265_steps_and_64000_samples():
    cfg = ModelConfig()
    assert num_steps(cfg) == 265
    assert encoder_padding(cfg) == 2304
    # the length math depends on kernel/stride/context only: check it on thin layers
    thin = ModelConfig(channels=8, hidden=8, layers=1)
    with torch.no_grad():
        z = ConvEncoder(thin)(torch.zeros(2, 64000))
        assert z.shape == (2, 128, 265)
        assert ConvDecoder(thin)(z).shape == (2, 64000)
        wav = SING(thin, 3, 5)(torch.tensor([0, 2]), torch.tensor([60, 61]),
                               torch.tensor([0, 4]))
    assert wav.shape == (2, 64000)


def test_paper_model_has_about_64m_parameters():
    n = sum(p.numel() for p in SING(ModelConfig(), 1006, 5).parameters())
    assert 63e6 < n < 65e6


def test_spectral_loss_zero_on_identical_and_differentiable():
    x = torch.from_numpy(tone(60, 100, [1, 0.5]))[None].repeat(2, 1)
    assert spectral_loss(x, x).item() == 0.0
    y = (0.5 * x).requires_grad_()
    loss = spectral_loss(y, x)
    assert loss.item() > 0
    loss.backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    assert log_power(x).shape == (2, 513, (64000 - 1024) // 256 + 1)


def test_spectral_loss_ignores_phase():
    """A sign flip changes the waveform, not the power spectrogram."""
    x = torch.from_numpy(tone(62, 100, [1, 0.3]))[None]
    assert spectral_loss(-x, x).item() < 1e-5
    assert torch.nn.functional.mse_loss(-x, x).item() > 1e-3


def test_autoencoder_learns_a_few_notes():
    """From random init (broadband noise) the spectral loss falls tenfold in 30 steps. Beating
    silence on sparse tones takes far longer (see the README): this checks the gradient path."""
    torch.manual_seed(0)
    cfg = ModelConfig(channels=32, dimension=8)
    wav = torch.stack([torch.from_numpy(tone(p, 100, [1, 0.5])) for p in (57, 64)])
    ae = Autoencoder(cfg)
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = spectral_loss(ae(wav), wav, epsilon=1e-2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-5:]) < 0.2 * losses[0], losses


def test_scaled_init_makes_the_autoencoder_depend_on_its_input():
    """At PyTorch's default init the biases drown quiet notes (RMS a few hundredths): two
    different notes decode to nearly the same output. The scaled init keeps them apart."""
    wav = torch.stack([torch.from_numpy(tone(p, 100, [1, 0.5])) for p in (57, 64)])
    gaps = {}
    for init in ("torch", "scaled"):
        torch.manual_seed(0)
        ae = Autoencoder(ModelConfig(channels=64, hidden=8, init=init, input_rms=0.03))
        with torch.no_grad():
            out = ae(wav)
        gaps[init] = float((out[0] - out[1]).norm() / out.norm())
    assert gaps["torch"] < 0.05 < 0.5 < gaps["scaled"], gaps


def test_generation_flops_of_the_paper_model():
    """About 33 GFLOP per note (LSTM about 11), half of it in the two 4096x4096 1x1 convs."""
    from dldiy_sing.bench import generation_flops

    cfg = ModelConfig()
    flops = generation_flops(cfg)
    rewrite = 2 * 2 * 257 * 4096 ** 2
    assert 30e9 < flops < 36e9 and 0.45 < rewrite / flops < 0.6


def test_bf16_fast_path_matches_fp32():
    from dldiy_sing.bench import fast_model

    torch.manual_seed(0)
    model = SING(ModelConfig(channels=64, hidden=64, layers=2), 3, 5).eval()
    args = (torch.tensor([0, 1, 2]), torch.tensor([55, 60, 72]), torch.tensor([0, 2, 4]))
    with torch.no_grad():
        ref = model(*args)
        fast = fast_model(model)(*args).float()
    assert fast.shape == ref.shape
    rel = (fast - ref).norm() / ref.norm()
    assert rel < 0.05, rel


@pytest.mark.gpu
def test_bf16_generation_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from dldiy_sing.bench import fast_model

    model = SING(ModelConfig(), 384, 5).eval()
    args = (torch.tensor([0, 100]), torch.tensor([60, 64]), torch.tensor([1, 3]))
    with torch.no_grad():
        ref = model.cuda()(*(a.cuda() for a in args)).float().cpu()
        fast = fast_model(model)(*(a.cuda() for a in args)).float().cpu()
    assert fast.shape == (2, 64000)
    assert spectral_loss(fast, ref).item() < 0.05 * spectral_loss(torch.zeros_like(ref), ref)


def test_dominant_bin_finds_the_fundamental():
    from dldiy_sing.evaluate import dominant_bin

    x = torch.from_numpy(tone(69, 100, [1.0, 0.3]))[None]  # 440 Hz: bin 440 / 15.625 = 28.2
    assert int(dominant_bin(log_power(x, epsilon=1e-2))[0]) == 28


@pytest.mark.parametrize("pitch", [48, 55, 61, 79])
def test_harmonic_pitch_is_the_played_note_not_its_loudest_partial(pitch):
    """The strongest partial is the 2nd or 4th: the dominant bin is an octave or two up, the
    harmonic estimate is the played pitch (not a semitone or an octave off)."""
    from dldiy_sing.evaluate import dominant_bin, harmonic_pitch

    notes = torch.from_numpy(np.stack([tone(pitch, 100, [0.3, 1.0, 0.4, 0.2]),
                                       tone(pitch, 100, [0.2, 0.3, 0.2, 1.0, 0.3, 0.1])]))
    lp = log_power(notes, epsilon=1e-2)
    assert harmonic_pitch(lp, 1e-2).tolist() == [pitch, pitch]
    f0_bin = 440 * 2 ** ((pitch - 69) / 12) / 15.625
    assert abs(float(dominant_bin(lp)[1]) - 4 * f0_bin) <= 1
