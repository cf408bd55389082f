"""Catalyzer training: triplet rank loss + lambda * KoLeo (Sablayrolles et al., eq. 5).

Each epoch draws one positive per training point among its ``rank_positive`` nearest training
points in input space, itself included as in the original code (:func:`positive_pool`), and
takes as negative its ``rank_negative``-th nearest other point in the current output space
(quantized when training end to end), then runs SGD over the epoch in random order. Self is
removed from every search by id, never by position (:func:`without_self`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dldiy_core import (
    Trainer,
    UserError,
    atomic_path,
    broadcast,
    rank,
    seed_everything,
    to_dict,
    world_size,
)

from .config import CatalyzerConfig, check_training_size
from .data import Splits, exact_knn, load_data
from .koleo import koleo_loss
from .lattice import make_quantizer, straight_through
from .models import Catalyzer, embed, gather_rows

log = logging.getLogger(__name__)


class TripletBatches:
    """A core ``BatchSource`` of ``(anchor, positive, negative)`` input batches ``[B, d]``.

    Negatives are mined at the start of each epoch with the network of that moment; they are
    part of the checkpoint (``state_dict``), so a resumed epoch uses the same triplets.
    """

    def __init__(self, xt: np.ndarray, neighbors: np.ndarray, net: Catalyzer,
                 cfg: CatalyzerConfig, quantize, rank: int = 0, world: int = 1):
        self.xt, self.neighbors, self.net, self.cfg = xt, neighbors, net, cfg
        self.quantize = quantize
        self.rank, self.world = rank, world
        self.batch = cfg.train.batch_size
        if self.batch % world or self.batch < 2 * world:
            raise UserError(f"train.batch_size={self.batch}: must be a multiple of the {world} "
                            "processes with at least 2 samples each (KoLeo needs pairs)")
        self.epoch, self.positives, self.negatives = -1, None, None

    def num_batches(self, epoch: int) -> int:
        return len(self.xt) // self.batch

    def mine(self, epoch: int) -> None:
        """Positives (seeded by epoch) and negatives (ranked in output space)."""
        pool = positive_pool(self.neighbors)  # self + rank_positive - 1 nearest others
        n, k = pool.shape
        rng = np.random.default_rng([self.cfg.train.seed, epoch, 1])
        self.positives = pool[np.arange(n), rng.integers(0, k, size=n)]
        y = embed(self.net, self.xt).numpy()
        base = self.quantize(y) if self.quantize is not None else y
        # rank r among the *other* points: the search also finds the point (a quantized point
        # need not be its own nearest), removed by id; a copy: the column of the search's
        # [n, k] result is a strided view, and a collective sends a tensor's storage
        r = self.cfg.loss.rank_negative
        negatives = np.ascontiguousarray(without_self(exact_knn(y, base, r + 1), r)[:, -1],
                                         dtype=np.int64)
        # under DDP every process takes process 0's negatives (one mining for all)
        self.negatives = broadcast(torch.from_numpy(negatives)).numpy()
        self.epoch = epoch

    def batches(self, epoch: int, start: int) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.epoch != epoch:
            self.mine(epoch)
        order = np.random.default_rng([self.cfg.train.seed, epoch]).permutation(len(self.xt))
        for b in range(start, self.num_batches(epoch)):
            idx = np.sort(order[b * self.batch:(b + 1) * self.batch][self.rank::self.world])
            yield tuple(torch.from_numpy(np.asarray(self.xt[i], dtype=np.float32))
                        for i in (idx, self.positives[idx], self.negatives[idx]))

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "positives": self.positives, "negatives": self.negatives}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.positives, self.negatives = (state["epoch"], state["positives"],
                                                      state["negatives"])


def triplet_loss(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor,
                 margin: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``max(0, ||a - p|| - ||a - n|| + margin)`` averaged; also the offending fraction."""
    dist = lambda u, v: ((u - v).pow(2).sum(dim=1) + 1e-12).sqrt()  # noqa: E731
    per_point = torch.relu(dist(a, p) - dist(a, n) + margin)
    return per_point.mean(), (per_point > 0).float().mean()


def make_loss(cfg: CatalyzerConfig, quantize):
    def loss_fn(net: nn.Module, batch):
        a, p, n = (net(x) for x in batch)
        if quantize is not None:
            p, n = straight_through(p, quantize), straight_through(n, quantize)
        triplet, offending = triplet_loss(a, p, n, cfg.loss.margin)
        # KoLeo over the whole batch when it is split over processes (same loss as one process)
        koleo = koleo_loss(gather_rows(a))
        loss = triplet + cfg.loss.lambda_koleo * koleo
        return loss, {"triplet": triplet.detach(), "koleo": koleo.detach(),
                      "offending": offending}
    return loss_fn


