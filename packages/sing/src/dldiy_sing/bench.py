"""``dldiy-sing bench``: generation speed, in one run, of

- the reference path: SING at the paper's sizes in fp32, plain PyTorch (what the original
  code does on a CPU: the "original" figures of the issue are re-measured here), and
- the fast path: the same network with bf16 weights (AMX on this CPU), batch 1 and 32,

as real-time factors (seconds of audio per second of compute), with the fp32 and bf16 matmul
peaks of this machine measured in the same run, a training step of the preset's model, and the
relative change of the spectral loss when a trained run generates in bf16 instead of fp32.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from dldiy_core import bf16_isa, seed_everything

from .config import ModelConfig, SingConfig
from .models import NOTE_SAMPLES, SING, OverlapAddTranspose1d, num_steps
from .nsynth import SAMPLE_RATE
from .spectral import note_loss, spectral_loss

log = logging.getLogger(__name__)
SECONDS = NOTE_SAMPLES / SAMPLE_RATE


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` calls after one warm-up (the least disturbed by other load)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return 2 * n ** 3 / best_time(lambda: a @ b, repeats)


def generation_flops(cfg: ModelConfig, n_inputs: int = 30) -> float:
    """Multiply-adds x 2 of one note: LSTM over all steps + output layer + decoder."""
    steps = num_steps(cfg)
    width = cfg.instrument_dim + cfg.pitch_dim + cfg.velocity_dim + cfg.time_dim
    lstm = sum(4 * cfg.hidden * ((width if layer == 0 else cfg.hidden) + cfg.hidden)
               for layer in range(cfg.layers)) * steps
    linear = cfg.hidden * cfg.dimension * steps
    frames = steps - cfg.context + 1
    decoder = frames * (cfg.dimension * cfg.channels * cfg.context
                        + cfg.rewrite * cfg.channels ** 2 + cfg.channels * cfg.kernel)
    return 2.0 * (lstm + linear + decoder)


def fast_model(model: SING) -> SING:
    """The fast path: a bf16 copy of the weights (LSTM and convolutions run in bf16), the last
    transposed convolution as a bf16 GEMM plus a float32 overlap-add; output float32."""
    fast = copy.deepcopy(model).to(torch.bfloat16).eval()
    layers = fast.decoder.layers
    layers[-1] = OverlapAddTranspose1d(layers[-1])
    return fast


def realtime(model: SING, batch: int, repeats: int, n_instruments: int) -> float:
    g = torch.Generator().manual_seed(batch)
    inst = torch.randint(0, n_instruments, (batch,), generator=g)
    pitch = torch.randint(48, 80, (batch,), generator=g)
    vel = torch.zeros(batch, dtype=torch.long)
    with torch.inference_mode():
        t = best_time(lambda: model(inst, pitch, vel), repeats)
    return batch * SECONDS / t


def bf16_loss_change(run_folder: str, notes: int = 32) -> dict[str, float]:
    """Spectral loss of a trained run's generations of ``notes`` valid notes, fp32 vs bf16."""
    from .evaluate import load_run
    from .nsynth import NSynth, notes_dataset
    from .render import build_corpus
    from .train import batched

    run = load_run(run_folder)
    corpus = NSynth(build_corpus(run.cfg.data))
    d = run.cfg.data
    index = corpus.split(d.split_seed, d.valid_ratio, d.test_ratio)["valid"][:notes]
    fast = fast_model(run.sing)
    lc = run.cfg.loss
    sums = {"fp32": 0.0, "bf16": 0.0}
    with torch.no_grad():
        for inst, pitch, vel, wav in batched(notes_dataset(corpus, index), 16):
            for name, m in (("fp32", run.sing), ("bf16", fast)):
                out = m(inst, pitch, vel).float()
                sums[name] += float(spectral_loss(out, wav, lc.n_fft, lc.hop, lc.epsilon,
                                                  reduce=False).sum())
    fp32, bf16 = sums["fp32"] / len(index), sums["bf16"] / len(index)
    return {"bf16_spectral_loss_fp32": fp32, "bf16_spectral_loss_bf16": bf16,
            "bf16_spectral_loss_rel_diff": abs(bf16 - fp32) / fp32,
            "bf16_check_notes": len(index), "bf16_check_run": str(run_folder)}


def train_step_time(cfg: SingConfig, n_instruments: int, repeats: int) -> float:
    """Seconds per end-to-end (stage 3) training step of ``cfg``'s model and batch size."""
    seed_everything(0)
    model = SING(cfg.model, n_instruments, len(cfg.data.velocities))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.stages.lr)
    b = cfg.train.batch_size
    inst = torch.randint(0, n_instruments, (b,))
    pitch = torch.randint(48, 80, (b,))
    vel = torch.zeros(b, dtype=torch.long)
    target = torch.randn(b, NOTE_SAMPLES) * 0.1

    def step():
        loss = note_loss(model(inst, pitch, vel), target, cfg.loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return best_time(step, repeats)


def run_bench(cfg: SingConfig, repeats: int = 3, run: str | None = None) -> dict:
    """All figures of one bench run (``cfg``: the preset measured beside the paper sizes)."""
    torch.manual_seed(0)
    out: dict = {"threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                 "torch": torch.__version__, "repeats": repeats, "bf16_isa": bf16_isa()}
    out["fp32_peak_flops_per_s"] = matmul_peak(torch.float32)
    out["bf16_peak_flops_per_s"] = matmul_peak(torch.bfloat16)
    n_inst = 3 * 128
    paper = SING(ModelConfig(), n_inst, 5).eval()
    fast = fast_model(paper)
    flops = generation_flops(ModelConfig())
    out["gen_flops_per_note_paper"] = flops
    log.info("paper sizes, fp32 reference path")
    out["gen_realtime_factor_paper_b1_fp32"] = realtime(paper, 1, repeats, n_inst)
    out["gen_realtime_factor_paper_b32_fp32"] = realtime(paper, 32, repeats, n_inst)
    log.info("paper sizes, bf16 fast path")
    out["gen_realtime_factor_paper_b1"] = realtime(fast, 1, repeats, n_inst)
    out["gen_realtime_factor_paper_b32"] = realtime(fast, 32, repeats, n_inst)
    out["gen_flops_per_s"] = flops * out["gen_realtime_factor_paper_b32"] / SECONDS
    out["gen_flops_per_s_fp32"] = flops * out["gen_realtime_factor_paper_b32_fp32"] / SECONDS
    out["speedup_b1"] = out["gen_realtime_factor_paper_b1"] / \
        out["gen_realtime_factor_paper_b1_fp32"]
    out["speedup_b32"] = out["gen_realtime_factor_paper_b32"] / \
        out["gen_realtime_factor_paper_b32_fp32"]
    del paper, fast
    n_small = len(cfg.data.soundfonts) * len(cfg.data.programs)
    small = SING(cfg.model, n_small, len(cfg.data.velocities)).eval()
    out["gen_realtime_factor_small_b32"] = realtime(fast_model(small), 32, repeats, n_small)
    out["gen_realtime_factor_small_b32_fp32"] = realtime(small, 32, repeats, n_small)
    out["train_step_s_small"] = train_step_time(cfg, n_small, repeats)
    out["train_batch_small"] = cfg.train.batch_size
    if run:
        out.update(bf16_loss_change(run))
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in out.items()}
