"""The Trainer: epochs or steps, validation and best checkpoint, schedulers, mixed precision,
gradient accumulation, EMA, checkpoints with exact resume, DDP.

Exact resume: a checkpoint holds the model, optimizer, scheduler, grad scaler and EMA, the RNG
states of every process, the position in the epoch, the best validation figure and the unlogged
metric sums. The epoch order is a function of ``(seed, epoch)`` and each item's randomness of
``(seed, epoch, index)`` (:mod:`dldiy_core.data`), and validation never touches the training
generators, so a run killed at any point and resumed from its last checkpoint ends with the same
weights as one that was never interrupted (on CPU), with any number of loader workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from . import distributed as dist
from .checkpoint import CheckpointError, load_checkpoint, load_module_state, save_checkpoint
from .config import bounded, check_config, flatten, save_config
from .data import BatchSource, DatasetBatches, mix_seed
from .device import select_device
from .errors import UserError
from .guard import check_outputs, prepare_out_dir
from .io import atomic_write_text
from .progress import progress

log = logging.getLogger(__name__)
LossFn = Callable[[nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, Mapping[str, Any]]"]
CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
RUN_FILES = (CHECKPOINT, BEST, METRICS)
"""What a run folder holds (:data:`dldiy_core.guard.RUN_MARKERS`); ``force`` replaces them."""
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainConfig:
    """Trainer settings (a section of every package's config)."""

    epochs: int = bounded(1, ge=0)
    max_steps: int = bounded(0, ge=0)
    """Stop after this many optimizer steps (0: run ``epochs`` epochs)."""
    batch_size: int = bounded(64, ge=1)
    """Global batch size, split evenly across torchrun processes."""
    grad_clip: float = bounded(0.0, ge=0)
    """Clip the global gradient norm to this value (0: off)."""
    log_every: int = bounded(10, ge=1)
    checkpoint_every: int = bounded(0, ge=0)
    """Save a checkpoint every N steps (0: only at the end)."""
    seed: int = bounded(0, ge=0)
    shuffle: bool = True
    drop_last: bool = False
    num_workers: int = bounded(0, ge=0)
    device: str = "auto"
    progress: bool = True
    """Progress bar on a terminal, else a plain log line every ``log_every`` steps."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Autocast dtype of the forward pass and loss (fp16 adds a gradient scaler)."""
    accumulate: int = bounded(1, ge=1)
    """Batches per optimizer step (gradient accumulation)."""
    compile: bool = False
    """Run the forward pass through ``torch.compile`` (checkpoint keys stay the module's)."""
    ema: float = bounded(0.0, ge=0, lt=1)
    """Decay of an exponential moving average of the weights (0: off); validation uses it."""
    eval_every: int = bounded(0, ge=0)
    """Validate every N steps (0: at each epoch end)."""
    monitor: str = "valid_loss"
    """Validation figure that picks ``best.safetensors`` (and drives plateau schedulers)."""
    monitor_mode: Literal["min", "max"] = "min"
    keep_last: int = bounded(1, ge=1)
    """Periodic checkpoints kept (``checkpoint-STEP.safetensors`` beside the last one)."""
    patience: int = bounded(0, ge=0)
    """Stop after this many validations without improvement (0: never)."""
    tensorboard: bool = False
    """Also write TensorBoard event files to ``<run>/tensorboard`` (needs tensorboard)."""

    def check(self) -> None:
        if self.epochs == 0 and self.max_steps == 0:
            raise ValueError("epochs=0 with max_steps=0: nothing to train")


RESUMABLE = {"epochs", "max_steps", "log_every", "checkpoint_every", "num_workers", "device",
             "progress", "keep_last", "patience", "tensorboard"}
"""Settings of the train section that may change between a run and its resumption."""


class Hook:
    """Override any of these; ``trainer.state`` has ``step``, ``epoch`` and ``batch``."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_step_end(self, trainer: Trainer, logged: dict[str, float] | None) -> None: ...
    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...
    def on_epoch_end(self, trainer: Trainer) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


@dataclass
class TrainState:
    step: int = 0
    """Optimizer steps taken."""
    epoch: int = 0
    batch: int = 0
    """Batches of ``epoch`` already used."""
    best: float | None = None
    """Best validation figure so far (``config.monitor``)."""
    bad_evals: int = 0
    """Validations since the best one."""
    last_eval: int = -1
    """Step of the last validation."""


class Diverged(UserError):
    """The loss or the weights became NaN/inf: nothing is written over the last good run."""


class Trainer:
    """Train ``model`` with ``optimizer`` on ``loss_fn(model, batch) -> loss | (loss, metrics)``.

    Args:
        out_dir: run folder for ``config.json``, ``metrics.jsonl``, ``checkpoint.safetensors``
            and ``best.safetensors`` (None: keep nothing on disk).
        scheduler: any torch LR scheduler, stepped each optimizer step, each epoch, or after
            each validation on ``config.monitor`` (``scheduler_every``; ``ReduceLROnPlateau``
            defaults to ``"valid"``).
        eval_fn: ``eval_fn(model, batch) -> loss | (loss, metrics)`` for validation batches
            (default ``loss_fn``); figures are averaged over items and logged as ``valid_*``.
        run_config: the package's whole resolved config (saved, and checked on resume; the
            train section lives under ``config_key``).
        stateful: extra objects with ``state_dict``/``load_state_dict`` to checkpoint.
        resumable: dotted ``run_config`` keys, besides the train section's ``RESUMABLE``, that
            a resumed run may change (e.g. a stage's epochs).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn,
                 config: TrainConfig, out_dir: str | Path | None = None, *,
                 scheduler: Any = None,
                 scheduler_every: Literal["step", "epoch", "valid"] | None = None,
                 eval_fn: LossFn | None = None, hooks: Iterable[Hook] = (),
                 run_config: Mapping[str, Any] | None = None,
                 stateful: Mapping[str, Any] | None = None, config_key: str = "train",
                 resumable: Iterable[str] = ()):
        check_config(config, config_key)
        self.config = c = config
        self.device = select_device(c.device)
        self.distributed = dist.init_distributed(self.device)
        self.rank, self.world = dist.rank(), dist.world_size()
        self.model = model.to(self.device)
        self.ddp_model: nn.Module = self.model
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.forward: nn.Module = torch.compile(self.ddp_model) if c.compile else self.ddp_model
        self.optimizer, self.loss_fn = optimizer, loss_fn
        self.eval_fn = eval_fn or loss_fn
        self.scheduler = scheduler
        plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.scheduler_every = scheduler_every or ("valid" if plateau else "step")
        if plateau and self.scheduler_every != "valid":
            raise UserError("ReduceLROnPlateau steps on a validation figure: scheduler_every "
                            "must be 'valid'")
        self.scaler = torch.amp.GradScaler(self.device.type) if c.precision == "fp16" else None
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(c.ema),
                                  use_buffers=True) if c.ema > 0 else None)
        self.hooks = list(hooks)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.run_config = dict(run_config) if run_config is not None else {
            config_key: dataclasses.asdict(c)}
        self.resumable = {f"{config_key}.{k}" for k in RESUMABLE} | set(resumable)
        self.stateful = dict(stateful or {})
        self.state = TrainState()
        self.history: list[dict[str, float]] = []
        self.stop = False
        """Set to True (e.g. by a hook) to end :meth:`fit` after the current step."""
        self._sums: dict[str, list[Any]] = {}
        """Per-step figures of the unlogged window (summed when logged or saved)."""
        self._window = 0
        self._valid: Any = None
        self._total = 0
        self._t0 = self._t_window = time.perf_counter()
        self._writer: Any = None

    # ---- checkpoints -------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / CHECKPOINT if self.out_dir else None

    @property
    def best_path(self) -> Path | None:
        return self.out_dir / BEST if self.out_dir else None

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumption needs (collective: every process must call it)."""
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        own = {"torch": torch.get_rng_state(), "cuda": cuda, "numpy": np.random.get_state(),
               "python": random.getstate()}
        rngs = dist.all_gather_object(own) if self.distributed else [own]
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "trainer": {**dataclasses.asdict(self.state), "window": self._window,
                        "sums": self._window_sums()},
            "rng": rngs,
            "stateful": {k: v.state_dict() for k, v in self.stateful.items()},
            "config": self.run_config,
        }

    def _check_finite(self) -> None:
        """Refuse to write NaN/inf: the last good checkpoint stays as it is."""
        loss = self._window_sums().get("loss")
        bad = loss is not None and not math.isfinite(loss)
        if not bad:
            bad = not all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
        if bad:
            kept = f"; {self.checkpoint_path} is the last good state" if (
                self.checkpoint_path and self.checkpoint_path.exists()) else ""
            raise Diverged(f"training diverged at step {self.state.step} (non-finite loss or "
                           f"weights){kept}; lower the learning rate or set train.grad_clip")

    def save(self, path: Path | None = None) -> Path | None:
        """Checkpoint now to ``path`` (default: the run's last checkpoint, keeping
        ``keep_last`` step-numbered ones); process 0 writes, all processes wait for it."""
        self._check_finite()
        state = self.state_dict()  # collective: every process takes part
        path = path or self.checkpoint_path
        if path is not None and self.rank == 0:
            save_checkpoint(path, state)
            if path == self.checkpoint_path and self.config.keep_last > 1:
                self._keep_last(path)
        dist.barrier()
        return path

    def _keep_last(self, path: Path) -> None:
        numbered = path.with_name(f"checkpoint-{self.state.step:08d}.safetensors")
        numbered.unlink(missing_ok=True)
        numbered.hardlink_to(path)
        old = sorted(path.parent.glob("checkpoint-*.safetensors"))
        for p in old[:-self.config.keep_last]:
            p.unlink()

    def _check_config(self, saved: Mapping[str, Any], source: Path) -> None:
        old, new = flatten(saved), flatten(self.run_config)
        changed = [k for k in sorted(set(old) | set(new))
                   if old.get(k) != new.get(k) and k not in self.resumable]
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
                for obj, key in ((self.scheduler, "scheduler"), (self.scaler, "scaler"),
                                 (self.ema, "ema")):
                    if obj is not None and ck[key] is not None:
                        obj.load_state_dict(ck[key])
                for name, obj in self.stateful.items():
                    obj.load_state_dict(ck["stateful"][name])
            except (ValueError, RuntimeError, KeyError) as e:
                raise CheckpointError(f"{path}: does not fit the optimizer or state ({e})"
                                      ) from None
            t = dict(ck["trainer"])
            self._window = t.pop("window")
            self._sums = {k: [v] for k, v in t.pop("sums").items()}
            self.state = TrainState(**t)
            rngs = ck["rng"]
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"{path}: incomplete checkpoint (missing {e})") from None
        if self.rank < len(rngs):  # each process gets back its own generators
            own = rngs[self.rank]
            torch.set_rng_state(own["torch"])
            if own["cuda"] is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(own["cuda"], self.device)
            np.random.set_state(own["numpy"])
            random.setstate(own["python"])
        else:  # the world grew: a new process gets fresh generators of its own
            self._seed_rank(mix_seed(self.config.seed, self.rank, self.state.step))

    @staticmethod
    def _seed_rank(seed: int) -> None:
        torch.manual_seed(seed)
        np.random.seed(seed & 0xFFFFFFFF)
        random.seed(seed)

    def load_best(self) -> None:
        """Load the weights of the best validation (the EMA weights when ``ema`` is on)."""
        if self.best_path is None or not self.best_path.exists():
            raise UserError(f"{self.out_dir}: no best checkpoint (no validation ran)")
        load_weights(self.best_path, self.model)

    # ---- metrics -----------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, float], kind: str = "train") -> dict[str, float]:
        """Append one record to ``metrics.jsonl`` (process 0) and to :attr:`history`."""
        record = {"kind": kind, "step": self.state.step, "epoch": self.state.epoch,
                  **{k: float(v) for k, v in metrics.items()}}
        self.history.append(record)
        if self.out_dir is not None and self.rank == 0:
            with open(self.out_dir / METRICS, "a") as f:
                f.write(json.dumps(record) + "\n")
            if self._writer is not None:
                for k, v in metrics.items():
                    self._writer.add_scalar(f"{kind}/{k}", float(v), self.state.step)
        return record

    def _flush_window(self) -> dict[str, float]:
        sums, n = self._window_sums(), max(self._window, 1)
        if self.distributed:
            keys = sorted(sums)
            values = dist.all_reduce_mean(torch.tensor([sums[k] for k in keys],
                                                        dtype=torch.float64))
            sums = dict(zip(keys, values.tolist(), strict=True))
        metrics = {k: v / n for k, v in sums.items()}
        if not math.isfinite(metrics.get("loss", 0.0)):
            self._check_finite()
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        now = time.perf_counter()
        metrics["elapsed_s"] = now - self._t0
        rate = self._window / max(now - self._t_window, 1e-9)
        self._sums, self._window, self._t_window = {}, 0, now
        record = self.log_metrics(metrics)
        if self._plain_log():
            eta = (self._total - self.state.step) / rate if self._total else 0
            log.info("step %d/%d  loss %.4g  %.2f steps/s  ETA %s", self.state.step,
                     self._total, metrics["loss"], rate, _clock(eta))
        return record

    def _plain_log(self) -> bool:
        return self.config.progress and self.rank == 0 and not sys.stderr.isatty()

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

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = DTYPES[self.config.precision]
        return (torch.autocast(self.device.type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())

    def _call(self, fn: LossFn, model: nn.Module, batch: Any
              ) -> tuple[torch.Tensor, Mapping[str, Any]]:
        if self.device.type != "cpu":
            batch = self._to_device(batch)
        with self._autocast():
            out = fn(model, batch)
        return (out, {}) if isinstance(out, torch.Tensor) else out

    def train_step(self, batch: Any, group: int = 1, last: bool = True) -> bool:
        """Forward and backward on one batch of a ``group`` accumulated into one optimizer
        step, taken when ``last``; metrics go to the running window. True if it stepped."""
        sync = contextlib.nullcontext() if last or not self.distributed else \
            self.ddp_model.no_sync()
        with sync:
            loss, metrics = self._call(self.loss_fn, self.forward, batch)
            scaled = loss / group if group > 1 else loss
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        self._accumulate("loss", loss.detach() / group if group > 1 else loss.detach())
        for k, v in metrics.items():
            self._accumulate(k, (v.detach() if isinstance(v, torch.Tensor) else v) / group)
        if not last:
            return False
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip > 0:
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self._accumulate("grad_norm", norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if self.scheduler is not None and self.scheduler_every == "step":
            self.scheduler.step()
        self._window += 1
        return True

    def _accumulate(self, key: str, value: Any) -> None:
        self._sums.setdefault(key, []).append(value)

    def _window_sums(self) -> dict[str, float]:
        return {k: float(torch.stack(v).sum(dtype=torch.float64))
                if all(isinstance(x, torch.Tensor) for x in v) else float(sum(map(float, v)))
                for k, v in self._sums.items()}

    def _source(self, data: Any, train: bool = True) -> BatchSource:
        if isinstance(data, BatchSource):
            return data
        c = self.config
        return DatasetBatches(data, c.batch_size, seed=c.seed, shuffle=c.shuffle and train,
                              drop_last=c.drop_last and train, rank=self.rank, world=self.world,
                              num_workers=c.num_workers)

    # ---- validation --------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Score the validation data now (EMA weights when on), log ``valid_*`` figures, keep
        ``best.safetensors``, step a plateau scheduler, count towards early stopping."""
        c = self.config
        model = self.ema.module if self.ema is not None else self.model
        model.eval()
        with _own_rng(self.device), torch.no_grad():
            if isinstance(self._valid, BatchSource):
                figures = self._score(model, self._valid)
            else:
                figures = {k: float(v) for k, v in self._valid(self).items()}
        self.model.train()
        metrics = {f"valid_{k}": v for k, v in figures.items()}
        self.log_metrics(metrics, kind="valid")
        if c.monitor not in metrics:
            raise UserError(f"train.monitor={c.monitor!r} is not a validation figure "
                            f"(have: {', '.join(sorted(metrics))})")
        value, s = metrics[c.monitor], self.state
        better = s.best is None or (value < s.best if c.monitor_mode == "min" else value > s.best)
        s.best, s.bad_evals = (value, 0) if better else (s.best, s.bad_evals + 1)
        s.last_eval = s.step
        if self.scheduler is not None and self.scheduler_every == "valid":
            self.scheduler.step(value)
        if better and self.best_path is not None:
            self.save(self.best_path)
        if c.patience and s.bad_evals >= c.patience:
            log.info("early stop at step %d: %s has not improved for %d validations (best %.4g)",
                     s.step, c.monitor, s.bad_evals, s.best)
            self.stop = True
        if self._plain_log():
            log.info("step %d  %s%s", s.step, "  ".join(f"{k} {v:.4g}" for k, v in
                                                           metrics.items()),
                     "  (best)" if better else "")
        for h in self.hooks:
            h.on_validation_end(self, metrics)
        return metrics

    def _score(self, model: nn.Module, source: BatchSource) -> dict[str, float]:
        """Item-weighted means of ``eval_fn``'s figures over every process's share."""
        sums: dict[str, float] = {}
        count = 0.0
        for batch in source.batches(0, 0):
            loss, metrics = self._call(self.eval_fn, model, batch)
            n = _batch_len(batch)
            for k, v in {"loss": loss, **metrics}.items():
                sums[k] = sums.get(k, 0.0) + n * float(v)
            count += n
        keys = sorted(sums)
        total = dist.all_reduce_mean(torch.tensor([*(sums[k] for k in keys), count],
                                                  dtype=torch.float64))
        if float(total[-1]) == 0:
            raise UserError("the validation set is empty")
        return {k: float(total[i] / total[-1]) for i, k in enumerate(keys)}

    # ---- the loop ----------------------------------------------------------------------
    def _prepare_out_dir(self, resume: bool | str | Path, force: bool) -> None:
        if resume:
            path = self.checkpoint_path if resume is True else Path(resume)
            if path is None:
                raise UserError("resume needs a run folder (out_dir) or a checkpoint path")
            if not path.exists():
                raise CheckpointError(f"{path}: checkpoint not found (no run to resume there)")
            check_outputs([self.out_dir], resume=True)
            self.load(path)
            self._truncate_metrics()
            self._remove_stale_tmp()
            return
        if self.out_dir is None:
            return
        check_outputs([self.out_dir], force=force)  # every process: the same verdict
        if self.rank == 0:
            prepare_out_dir(self.out_dir, force=True)
            for p in [*(self.out_dir / f for f in RUN_FILES),
                      *self.out_dir.glob("checkpoint-*.safetensors")]:
                p.unlink(missing_ok=True)
            self._remove_stale_tmp()
            save_config(self.run_config, self.out_dir / CONFIG)
        dist.barrier()

    def _remove_stale_tmp(self) -> None:
        """Temporary files a killed save left behind (``.NAME.tmp-PID``)."""
        if self.rank == 0 and self.out_dir is not None:
            for p in self.out_dir.glob(".*.tmp-*"):
                p.unlink(missing_ok=True)

    def _done(self) -> bool:
        c, s = self.config, self.state
        return self.stop or (s.step >= c.max_steps if c.max_steps > 0 else s.epoch >= c.epochs)

    def fit(self, data: Any, valid: Any = None, resume: bool | str | Path = False,
            force: bool = False) -> list[dict[str, float]]:
        """Train on ``data`` (a map-style Dataset or a :class:`BatchSource`); returns history.

        Args:
            valid: validation data (a Dataset or BatchSource scored with ``eval_fn``, or a
                callable ``valid(trainer) -> {name: figure}``), scored every
                ``eval_every`` steps or at each epoch end, and once at the end.
            resume: True continues from ``out_dir``'s checkpoint (a path: from that file).
            force: start over in a folder that holds a run (its run files are replaced).
        """
        c = self.config
        self._prepare_out_dir(resume, force)
        if not resume and self.rank > 0:  # own dropout masks and augmentations per process
            self._seed_rank(mix_seed(c.seed, self.rank))
        source = self._source(data)
        self._valid = (self._source(valid, train=False) if hasattr(valid, "__len__")
                       or isinstance(valid, BatchSource) else valid)
        per_epoch = source.num_batches(self.state.epoch)
        if c.max_steps <= 0 and per_epoch is None:
            raise UserError("an endless batch source needs train.max_steps > 0")
        if per_epoch == 0:
            raise UserError(f"the training set is smaller than one batch ({c.batch_size})")
        if valid is not None and per_epoch is None and not c.eval_every:
            raise UserError("an endless batch source validates every train.eval_every steps "
                            "(set it > 0)")
        self._total = c.max_steps if c.max_steps > 0 else c.epochs * -(-per_epoch // c.accumulate)
        if c.tensorboard and self.out_dir is not None and self.rank == 0:
            self._writer = _tensorboard(self.out_dir / "tensorboard")
        for h in self.hooks:
            h.on_fit_start(self)
        self.model.train()
        bar = progress(total=self._total, desc="train", enabled=c.progress and self.rank == 0,
                       initial=min(self.state.step, self._total))
        self._t_window = time.perf_counter()
        while not self._done():
            n = source.num_batches(self.state.epoch)
            for batch in source.batches(self.state.epoch, self.state.batch):
                if self._micro_step(batch, n):
                    bar.update()
                    self._after_step(bar)
                    if self._done():
                        break
            if n is not None and self.state.batch >= n:
                self._end_epoch()
        bar.close()
        if self._window:
            self._flush_window()
        if self._valid is not None and self.state.last_eval != self.state.step:
            self.validate()
        self.save()
        if self._writer is not None:
            self._writer.close()
        for h in self.hooks:
            h.on_fit_end(self)
        return self.history

    def _micro_step(self, batch: Any, n: int | None) -> bool:
        k, b = self.config.accumulate, self.state.batch
        group = k if n is None else min(k, n - (b - b % k))
        stepped = self.train_step(batch, group, last=b % k == group - 1)
        self.state.batch += 1
        if stepped:
            self.state.step += 1
        return stepped

    def _after_step(self, bar: Any) -> None:
        c, s = self.config, self.state
        logged = None
        if s.step % c.log_every == 0 or s.step == self._total:
            logged = self._flush_window()
            if not bar.disable:
                bar.set_postfix(loss=f"{logged['loss']:.4g}")
        for h in self.hooks:
            h.on_step_end(self, logged)
        if self._valid is not None and c.eval_every and s.step % c.eval_every == 0:
            self.validate()
        if c.checkpoint_every and s.step % c.checkpoint_every == 0:
            self.save()

    def _end_epoch(self) -> None:
        self.state.epoch += 1
        self.state.batch = 0
        if self.scheduler is not None and self.scheduler_every == "epoch":
            self.scheduler.step()
        for h in self.hooks:
            h.on_epoch_end(self)
        if self._valid is not None and not self.config.eval_every:
            self.validate()


def load_weights(path: str | Path, module: nn.Module) -> None:
    """Load a run checkpoint's inference weights into ``module``: the EMA average when the
    run kept one, else the trained weights."""
    ck = load_checkpoint(path)
    ema = ck.get("ema")
    if ema is not None:
        weights = {k.removeprefix("module."): v for k, v in ema.items() if k != "n_averaged"}
    else:
        weights = ck.get("model")
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path}: holds no model weights")
    load_module_state(module, weights, path)


@contextlib.contextmanager
def _own_rng(device: torch.device) -> Iterator[None]:
    """Run a block without disturbing the training generators (exact resume)."""
    saved = np.random.get_state(), random.getstate()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        try:
            yield
        finally:
            np.random.set_state(saved[0])
            random.setstate(saved[1])


def _batch_len(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return len(batch) if batch.dim() else 1
    items = batch.values() if isinstance(batch, Mapping) else batch
    if isinstance(items, (list, tuple)) or isinstance(batch, Mapping):
        for b in items:
            if isinstance(b, torch.Tensor) and b.dim():
                return len(b)
    return 1


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _tensorboard(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("train.tensorboard=true needs the tensorboard package "
                        "(pip install tensorboard)") from None
    return SummaryWriter(str(folder))
