"""Batch sources for the Trainer: a reproducible epoch order that can restart mid-epoch.

The order of epoch ``e`` depends only on ``(seed, e)``, so resuming needs just the epoch and
the number of batches already used; under DDP each process takes an equal share of every
global batch, so N processes see exactly the batches one process would.

Random numbers drawn in a dataset's ``__getitem__`` (augmentation) are reproducible too: each
item is fetched with python, numpy and torch generators seeded from ``(seed, epoch, index)``,
and the caller's generators are restored afterwards. So a resumed run, and a run with 0 or N
loader workers, see the same items and the same training randomness.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from .errors import UserError

MASK64 = (1 << 64) - 1


@runtime_checkable
class BatchSource(Protocol):
    """What the Trainer consumes. RL rollouts or generated batches can implement it directly."""

    def num_batches(self, epoch: int) -> int | None:
        """Batches in ``epoch`` (None: endless, stop by ``max_steps``)."""

    def batches(self, epoch: int, start: int) -> Iterator[Any]:
        """The batches of ``epoch`` from index ``start`` on."""


class TensorData(Dataset):
    """Like ``TensorDataset`` but fetches a whole batch with one index op per tensor
    (:meth:`get_batch`, the fast path :class:`DatasetBatches` uses)."""

    def __init__(self, *tensors: torch.Tensor):
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("TensorData needs tensors with the same first dimension")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[i] for t in self.tensors)

    def get_batch(self, idx: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(idx)
        return tuple(t[index] for t in self.tensors)


def mix_seed(*values: int) -> int:
    """A 64-bit seed from integers (splitmix64 steps): distinct tuples, unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & MASK64)) * 0xBF58476D1CE4E5B9 & MASK64
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & MASK64
        h ^= h >> 29
    return h


class _Items:
    """Fetch and collate one batch of a map-style dataset (in the main process or a worker).

    A dataset with ``get_batch(idx)`` returns a collated batch itself and must be deterministic
    given ``idx``; any other dataset (``Subset``, ``StackDataset``, ``random_split``, your own)
    is read item by item with ``__getitem__``, each under generators seeded from
    ``(seed, epoch, index)``.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed
        self.get_batch = getattr(dataset, "get_batch", None)

    def __call__(self, epoch: int, idx: np.ndarray) -> Any:
        if self.get_batch is not None:
            return self.get_batch(idx)
        saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
        try:
            items = []
            for i in idx.tolist():
                s = mix_seed(self.seed, epoch, i)
                torch.manual_seed(s)
                np.random.seed(s & 0xFFFFFFFF)
                random.seed(s)
                items.append(self.dataset[i])
        finally:
            torch.set_rng_state(saved[0])
            np.random.set_state(saved[1])
            random.setstate(saved[2])
        return default_collate(items)


class _EpochBatches(Dataset):
    """Batch ``b`` of one epoch as a dataset item (what loader workers fetch)."""

    def __init__(self, items: _Items, epoch: int, index: list[np.ndarray]):
        self.items, self.epoch, self.index = items, epoch, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, b: int) -> Any:
        return self.items(self.epoch, self.index[b])


def _identity(batch: Any) -> Any:
    return batch


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
            raise UserError("the data set is empty")
        self.dataset, self.n, self.batch_size = dataset, n, batch_size
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.rank, self.world, self.num_workers = rank, world, num_workers
        self.items = _Items(dataset, seed)

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

    def batches(self, epoch: int, start: int) -> Iterator[Any]:
        index = self._indices(epoch)[start:]
        if self.num_workers > 0:
            # item randomness is seeded per item, so which worker fetches a batch is irrelevant
            # its own generator: the loader's base seed must not consume the global RNG
            yield from DataLoader(_EpochBatches(self.items, epoch, index), batch_size=None,
                                  num_workers=self.num_workers, collate_fn=_identity,
                                  generator=torch.Generator().manual_seed(
                                      mix_seed(self.seed, epoch) >> 1))
        else:
            for idx in index:
                yield self.items(epoch, idx)
