"""From config to a saved alignment and back: load the pair, seed, refine, evaluate, save."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dldiy_core import (
    CheckpointError,
    UserError,
    add_run_marker,
    atomic_path,
    check_input,
    from_dict,
    load_checkpoint,
    save_checkpoint,
    to_dict,
)

from .adversarial import adversarial
from .align import Alignment, fit_seed, refine, vecmap_final
from .config import MuseConfig
from .dictionary import identical_pairs, pairs_to_ids, precision_at_k
from .dictionary_files import read_dictionary
from .embeddings import Embeddings, normalize, read_embeddings, read_npy, reduce_dim
from .isomorphism import isomorphism
from .pair_cache import cache_root
from .pairs import PAIRS, TRANSLATION_PAIRS, build_pair
from .unsupervised import self_learning, similarity_seed

RUN_FILE = "alignment.safetensors"
RUN_FILES = (RUN_FILE, "config.json", "dictionary.txt")
"""What ``align`` writes in its run folder (the checkpoint holds the config and dictionary
too; the other two are for people)."""
add_run_marker(RUN_FILE)  # a folder holding one is a run: outputs never replace it
log = logging.getLogger(__name__)


@dataclass
class Pair:
    """Normalised source/target embeddings and the train/test dictionaries as word pairs."""

    src: Embeddings
    tgt: Embeddings
    train: list[tuple[str, str]]
    test: list[tuple[str, str]]


def pair_name(cfg: MuseConfig) -> str:
    """``data.pair``, or ``SRC -> TGT`` for your own files."""
    return f"{cfg.data.src} -> {cfg.data.tgt}" if cfg.data.src else cfg.data.pair


def load_pair(cfg: MuseConfig) -> Pair:
    """The configured pair: a built one (``data.pair``) or your files (``data.src``,
    ``data.tgt``), normalised; ``data.train``/``data.test`` replace its dictionaries."""
    d = cfg.data
    if d.src or d.tgt:
        if not (d.src and d.tgt):
            raise UserError("your own embeddings need both --src and --tgt")
        src, tgt = read_embeddings(d.src, d.max_src), read_embeddings(d.tgt, d.max_tgt)
        train = test = []
    else:
        folder = build_pair(d.pair)
        s, t = PAIRS[d.pair]
        src = read_npy(folder / f"{s}.npy", folder / f"{s}.words.txt", d.max_src)
        tgt = read_npy(folder / f"{t}.npy", folder / f"{t}.words.txt", d.max_tgt)
        train, test = (read_dictionary(folder / f) for f in ("train.txt", "test.txt"))
    train = _dictionary(d.train, src, tgt) if d.train else train
    test = _dictionary(d.test, src, tgt) if d.test else test
    src.vectors = normalize(src.vectors, d.normalize)
    tgt.vectors = normalize(tgt.vectors, d.normalize)
    if d.dims:
        src, tgt = (Embeddings(e.words, normalize(reduce_dim(e, d.dims).vectors, "unit"))
                    for e in (src, tgt))
    return Pair(src, tgt, train, test)


def data_files(cfg: MuseConfig) -> list[Path]:
    """The files (or the built pair's folder) ``load_pair`` reads: outputs may not replace
    them."""
    d = cfg.data
    if not (d.src or d.tgt):
        files = [cache_root() / d.pair]
    else:
        files = [Path(f) for f in (d.src, d.tgt) if f]
        files += [f.with_suffix(".words.txt") for f in files if f.suffix == ".npy"]
    return files + [Path(f) for f in (d.train, d.test) if f]


def _dictionary(path: str, src: Embeddings, tgt: Embeddings) -> list[tuple[str, str]]:
    """A dictionary file's pairs; an error when none is in the vocabularies, and the others
    skipped and counted."""
    pairs = read_dictionary(path)
    if not pairs:
        raise UserError(f"{path}: no 'source target' pairs")
    _, coverage = pairs_to_ids(pairs, src.words, tgt.words)
    if coverage == 0:
        raise UserError(f"{path}: none of its {len(pairs)} pairs has both words in the "
                        "vocabularies")
    if coverage < 1:
        log.warning("%s: %d of %d pairs have a word outside the vocabularies (skipped)", path,
                    round(len(pairs) * (1 - coverage)), len(pairs))
    return pairs


def seed_ids(cfg: MuseConfig, pair: Pair) -> np.ndarray:
    if cfg.mode == "supervised":
        if not pair.train:
            raise UserError("--mode supervised needs a training dictionary (--train FILE)")
        return pairs_to_ids(pair.train, pair.src.words, pair.tgt.words)[0]
    if not cfg.data.src and cfg.data.pair not in TRANSLATION_PAIRS:  # identity is gold there
        raise UserError(f"--mode identical on {cfg.data.pair} would train on the test "
                        "dictionary; use supervised or unsupervised")
    return identical_pairs(pair.src.words, pair.tgt.words)


def initialize(cfg: MuseConfig, pair: Pair, show_progress: bool = True) -> Alignment:
    """The map before refinement: Procrustes on a seed dictionary (supervised, identical
    strings), or an unsupervised initialisation (``init``: adversarial or similarity)."""
    if cfg.mode == "unsupervised" and cfg.init == "adversarial":
        result = adversarial(pair.src.vectors, pair.tgt.vectors, cfg.adversarial, cfg.seed,
                             show_progress)
    elif cfg.mode == "unsupervised":
        u = cfg.unsupervised
        learned = self_learning(pair.src.vectors, pair.tgt.vectors,
                                similarity_seed(pair.src.vectors, pair.tgt.vectors, u.size),
                                u.vocab, u.keep, u.patience, u.max_iter, cfg.seed, show_progress)
        result = fit_seed(pair.src.vectors, pair.tgt.vectors, learned.dictionary)
        result.history = learned.history + result.history
    else:
        result = fit_seed(pair.src.vectors, pair.tgt.vectors, seed_ids(cfg, pair))
    return result


def refine_from(cfg: MuseConfig, pair: Pair, init: Alignment,
                show_progress: bool = True) -> Alignment:
    """``cfg.refine``'s Procrustes refinements from ``init``; the best map by the criterion."""
    r = cfg.refine
    out = refine(pair.src.vectors, pair.tgt.vectors, init, r.iterations, r.mode, r.max_rank,
                 r.threshold, show_progress, method=r.method, knn=r.knn, beta=r.beta)
    steps = r.vecmap_steps()
    return vecmap_final(pair.src.vectors, pair.tgt.vectors, out, steps) if steps.active else out


def align(cfg: MuseConfig, pair: Pair, show_progress: bool = True) -> Alignment:
    """Initialisation, then refinements; the map kept is the best by the criterion."""
    return refine_from(cfg, pair, initialize(cfg, pair, show_progress), show_progress)


def evaluate(result: Alignment, pair: Pair) -> dict[str, float]:
    """P@1/5/10 by NN and CSLS on the test dictionary, with its coverage."""
    if not pair.test:
        raise UserError("no test dictionary to evaluate on (--test FILE)")
    ids, coverage = pairs_to_ids(pair.test, pair.src.words, pair.tgt.words)
    mapped = result.map(pair.src.vectors)
    out: dict[str, float] = {"coverage": coverage}
    for method in ("nn", "csls"):
        for k, v in precision_at_k(mapped, result.map_tgt(pair.tgt.vectors), ids,
                                   method).items():
            out[f"{method}_{k}" if k != "queries" else "queries"] = v
    return out


def pair_isomorphism(pair: Pair, top: int = 4000, k: int = 10) -> dict[str, float]:
    """``isomorphism`` of the pair on its train + test dictionaries (a diagnosis only)."""
    ids, _ = pairs_to_ids(pair.train + pair.test, pair.src.words, pair.tgt.words)
    try:
        return isomorphism(pair.src.vectors, pair.tgt.vectors, ids, top, k)
    except ValueError as e:
        raise UserError(str(e)) from None


def save_run(out: Path, cfg: MuseConfig, result: Alignment, pair: Pair) -> Path:
    """Write the run's files (:data:`RUN_FILES`) into ``out``: the text files go to temporary
    files, then the checkpoint is written (atomically), then the text files are renamed into
    place, so a failure while writing (disk full...) leaves the folder as it was. Check ``out``
    first (``prepare_out_dir``)."""
    words = [(pair.src.words[s], pair.tgt.words[t]) for s, t in result.dictionary]
    for s, t in words:
        if len(s.split()) != 1 or len(t.split()) != 1:
            raise UserError(f"{out / 'dictionary.txt'}: pair {(s, t)!r} is not two single words")
    state = {"W": torch.from_numpy(result.W), "config": to_dict(cfg), "history": result.history,
             "dictionary": result.dictionary}
    if result.T is not None:  # vecmap's steps map the target too
        state["T"] = torch.from_numpy(result.T)
    with contextlib.ExitStack() as stack:  # text files renamed on exit, after the checkpoint
        for name, text in (("dictionary.txt", "".join(f"{s} {t}\n" for s, t in words)),
                           ("config.json", json.dumps(to_dict(cfg), indent=2, sort_keys=True)
                            + "\n")):
            stack.enter_context(atomic_path(out / name)).write_text(text, encoding="utf-8")
        save_checkpoint(out / RUN_FILE, state)  # a failure here: nothing renamed
    return out / RUN_FILE


def run_inputs(run: str | Path) -> list[Path]:
    """The files of run folder ``run`` that exist (to protect them as inputs)."""
    return [Path(run) / f for f in RUN_FILES if (Path(run) / f).is_file()]


def load_run(run: str | Path, register: bool = True) -> tuple[MuseConfig, Alignment]:
    """A run folder written by ``align``: its config and alignment. ``register``: protect the
    run's files as inputs of the command (False for ``refine``, which rewrites them)."""
    check_input(run, "run", folder=True, register=False)
    path = Path(run) / RUN_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not found (is {run} a folder written by align?)")
    if register:
        for f in run_inputs(run):
            check_input(f, "run file")
    state = load_checkpoint(path)
    try:
        cfg = from_dict(MuseConfig, state["config"])
        W = state["W"].numpy()
        T = state["T"].numpy() if "T" in state else None
        dictionary = np.asarray(state["dictionary"], dtype=np.int64).reshape(-1, 2)
        history = list(state["history"])
        if not all(isinstance(h, dict) for h in history):
            raise ValueError("history records are not objects")
    except (KeyError, AttributeError, TypeError, ValueError, UserError) as e:
        raise CheckpointError(f"{path}: not a muse alignment ({e})") from None
    for M in (W,) if T is None else (W, T):
        if M.ndim != 2 or M.shape[0] != M.shape[1] or not np.isfinite(M).all():
            raise CheckpointError(f"{path}: not a muse alignment (a map is {tuple(M.shape)}"
                                  f"{'' if np.isfinite(M).all() else ', not finite'}; expected "
                                  "a finite square matrix)")
    if T is not None and T.shape != W.shape:
        raise CheckpointError(f"{path}: not a muse alignment (source map {tuple(W.shape)}, "
                              f"target map {tuple(T.shape)})")
    return cfg, Alignment(W, history, dictionary, T)


def check_fits(run: str | Path, result: Alignment, pair: Pair) -> None:
    """The run's map and dictionary fit the pair it was read with (files unchanged since)."""
    path = Path(run) / RUN_FILE
    d = pair.src.vectors.shape[1]
    if result.W.shape != (d, d) or pair.tgt.vectors.shape[1] != d:
        raise UserError(f"{path}: its {result.W.shape[0]}-d map does not fit the vectors it "
                        f"was run on ({d}-d source, {pair.tgt.vectors.shape[1]}-d target): "
                        "were they changed since align?")
    ids = result.dictionary
    if len(ids) and (ids.min() < 0 or ids[:, 0].max() >= len(pair.src.words)
                     or ids[:, 1].max() >= len(pair.tgt.words)):
        raise UserError(f"{path}: its dictionary names words beyond the vocabularies it was "
                        "run on: were they changed since align?")
