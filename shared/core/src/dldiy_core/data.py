"""Batch sources for the Trainer: a reproducible epoch order that can restart mid-epoch.

The order of epoch ``e`` depends only on ``(seed, e)``, so resuming needs just the epoch and
the number of batches already used; under DDP each process takes an equal share of every
global batch, so N processes see exactly the batches one process would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from .errors import UserError


@runtime_checkable
class BatchSource(Protocol):
    """What the Trainer consumes. RL rollouts or generated batches can implement it directly."""

    def num_batches(self, epoch: int) -> int | None:
        """Batches in ``epoch`` (None: endless, stop by ``max_steps``)."""

    def batches(self, epoch: int, start: int) -> Iterator[Any]:
        """The batches of ``epoch`` from index ``start`` on."""


class TensorData(Dataset):
    """Like ``TensorDataset`` but fetches a whole batch with one index op per tensor."""

    def __init__(self, *tensors: torch.Tensor):
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("TensorData needs tensors with the same first dimension")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[i] for t in self.tensors)

    def __getitems__(self, idx: list[int] | np.ndarray) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(idx)
        return tuple(t[index] for t in self.tensors)


class DatasetBatches:
    """Shuffled (or ordered) global batches of a map-style dataset, sharded over processes.

    Args:
        batch_size: global batch; each of ``world`` processes gets ``batch_size // world``.
        drop_last: drop a final partial batch (with several processes a final batch is always
            trimmed to a multiple of ``world`` so every process averages the same count).
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = False, rank: int = 0, world: int = 1, num_workers: int = 0):
        if batch_size % world:
            raise UserError(f"batch size {batch_size} must be divisible by the {world} processes")
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            raise UserError("the training set is empty")
        self.dataset, self.n, self.batch_size = dataset, n, batch_size
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.rank, self.world, self.num_workers = rank, world, num_workers
        self._fetch_many = getattr(dataset, "__getitems__", None)

    def num_batches(self, epoch: int) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + int(rest >= self.world and not self.drop_last)

    def _indices(self, epoch: int) -> list[np.ndarray]:
        order = (np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle
                 else np.arange(self.n))
        out = []
        for b in range(self.num_batches(epoch)):
            batch = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = batch[:len(batch) - len(batch) % self.world]
            out.append(batch[self.rank::self.world])
        return out

    def _collate(self, items: Any) -> Any:
        return items if self._fetch_many else default_collate(items)

    def batches(self, epoch: int, start: int) -> Iterator[Any]:
        index = self._indices(epoch)[start:]
        if self.num_workers > 0:
            # its own generator: workers' seeds must not consume the global RNG (exact resume)
            seed = int(np.random.default_rng([self.seed, epoch, 2]).integers(2**62))
            yield from DataLoader(self.dataset, batch_sampler=[b.tolist() for b in index],
                                  num_workers=self.num_workers, collate_fn=self._collate,
                                  generator=torch.Generator().manual_seed(seed))
        elif self._fetch_many:
            for idx in index:
                yield self._fetch_many(idx)
        else:
            for idx in index:
                yield default_collate([self.dataset[int(i)] for i in idx])
