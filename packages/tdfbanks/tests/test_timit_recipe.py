"""The TIMIT recipe on a small fixture in LDC layout (NIST SPHERE, lowercase names, no DEV
folder): train on TRAIN, dev = the standard 50 dev speakers, test = the 24 core test speakers,
the other TEST speakers and every SA sentence unused, PER on 39 folded phones."""

import json
from pathlib import Path

import numpy as np
from conftest import tone_utterance

from dldiy_core.testing import run_cli
from dldiy_tdfbanks.audio import write_sphere
from dldiy_tdfbanks.cli import main
from dldiy_tdfbanks.timit import scan

SPEAKERS = {"train": ["fcjf0", "mdac0", "mjsw1"],  # TRAIN speakers of DR1
            "test": ["mdab0", "faks0", "mabc0"]}  # core test, standard dev, neither


def ldc_timit(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split, speakers in SPEAKERS.items():
        for spk in speakers:
            folder = root / split / "dr1" / spk
            folder.mkdir(parents=True)
            for name in ("sa1", "si1", "sx2", "sx3", "sx4"):
                wave, segs = tone_utterance(rng)
                write_sphere(folder / f"{name}.wav", wave, 16_000)
                (folder / f"{name}.phn").write_text("".join(f"{s} {e} {p}\n"
                                                            for s, e, p in segs))
                (folder / f"{name}.txt").write_text(f"0 {len(wave)} tones\n")
    return root


def test_timit_recipe_end_to_end(tmp_path):
    root = ldc_timit(tmp_path / "TIMIT")
    found = scan(root)
    assert {u.speaker for u in found["test"]} == {"MDAB0"}
    assert {u.speaker for u in found["dev"]} == {"FAKS0"}
    assert len(found["train"]) == 12 and not any(u.wav.stem.lower().startswith("sa")
                                                 for us in found.values() for u in us)
    run = tmp_path / "run"
    result = run_cli(main, ["train", "--preset", "tiny", "--out", str(run), "--set",
                            f"data.corpus={root}", "--set", "model.frontend=mfsc", "--set",
                            "train.epochs=25", "--set", "model.channels=64"])
    assert result.code == 0, result.err
    out = tmp_path / "per.json"
    result = run_cli(main, ["eval", "--run", str(run), "--json", str(out)])
    assert result.code == 0, result.err
    per = json.loads(out.read_text())
    assert per["dev"]["utterances"] == per["test"]["utterances"] == 4
    assert per["dev"]["per"] < 0.5 and per["test"]["per"] < 0.5
