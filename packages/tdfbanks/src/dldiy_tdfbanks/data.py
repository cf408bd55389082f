"""Utterances in memory, padded batches for CTC, and length-bucketed batch order."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dldiy_core import DatasetBatches, UserError, data_cache, progress

from .audio import SAMPLE_RATE
from .phones import TIMIT61
from .timit import Utterance, scan

log = logging.getLogger(__name__)
PHONE_ID = {p: i + 1 for i, p in enumerate(TIMIT61)}  # 0 is the CTC blank


def cache_root() -> Path:
    return data_cache("tdfbanks")


def default_corpus() -> Path:
    """Where ``data build`` writes the synthesized corpus."""
    return cache_root() / "corpus"


@dataclass
class SpeechSet(torch.utils.data.Dataset):
    """Waveforms ``[T_i]`` (float32, 16 kHz) and 61-phone label ids ``[L_i]`` (1..61)."""

    ids: list[str]
    waves: list[np.ndarray]
    labels: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.waves)

    def seconds(self) -> float:
        return sum(len(w) for w in self.waves) / SAMPLE_RATE

    def __getitem__(self, i: int):
        return self.get_batch([i])

    def get_batch(self, idx) -> tuple[torch.Tensor, ...]:
        """``(waves [B, T_max] zero-padded, lengths [B], targets [sum L], target_lengths [B])``."""
        idx = [int(i) for i in idx]
        lengths = torch.tensor([len(self.waves[i]) for i in idx])
        waves = torch.zeros(len(idx), int(lengths.max()))
        for row, i in enumerate(idx):
            waves[row, : lengths[row]] = torch.from_numpy(self.waves[i])
        targets = torch.from_numpy(np.concatenate([self.labels[i] for i in idx]))
        return waves, lengths, targets, torch.tensor([len(self.labels[i]) for i in idx])


def read_utterance(utt: Utterance, resample: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Audio ``[T]`` and phone ids ``[L]`` (checked against the audio length)."""
    wave, phones = utt.read(resample)
    return wave, np.array([PHONE_ID[p] for _, _, p in phones], dtype=np.int64)


def load_split(corpus: str | Path, split: str, max_seconds: float = 8.0, max_hours: float = 0.0,
               resample: bool = False) -> SpeechSet:
    """The utterances of one split, skipping (and counting) those longer than ``max_seconds``.

    With ``max_hours``, the first utterances of a round robin over speakers up to that much
    audio (every speaker contributes, and every run gets the same subset)."""
    utts = scan(corpus)[split]
    if not utts:
        raise UserError(f"{corpus}: the {split} split is empty")
    if max_hours:
        turn: Counter = Counter()
        order = []
        for u in utts:  # (k, u): u is its speaker's k-th utterance
            order.append((turn[u.speaker], u))
            turn[u.speaker] += 1
        utts = [u for _, u in sorted(order, key=lambda x: x[0])]
    ids, waves, labels, too_long, total = [], [], [], 0, 0.0
    for utt in progress(utts, desc=f"read {split}"):
        wave, lab = read_utterance(utt, resample)
        if len(wave) > max_seconds * SAMPLE_RATE:
            too_long += 1
            continue
        ids.append(utt.id)
        waves.append(wave)
        labels.append(lab)
        total += len(wave) / SAMPLE_RATE
        if max_hours and total >= max_hours * 3600:
            break  # the utterance that reaches the limit is kept
    if too_long:
        log.warning("%s/%s: skipped %d utterances longer than %.1f s", corpus, split, too_long,
                    max_seconds)
    if not waves:
        raise UserError(f"{corpus}: no {split} utterance is at most {max_seconds} s long "
                        "(data.max_seconds)")
    if max_hours and total < max_hours * 3600:
        log.warning("%s/%s: data.train_hours=%g but only %.3f h are usable: all of it is used",
                    corpus, split, max_hours, total / 3600)
    log.info("%s: %d utterances, %.2f h", split, len(waves), total / 3600)
    return SpeechSet(ids, waves, labels)


class BucketBatches(DatasetBatches):
    """Shuffled batches of similar-length utterances (less padding): each group of 50 batches
    of a random order is sorted by length, cut into batches, and the batches are shuffled."""

    GROUP = 50

    def _indices(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch, 1])
        lengths = np.array([len(w) for w in self.dataset.waves])
        order = rng.permutation(self.n)
        span = self.batch_size * self.GROUP
        batches = []
        for g in range(0, self.n, span):
            chunk = order[g:g + span]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk),
                                                                    self.batch_size)]
        batches = [b for b in batches if len(b) == self.batch_size or not self.drop_last]
        batches = [b[:len(b) - len(b) % self.world] for b in batches]
        batches = [b for b in batches if len(b)]
        return [batches[i][self.rank::self.world] for i in rng.permutation(len(batches))]

    def num_batches(self, epoch: int) -> int:
        return len(self._indices(epoch))
