"""From config to a saved alignment and back: load the pair, seed, refine, evaluate, save."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dldiy_core import (
    CheckpointError,
    UserError,
    from_dict,
    load_checkpoint,
    save_checkpoint,
    save_config,
    to_dict,
)

from .align import Alignment, fit_seed, refine
from .config import MuseConfig
from .data import Embeddings, build_en_fr, cache_root, read_dictionary, write_dictionary
from .dictionary import identical_pairs, pairs_to_ids, precision_at_k
from .embeddings import normalize, read_npy
from .unsupervised import self_learning, similarity_seed

RUN_FILE = "alignment.safetensors"


@dataclass
class Pair:
    """Normalised source/target embeddings and the train/test dictionaries as word pairs."""

    src: Embeddings
    tgt: Embeddings
    train: list[tuple[str, str]]
    test: list[tuple[str, str]]


def load_pair(cfg: MuseConfig) -> Pair:
    folder = build_en_fr(cache_root() / cfg.data.pair)
    src = read_npy(folder / "en.npy", folder / "en.words.txt", cfg.data.max_src)
    tgt = read_npy(folder / "fr.npy", folder / "fr.words.txt", cfg.data.max_tgt)
    src.vectors = normalize(src.vectors, cfg.data.normalize)
    tgt.vectors = normalize(tgt.vectors, cfg.data.normalize)
    return Pair(src, tgt, read_dictionary(folder / "train.txt"),
                read_dictionary(folder / "test.txt"))


def seed_ids(cfg: MuseConfig, pair: Pair) -> np.ndarray:
    if cfg.mode == "supervised":
        return pairs_to_ids(pair.train, pair.src.words, pair.tgt.words)[0]
    return identical_pairs(pair.src.words, pair.tgt.words)


def align(cfg: MuseConfig, pair: Pair, show_progress: bool = True) -> Alignment:
    """Seed (supervised, identical strings or unsupervised), then refinements."""
    if cfg.mode == "unsupervised":
        u = cfg.unsupervised
        learned = self_learning(pair.src.vectors, pair.tgt.vectors,
                                similarity_seed(pair.src.vectors, pair.tgt.vectors, u.size),
                                u.vocab, u.keep, u.patience, u.max_iter, cfg.seed, show_progress)
        result = fit_seed(pair.src.vectors, pair.tgt.vectors, learned.dictionary)
        result.history = learned.history + result.history
    else:
        result = fit_seed(pair.src.vectors, pair.tgt.vectors, seed_ids(cfg, pair))
    r = cfg.refine
    return refine(pair.src.vectors, pair.tgt.vectors, result, r.iterations, r.mode, r.max_rank,
                  r.threshold, show_progress)


def evaluate(result: Alignment, pair: Pair) -> dict[str, float]:
    """P@1/5/10 by NN and CSLS on the test dictionary, with its coverage."""
    ids, coverage = pairs_to_ids(pair.test, pair.src.words, pair.tgt.words)
    mapped = result.map(pair.src.vectors)
    out: dict[str, float] = {"coverage": coverage}
    for method in ("nn", "csls"):
        for k, v in precision_at_k(mapped, pair.tgt.vectors, ids, method).items():
            out[f"{method}_{k}" if k != "queries" else "queries"] = v
    return out


def save_run(out: Path, cfg: MuseConfig, result: Alignment, pair: Pair) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.json")
    words = [(pair.src.words[s], pair.tgt.words[t]) for s, t in result.dictionary]
    write_dictionary(out / "dictionary.txt", words)
    return save_checkpoint(out / RUN_FILE, {
        "W": torch.from_numpy(result.W), "config": to_dict(cfg), "history": result.history,
        "dictionary": result.dictionary})


def load_run(run: str | Path) -> tuple[MuseConfig, Alignment]:
    path = Path(run) / RUN_FILE
    state = load_checkpoint(path)
    try:
        cfg = from_dict(MuseConfig, state["config"])
        result = Alignment(state["W"].numpy(), list(state["history"]),
                           np.asarray(state["dictionary"]))
    except (KeyError, AttributeError, UserError) as e:
        raise CheckpointError(f"{path}: not a muse alignment ({e})") from None
    return cfg, result

