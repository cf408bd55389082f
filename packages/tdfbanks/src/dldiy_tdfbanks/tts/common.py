"""What every engine returns: a :class:`Spoken` sentence (samples at the engine's rate and its
phones with times), or a :class:`BadItem` saying why the sentence cannot be used."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Segments = list[tuple[float, float, str]]
"""``[(start_s, end_s, phone)]``, contiguous and increasing."""


@dataclass
class Spoken:
    """One synthesized sentence: ``audio`` float32 ``[T]`` at ``rate`` Hz, engine phones."""

    audio: np.ndarray
    rate: int
    phones: Segments


class BadItem(Exception):
    """An utterance that cannot be used; ``reason`` is a short key counted in the summary."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail

