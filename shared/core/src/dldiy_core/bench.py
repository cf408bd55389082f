"""``python -m dldiy_core bench``: Trainer overhead against a hand-written loop, same run.

Both train the same MLP on the same data with the same optimizer and log the loss every
``log_every`` steps; the Trainer also writes metrics.jsonl and a final checkpoint, the hand
loop a final ``torch.save``. Runs come in pairs (order alternating) so machine noise hits both
alike; the overhead is the median of the per-pair time ratios.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .errors import ArgumentParser
from .results import emit_results
from .toy import mlp, mse_loss, planted_regression
from .trainer import TrainConfig, Trainer


def hand_loop(data, steps: int, batch: int, log_every: int, out: Path) -> float:
    torch.manual_seed(0)
    model = mlp(data.tensors[0].shape[1], 256, data.tensors[1].shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all, y_all = data.tensors
    t0 = time.perf_counter()
    step, losses = 0, []
    while step < steps:
        perm = torch.randperm(len(x_all))
        for i in range(0, len(perm) - batch + 1, batch):
            idx = perm[i:i + batch]
            loss = torch.nn.functional.mse_loss(model(x_all[idx]), y_all[idx])
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
    return time.perf_counter() - t0


def trainer_loop(data, steps: int, batch: int, log_every: int, out: Path) -> float:
    torch.manual_seed(0)
    model = mlp(data.tensors[0].shape[1], 256, data.tensors[1].shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    cfg = TrainConfig(max_steps=steps, batch_size=batch, log_every=log_every, progress=False,
                      device="cpu")
    trainer = Trainer(model, opt, mse_loss, cfg, out)
    t0 = time.perf_counter()
    trainer.fit(data)
    return time.perf_counter() - t0


def run(steps: int = 1000, repeats: int = 8, batch: int = 128, log_every: int = 10) -> dict:
    data = planted_regression(16384, 64, 8)
    times: dict[str, list[float]] = {"hand": [], "trainer": []}
    loops = (("hand", hand_loop), ("trainer", trainer_loop))
    for r in range(repeats + 1):  # the first pair warms up and is not counted
        for name, fn in (loops if r % 2 else loops[::-1]):
            with tempfile.TemporaryDirectory() as tmp:
                t = fn(data, steps, batch, log_every, Path(tmp))
            if r:
                times[name].append(t)
    ratio = statistics.median(t / h for t, h in zip(times["trainer"], times["hand"], strict=True))
    return {
        "hand_loop_steps_per_s": steps / statistics.median(times["hand"]),
        "trainer_steps_per_s": steps / statistics.median(times["trainer"]),
        "trainer_overhead_pct": 100 * (ratio - 1),
        "steps": steps, "repeats": repeats, "batch_size": batch, "model": "MLP 64-256-256-8",
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m dldiy_core bench", description=__doc__)
    p.add_argument("--json", metavar="FILE", help="write the figures here as JSON")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=8)
    args = p.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        p.error("--steps and --repeats must be at least 1")
    emit_results(run(args.steps, args.repeats), args.json)
    return 0