def lr_schedule(cfg: CatalyzerConfig, steps_per_epoch: int):
    """Per-step multiplier: ``lr_schedule[i]`` for the i-th equal part of the epochs."""
    rates, epochs = cfg.lr_schedule, max(cfg.train.epochs, 1)

    def factor(step: int) -> float:
        part = min(step // steps_per_epoch * len(rates) // epochs, len(rates) - 1)
        return rates[part] / rates[0]
    return factor


def without_self(ids: np.ndarray, k: int, first: int = 0) -> np.ndarray:
    """``ids: [n, >= k + 1]`` search results of points ``first .. first + n - 1`` against a set
    holding them -> ``[n, k]``: each row without the point itself, removed by id wherever the
    search put it (a duplicate of the point may come first, at the same distance), or the
    last column dropped when the point is not among the results (more than ``k`` duplicates)."""
    n = len(ids)
    is_self = ids[:, :k + 1] == (first + np.arange(n))[:, None]
    keep = ~is_self
    keep[~is_self.any(1), k] = False  # self not found: drop the (k + 1)-th result instead
    return ids[:, :k + 1][keep].reshape(n, k)


def input_neighbors(splits: Splits, k: int) -> np.ndarray:
    """``[n, k]`` true nearest neighbours of each training point among the *other* points,
    self removed by id (:func:`without_self`); cached beside the splits."""
    if k == 0:  # rank_positive 1: the positive is the point itself
        return np.empty((len(splits.xt), 0), dtype=np.int64)
    cache = splits.folder / f"train_knn{k}-others.npy"
    if cache.exists():
        try:
            ids = np.load(cache, allow_pickle=False)
            if ids.shape == (len(splits.xt), k) and ids.dtype.kind == "i" and \
                    ids.min(initial=0) >= 0 and ids.max(initial=0) < len(splits.xt):
                return ids
        except (OSError, ValueError, EOFError):
            pass
        log.warning("%s: damaged neighbour cache, computing it again", cache)
    ids = without_self(exact_knn(splits.xt, splits.xt, k + 1), k)
    if (splits.folder / "meta.json").exists():
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.save(f, ids)
    return ids


def positive_pool(neighbors: np.ndarray) -> np.ndarray:
    """``[n, k]`` the candidates each point's positive is drawn from: the point itself and
    its ``k - 1`` nearest other points (``neighbors: [n, >= k - 1]``, self excluded).

    The original code (``train.py`` of facebookresearch/spreadingvectors) draws the positive
    among the ``rank_positive`` results of an exact search of the training set in itself; such
    a search returns the point itself first (distance 0), so one draw in ``rank_positive`` is
    the anchor itself, whose triplet term only pushes the negative away. Self is *included*
    here to train the same loss: the pool is the point + its ``rank_positive - 1`` nearest
    others, with self placed by id rather than assumed to be the search's first result (a
    duplicate of the point can come first, and would otherwise appear twice or push a true
    neighbour out)."""
    n, k = len(neighbors), neighbors.shape[1] + 1
    return np.concatenate([np.arange(n, dtype=neighbors.dtype)[:, None],
                           neighbors[:, :k - 1]], axis=1)


def build_trainer(cfg: CatalyzerConfig, out: str | Path | None, splits: Splits
                  ) -> tuple[Trainer, TripletBatches]:
    try:  # the config checked data.n_train; splits given directly may be of another size
        check_training_size(cfg, len(splits.xt), "the training set")
    except ValueError as e:
        raise UserError(str(e)) from None
    seed_everything(cfg.train.seed)
    net = Catalyzer(splits.d, cfg.model.d_out, cfg.model.hidden)
    quantize = make_quantizer(cfg.loss.quantizer, cfg.model.d_out)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr_schedule[0], momentum=cfg.momentum)
    log.info("input-space neighbours of %d training vectors", len(splits.xt))
    neighbors = input_neighbors(splits, cfg.loss.rank_positive - 1)
    # rank/world come from torchrun's environment (the process group starts with the Trainer)
    source = TripletBatches(splits.xt, neighbors, net, cfg, quantize, rank(), world_size())
    steps = max(source.num_batches(0), 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_schedule(cfg, steps))
    trainer = Trainer(net, opt, make_loss(cfg, quantize), cfg.train, out, scheduler=sched,
                      run_config=to_dict(cfg), stateful={"triplets": source})
    return trainer, source


def binary_config(cfg: CatalyzerConfig, bits: int = 64) -> CatalyzerConfig:
    """The same settings for the binary catalyzer: a ``bits``-d output coded by its signs."""
    return dataclasses.replace(cfg, codes="binary",
                               model=dataclasses.replace(cfg.model, d_out=bits))


def train(cfg: CatalyzerConfig, out: str | Path | None, resume: bool = False,
          splits: Splits | None = None, force: bool = False) -> Trainer:
    """Build the splits (cached), train, return the trainer (model in ``trainer.model``).

    ``out`` holding a run is refused unless ``resume`` (continue it) or ``force`` (replace it).
    """
    splits = splits or load_data(cfg.data)
    trainer, source = build_trainer(cfg, out, splits)
    trainer.fit(source, resume=resume, force=force)
    return trainer
