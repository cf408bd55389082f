"""``python -m dldiy_core bench``: what the Trainer costs, and what bf16 gives, same run.

- Overhead: the same MLP on the same data with the same optimizer, trained by a hand-written
  loop and by the Trainer (which also writes metrics.jsonl and a final checkpoint; the hand
  loop a log file and a final ``torch.save``); the median of per-pair time ratios.
- Fixed cost per step: the same comparison on a tiny model (a linear layer, batch 16), where
  the model costs almost nothing: the Trainer's own CPU time per step (process time, one
  thread, so other programs on the machine do not count).
- bf16: a small conv net's training step through the Trainer with ``precision=bf16`` against
  ``fp32`` (autocast; on CPUs with AMX-BF16 the fast path).

Runs come in pairs (order alternating) so machine noise hits both alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from .data import TensorData
from .errors import ArgumentParser
from .results import emit_results
from .toy import mlp, mse_loss, planted_regression
from .trainer import TrainConfig, Trainer

Model = Callable[[], nn.Module]


def hand_loop(data: TensorData, make: Model, steps: int, batch: int, log_every: int,
              out: Path, clock: Callable[[], float] = time.perf_counter) -> float:
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all, y_all = data.tensors
    t0 = clock()
    step, losses = 0, []
    while step < steps:
        perm = torch.randperm(len(x_all))
        for i in range(0, len(perm) - batch + 1, batch):
            idx = perm[i:i + batch]
            loss = nn.functional.mse_loss(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            step += 1
            if step % log_every == 0:
                with open(out / "log", "a") as f:
                    print(f"{step} {torch.stack(losses).mean().item()}", file=f)
                losses = []
            if step >= steps:
                break
    torch.save(model.state_dict(), out / "model.pt")
    return clock() - t0


def trainer_loop(data: TensorData, make: Model, steps: int, batch: int, log_every: int,
                 out: Path, clock: Callable[[], float] = time.perf_counter,
                 precision: str = "fp32") -> float:
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    cfg = TrainConfig(max_steps=steps, batch_size=batch, log_every=log_every, progress=False,
                      device="cpu", precision=precision)  # type: ignore[arg-type]
    trainer = Trainer(model, opt, mse_loss, cfg, out)
    t0 = clock()
    trainer.fit(data)
    return clock() - t0


def pairs(runs: dict[str, Callable[[Path], float]], repeats: int) -> dict[str, list[float]]:
    """Times of each run, ``repeats`` rounds in alternating order after one warm-up round."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    order = list(runs.items())
    for r in range(repeats + 1):
        for name, fn in (order if r % 2 else order[::-1]):
            with tempfile.TemporaryDirectory() as tmp:
                t = fn(Path(tmp))
            if r:
                times[name].append(t)
    return times


def median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def conv_net() -> nn.Module:
    """A small image model: 3x32x32 -> 10, four 3x3 convs of 64-128 channels."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 10))


def run(steps: int = 1000, repeats: int = 8, batch: int = 128, log_every: int = 10) -> dict:
    data = planted_regression(16384, 64, 8)
    big = lambda: mlp(64, 256, 8)  # noqa: E731
    t = pairs({"hand": lambda o: hand_loop(data, big, steps, batch, log_every, o),
               "trainer": lambda o: trainer_loop(data, big, steps, batch, log_every, o)},
              repeats)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tiny_data = planted_regression(4096, 16, 1)
    tiny = lambda: nn.Linear(16, 1)  # noqa: E731
    cpu = time.process_time
    tiny_steps = 3 * steps
    f = pairs({"hand": lambda o: hand_loop(tiny_data, tiny, tiny_steps, 16, log_every, o, cpu),
               "trainer": lambda o: trainer_loop(tiny_data, tiny, tiny_steps, 16, log_every, o,
                                                 cpu)}, repeats)
    torch.set_num_threads(threads)
    fixed = statistics.median(a - b for a, b in zip(f["trainer"], f["hand"], strict=True))

    g = torch.Generator().manual_seed(0)
    images = TensorData(torch.randn(512, 3, 32, 32, generator=g),
                        torch.randn(512, 10, generator=g))
    conv_steps = max(steps // 50, 4)
    c = pairs({p: (lambda o, p=p: trainer_loop(images, conv_net, conv_steps, 64, log_every, o,
                                               precision=p)) for p in ("fp32", "bf16")},
              max(repeats // 2, 1))
    return {
        "trainer_overhead_pct": 100 * (median_ratio(t["trainer"], t["hand"]) - 1),
        "hand_loop_steps_per_s": steps / statistics.median(t["hand"]),
        "trainer_steps_per_s": steps / statistics.median(t["trainer"]),
        "trainer_fixed_us_per_step": 1e6 * fixed / tiny_steps,
        "hand_loop_tiny_us_per_step": 1e6 * statistics.median(f["hand"]) / tiny_steps,
        "bf16_conv_speedup": median_ratio(c["fp32"], c["bf16"]),
        "fp32_conv_steps_per_s": conv_steps / statistics.median(c["fp32"]),
        "bf16_conv_steps_per_s": conv_steps / statistics.median(c["bf16"]),
        "steps": steps, "repeats": repeats, "batch_size": batch, "model": "MLP 64-256-256-8",
        "tiny_model": "Linear 16-1, batch 16, one thread, process time",
        "conv_model": "4 convs 64-128 ch on 3x32x32, batch 64",
        "torch": torch.__version__, "threads": threads,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m dldiy_core bench", description=__doc__)
    p.add_argument("--json", metavar="FILE", help="write the figures here as a results file")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=8)
    args = p.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        p.error("--steps and --repeats must be at least 1")
    emit_results(run(args.steps, args.repeats), args.json)
    return 0
