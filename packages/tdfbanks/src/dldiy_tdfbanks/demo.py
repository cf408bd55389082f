"""``dldiy-tdfbanks demo``: a small synthesized corpus, MFSC against learned TD-filterbanks,
filter plots, example utterances with their decoded phones, in one report."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from dldiy_core import Report, check_outputs, prepare_out_dir, to_dict

from .audio import SAMPLE_RATE, load_audio
from .config import Config
from .data import cache_root
from .evaluate import transcribe
from .experiment import add_correlation, add_experiment, check_folder_path, load_data
from .phones import TIMIT61, fold
from .train import check_config

REAL_SPEECH = Path("/usr/share/pocketsphinx/test/data")
"""Debian's pocketsphinx-testdata: a few real recordings (no phone labels)."""


def demo_corpus() -> Path:
    """A 10-minute training corpus (plus dev and test voices), built once and cached."""
    from .corpus import CorpusConfig, build_corpus

    path = cache_root() / "demo-corpus"
    if not (path / "corpus.json").exists():
        build_corpus(path, CorpusConfig(train_hours=1 / 6, dev_minutes=3.0, test_minutes=3.0,
                                        speaker_minutes=1.0))
    return path


def real_speech() -> list[np.ndarray]:
    files = sorted(REAL_SPEECH.glob("*/*.wav")) if REAL_SPEECH.is_dir() else []
    return [load_audio(f, resample=True) for f in files]


def demo(cfg: Config, out: Path, force: bool = False) -> Path:
    """The demo report in ``out``. A rerun reuses the models it trained with the same settings
    (``force``: trains them again); a folder holding another run or an input is refused."""
    t0 = time.perf_counter()
    check_config(cfg)
    inputs = [cfg.data.corpus] if cfg.data.corpus else []
    check_outputs([out], inputs, force=force)
    check_folder_path(out)
    if not cfg.data.corpus:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data,
                                                                corpus=str(demo_corpus())))
    data = load_data(cfg)
    prepare_out_dir(out, force=True)  # checked above: create it once the inputs are read
    r = Report(out, "TD-filterbanks: learning a mel filterbank from the waveform")
    r.section("A mel filterbank computed in the time domain")
    if speech := real_speech():
        add_correlation(r, speech, "real speech, pocketsphinx test recordings")
    add_correlation(r, data["test"].waves[:30], "synthesized test speech")
    r.section("Phone recognition: MFSC vs TD-filterbanks")
    # One runs folder per settings: a rerun reuses its models, other settings train anew.
    digest = hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()
    runs = out / "runs" / digest[:12]
    results = add_experiment(r, cfg, out, data, runs, resume=not force, force=force)
    r.section("Examples (test voices)")
    from .experiment import load_run

    best = min(results, key=lambda k: results[k]["dev_per_mean"])
    model = load_run(out / results[best]["folder"], best=True)[1]
    hyps = transcribe(model, data["test"])
    for i in np.linspace(0, len(data["test"]) - 1, 3).astype(int):
        ref = fold([TIMIT61[c - 1] for c in data["test"].labels[i]])
        r.audio(f"example_{i}", data["test"].waves[i], SAMPLE_RATE,
                caption=f"{data['test'].ids[i]} - reference: {' '.join(ref)} - {best}: "
                        f"{' '.join(fold(hyps[i]))}")
    r.text(f"Total demo time: {time.perf_counter() - t0:.0f} s.")
    return r.write()
