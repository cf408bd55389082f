"""The Trainer: epochs or steps, clipping, hooks, JSONL metrics, checkpoints, exact resume, DDP.

Exact resume: a checkpoint holds the model, optimizer, scheduler, the RNG states of every
process, the position in the epoch and the unlogged metric sums. The epoch order is a function
of ``(seed, epoch)`` (:mod:`dldiy_core.data`), so a run killed at any point and resumed from its
last checkpoint ends with the same weights as one that was never interrupted (on CPU).
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import distributed as dist
from .checkpoint import CheckpointError, load_checkpoint, load_module_state, save_checkpoint
from .config import ConfigError, flatten, save_config
from .data import BatchSource, DatasetBatches
from .device import select_device
from .errors import UserError
from .io import atomic_write_text
from .progress import progress

LossFn = Callable[[nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, Mapping[str, Any]]"]
CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"


@dataclass
class TrainConfig:
    """Trainer settings (a section of every package's config)."""

    epochs: int = 1
    max_steps: int = 0
    """Stop after this many optimizer steps (0: run ``epochs`` epochs)."""
    batch_size: int = 64
    """Global batch size, split evenly across torchrun processes."""
    grad_clip: float = 0.0
    """Clip the global gradient norm to this value (0: off)."""
    log_every: int = 10
    checkpoint_every: int = 0
    """Save a checkpoint every N steps (0: only at the end)."""
    seed: int = 0
    shuffle: bool = True
    drop_last: bool = False
    num_workers: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        positive = {"batch_size": self.batch_size, "log_every": self.log_every}
        non_negative = {"epochs": self.epochs, "max_steps": self.max_steps,
                        "checkpoint_every": self.checkpoint_every,
                        "num_workers": self.num_workers, "grad_clip": self.grad_clip}
        bad = [f"train.{k}={v} (must be > 0)" for k, v in positive.items() if v < 1] + [
            f"train.{k}={v} (must be >= 0)" for k, v in non_negative.items() if v < 0]
        if self.epochs == 0 and self.max_steps == 0:
            bad.append("train.epochs=0 with train.max_steps=0 (nothing to train)")
        if bad:
            raise ConfigError(f"bad setting {bad[0]}")


# Settings that may change between a run and its resumption (all others must match).
RESUMABLE = {"epochs", "max_steps", "log_every", "checkpoint_every", "num_workers", "device",
             "progress"}


class Hook:
    """Override any of these; ``trainer.state`` has ``step``, ``epoch`` and ``batch``."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_step_end(self, trainer: Trainer, logged: dict[str, float] | None) -> None: ...
    def on_epoch_end(self, trainer: Trainer) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch: int = 0
    """Batches of ``epoch`` already used."""


class Trainer:
    """Train ``model`` with ``optimizer`` on ``loss_fn(model, batch) -> loss | (loss, metrics)``.

    Args:
        out_dir: run folder for ``config.json``, ``metrics.jsonl`` and the checkpoint
            (None: keep nothing on disk).
        run_config: the package's whole resolved config (saved, and checked on resume).
        stateful: extra objects with ``state_dict``/``load_state_dict`` to checkpoint.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn,
                 config: TrainConfig, out_dir: str | Path | None = None, *,
                 scheduler: Any = None, hooks: Iterable[Hook] = (),
                 run_config: Mapping[str, Any] | None = None,
                 stateful: Mapping[str, Any] | None = None):
        self.config = config
        self.device = select_device(config.device)
        self.distributed = dist.init_distributed(self.device)
        self.rank, self.world = dist.rank(), dist.world_size()
        self.model = model.to(self.device)
        self.ddp_model: nn.Module = self.model
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer, self.scheduler, self.loss_fn = optimizer, scheduler, loss_fn
        self.hooks = list(hooks)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.run_config = dict(run_config) if run_config is not None else {
            "train": dataclasses.asdict(config)}
        self.stateful = dict(stateful or {})
        self.state = TrainState()
        self.history: list[dict[str, float]] = []
        self._sums: dict[str, Any] = {}
        self._window = 0
        self._t0 = time.perf_counter()

    # ---- checkpoints -------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / CHECKPOINT if self.out_dir else None

    def state_dict(self) -> dict[str, Any]:
        rng_torch = dist.all_gather_tensor(torch.get_rng_state())
        rng_cuda = (dist.all_gather_tensor(torch.cuda.get_rng_state(self.device))
                    if self.device.type == "cuda" else [])
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "trainer": {**dataclasses.asdict(self.state), "window": self._window,
                        "sums": {k: float(v) for k, v in self._sums.items()}},
            "rng": {"torch": rng_torch, "numpy": np.random.get_state(),
                    "python": random.getstate(),
                    "cuda": rng_cuda},
            "stateful": {k: v.state_dict() for k, v in self.stateful.items()},
            "config": self.run_config,
        }

    def save(self) -> Path | None:
        """Checkpoint now (process 0 writes; all processes wait for it)."""
        state = self.state_dict()  # collective: every process takes part
        path = self.checkpoint_path
        if path is not None and self.rank == 0:
            save_checkpoint(path, state)
        dist.barrier()
        return path

    def _check_config(self, saved: Mapping[str, Any], source: Path) -> None:
        old, new = flatten(saved), flatten(self.run_config)
        changed = [k for k in sorted(set(old) | set(new))
                   if old.get(k) != new.get(k) and k.rsplit(".", 1)[-1] not in RESUMABLE]
        if changed:
            k = changed[0]
            raise CheckpointError(
                f"{source}: written with a different config ({k}: {old.get(k)!r} -> "
                f"{new.get(k)!r}{f' and {len(changed) - 1} more' if len(changed) > 1 else ''}); "
                "resume with the same settings or start a new run folder")

    def load(self, path: str | Path) -> None:
        """Restore everything :meth:`state_dict` saved (for resuming)."""
        path = Path(path)
        ck = load_checkpoint(path)
        try:
            self._check_config(ck["config"], path)
            load_module_state(self.model, ck["model"], path)
            try:
                self.optimizer.load_state_dict(ck["optimizer"])
                if self.scheduler is not None and ck["scheduler"] is not None:
                    self.scheduler.load_state_dict(ck["scheduler"])
                for name, obj in self.stateful.items():
                    obj.load_state_dict(ck["stateful"][name])
            except (ValueError, RuntimeError, KeyError) as e:
                raise CheckpointError(f"{path}: does not fit the optimizer or state ({e})"
                                      ) from None
            t = ck["trainer"]
            self.state = TrainState(step=t["step"], epoch=t["epoch"], batch=t["batch"])
            self._window, self._sums = t["window"], dict(t["sums"])
            rng = ck["rng"]
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"{path}: incomplete checkpoint (missing {e})") from None
        # each process gets back its own generator state (process 0's if the world grew)
        torch.set_rng_state(_own(rng["torch"], self.rank))
        if rng["cuda"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(_own(rng["cuda"], self.rank), self.device)
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])

    # ---- metrics -----------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, float], kind: str = "train") -> dict[str, float]:
        """Append one record to ``metrics.jsonl`` (process 0) and to :attr:`history`."""
        record = {"kind": kind, "step": self.state.step, "epoch": self.state.epoch,
                  **{k: float(v) for k, v in metrics.items()}}
        self.history.append(record)
        if self.out_dir is not None and self.rank == 0:
            with open(self.out_dir / METRICS, "a") as f:
                f.write(json.dumps(record) + "\n")
        return record

    def _flush_window(self) -> dict[str, float]:
        keys = sorted(self._sums)
        values = torch.tensor([float(self._sums[k]) for k in keys], dtype=torch.float64)
        values = dist.all_reduce_mean(values) / max(self._window, 1)
        metrics = dict(zip(keys, values.tolist(), strict=True))
        if not np.isfinite(metrics.get("loss", 0.0)):
            raise FloatingPointError(f"loss is {metrics['loss']} at step {self.state.step}")
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        metrics["elapsed_s"] = time.perf_counter() - self._t0
        self._sums, self._window = {}, 0
        return self.log_metrics(metrics)

    def _truncate_metrics(self) -> None:
        """Drop records a killed run wrote after its last checkpoint."""
        path = self.out_dir / METRICS if self.out_dir else None
        if path is None or self.rank != 0 or not path.exists():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= self.state.step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by the kill
        atomic_write_text(path, "".join(line + "\n" for line in keep))

    # ---- training ----------------------------------------------------------------------
    def _to_device(self, batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, (list, tuple)):
            return type(batch)(self._to_device(b) for b in batch)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        return batch

    def train_step(self, batch: Any) -> None:
        """One optimizer step on ``batch``; metrics go to the running window."""
        if self.device.type != "cpu":
            batch = self._to_device(batch)
        out = self.loss_fn(self.ddp_model, batch)
        loss, metrics = (out, {}) if isinstance(out, torch.Tensor) else out
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self._accumulate("grad_norm", norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self._accumulate("loss", loss.detach())
        for k, v in metrics.items():
            self._accumulate(k, v.detach() if isinstance(v, torch.Tensor) else v)
        self._window += 1

    def _accumulate(self, key: str, value: Any) -> None:
        self._sums[key] = self._sums[key] + value if key in self._sums else value

    def _source(self, data: Any) -> BatchSource:
        if isinstance(data, BatchSource):
            return data
        c = self.config
        return DatasetBatches(data, c.batch_size, seed=c.seed, shuffle=c.shuffle,
                              drop_last=c.drop_last, rank=self.rank, world=self.world,
                              num_workers=c.num_workers)

    def _prepare_out_dir(self, resume: bool | str | Path) -> None:
        if resume:
            path = self.checkpoint_path if resume is True else Path(resume)
            if path is None:
                raise UserError("resume needs a run folder (out_dir) or a checkpoint path")
            self.load(path)
            self._truncate_metrics()
            return
        if self.out_dir is None:
            return
        if (self.out_dir / CHECKPOINT).exists():
            raise UserError(f"{self.out_dir}: already holds a run ({CHECKPOINT}); resume it "
                            "or choose another output folder")
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / METRICS).unlink(missing_ok=True)
            save_config(self.run_config, self.out_dir / "config.json")

    def fit(self, data: Any, resume: bool | str | Path = False) -> list[dict[str, float]]:
        """Train on ``data`` (a map-style Dataset or a :class:`BatchSource`); returns history.

        ``resume=True`` continues from ``out_dir``'s checkpoint (a path: from that file).
        """
        c = self.config
        self._prepare_out_dir(resume)
        source = self._source(data)
        per_epoch = source.num_batches(self.state.epoch)
        if c.max_steps <= 0 and per_epoch is None:
            raise UserError("an endless batch source needs train.max_steps > 0")
        if per_epoch == 0:
            raise UserError(f"the training set is smaller than one batch ({c.batch_size})")
        total = c.max_steps if c.max_steps > 0 else c.epochs * per_epoch
        for h in self.hooks:
            h.on_fit_start(self)
        self.model.train()
        bar = progress(total=total, desc="train", enabled=c.progress and self.rank == 0,
                       initial=min(self.state.step, total))
        while self.state.step < total:
            for batch in source.batches(self.state.epoch, self.state.batch):
                self.train_step(batch)
                self.state.step += 1
                self.state.batch += 1
                bar.update()
                logged = None
                if self.state.step % c.log_every == 0 or self.state.step == total:
                    logged = self._flush_window()
                    bar.set_postfix(loss=f"{logged['loss']:.4g}")
                for h in self.hooks:
                    h.on_step_end(self, logged)
                if c.checkpoint_every and self.state.step % c.checkpoint_every == 0:
                    self.save()
                if self.state.step >= total:
                    break
            if self.state.batch >= (source.num_batches(self.state.epoch) or float("inf")):
                self.state.epoch += 1
                self.state.batch = 0
                for h in self.hooks:
                    h.on_epoch_end(self)
        bar.close()
        self.save()
        for h in self.hooks:
            h.on_fit_end(self)
        return self.history


def _own(states: list, rank: int):
    return states[rank] if rank < len(states) else states[0]
