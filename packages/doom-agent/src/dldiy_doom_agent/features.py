"""Game features from the labels buffer (paper, "Game feature augmentation").

During training the engine tells what is on screen: each visible object has a label with its
``object_category`` and bounding box. A feature is 1 when an object of its categories covers
at least ``min_pixels`` pixels; the action network learns to predict these from pixels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .scenarios import FEATURE_CATEGORIES, FEATURES


def game_features(labels: Iterable[Any], min_pixels: int = 12) -> np.ndarray:
    """``labels``: vizdoom ``Label`` objects of one state -> ``[len(FEATURES)]`` uint8 0/1."""
    out = np.zeros(len(FEATURES), dtype=np.uint8)
    for label in labels:
        category = getattr(label, "object_category", "")
        if label.width * label.height < min_pixels:
            continue
        for i, name in enumerate(FEATURES):
            if category in FEATURE_CATEGORIES[name]:
                out[i] = 1
    return out
