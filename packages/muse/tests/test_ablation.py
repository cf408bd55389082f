"""``dldiy-muse ablate``: one setting changed at a time, scored on a validation split carved
from the training dictionary (never the test one), resumable."""

import json

from test_embeddings_cli import _user_pair

from dldiy_core.testing import run_cli
from dldiy_muse.ablation import VARIANTS, orthogonality_error, validation_split
from dldiy_muse.cli import main

TINY = ["--set", "adversarial.hidden=16", "--set", "adversarial.epochs=1",
        "--set", "adversarial.epoch_size=20", "--set", "adversarial.dis_most_frequent=600",
        "--set", "adversarial.criterion_words=600", "--set", "adversarial.log_every=10",
        "--set", "refine.iterations=1", "--set", "refine.max_rank=600"]


def test_validation_split_holds_out_whole_sources():
    train = [(f"s{i // 2}", f"t{i}") for i in range(200)]  # 100 sources, 2 translations each
    rest, val = validation_split(train, 30, seed=1)
    assert len({s for s, _ in val}) == 30 and len(rest) + len(val) == 200
    assert not {s for s, _ in val} & {s for s, _ in rest}
    assert validation_split(train, 30, seed=1) == (rest, val)


def test_orthogonality_error():
    import numpy as np

    q = np.linalg.qr(np.random.default_rng(0).normal(size=(8, 8)))[0]
    assert orthogonality_error(q) < 1e-5 and orthogonality_error(2 * q) > 1


def test_ablate_scores_on_validation_and_resumes(tmp_path):
    files = _user_pair(tmp_path, n=800)
    dicts = ["--train", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test.txt")]
    out = tmp_path / "ablation.json"
    args = ["ablate", *files, *dicts, *TINY, "--validation", "100", "--json", str(out)]
    result = run_cli(main, [*args, "--variants", "baseline"])
    assert result.code == 0, result.err
    fig = json.loads(out.read_text())["figures"]
    ref = fig["references"]["unit,center,unit"]
    # the reference is Procrustes on the training pairs left after the held-out 100 sources
    assert ref["validation_queries"] == 100 and ref["train_pairs"] == 300
    assert ref["csls_p@1"] > 0.9  # a planted pair: supervised finds it
    first = fig["variants"]["baseline"]["runs"][0]
    assert set(first["init"]) >= {"csls_p@1", "criterion", "orthogonality_error"}
    result = run_cli(main, [*args, "--variants", "baseline,beta-x10", "--resume"])
    assert result.code == 0, result.err
    fig = json.loads(out.read_text())["figures"]
    assert fig["variants"]["baseline"]["runs"][0] == first  # kept, not re-run
    assert fig["variants"]["beta-x10"]["sets"] == list(VARIANTS["beta-x10"])
    bad = run_cli(main, [*args, "--variants", "nope"])
    assert bad.code == 2 and "unknown variant 'nope'" in bad.err


def test_study_resumes_and_keeps_its_seeds(tmp_path):
    files = _user_pair(tmp_path, n=800)
    dicts = ["--train", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test.txt")]
    out = tmp_path / "study.json"
    args = ["study", *files, *dicts, *TINY, "--json", str(out)]
    assert run_cli(main, [*args, "--seeds", "1"]).code == 0
    first = json.loads(out.read_text())["figures"]
    result = run_cli(main, [*args, "--seeds", "2", "--resume"])
    assert result.code == 0, result.err
    fig = json.loads(out.read_text())["figures"]
    assert [r["seed"] for r in fig["runs"]] == [0, 1]
    assert fig["runs"][0] == first["runs"][0] and fig["supervised"] == first["supervised"]
    bad = run_cli(main, [*args, "--seeds", "3", "--resume", "--set", "adversarial.hidden=8"])
    assert bad.code == 2 and "adversarial.hidden=16, now 8" in bad.err
    assert json.loads(out.read_text())["figures"] == fig  # a refused resume changes nothing


def test_fractional_rotation_goes_part_of_the_way():
    import numpy as np

    from dldiy_muse.ablation import fractional_rotation

    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    q[:, 0] *= np.sign(np.linalg.det(q))  # a proper rotation
    half = fractional_rotation(q, 0.5).astype(np.float64)
    assert orthogonality_error(half) < 1e-5
    assert np.allclose(half @ half, q, atol=1e-4)
    assert np.allclose(fractional_rotation(q, 1.0), q, atol=1e-4)


def test_adversarial_game_can_start_elsewhere():
    import numpy as np

    from dldiy_muse.adversarial import adversarial
    from dldiy_muse.config import AdversarialConfig

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 8)).astype(np.float32), rng.normal(size=(300, 8))
    q = np.linalg.qr(rng.normal(size=(8, 8)))[0].astype(np.float32)
    cfg = AdversarialConfig(hidden=8, epochs=1, epoch_size=5, dis_most_frequent=300,
                            criterion_words=300, log_every=5)
    out = adversarial(x, y.astype(np.float32), cfg, 0, False, start=q)
    assert np.linalg.norm(out.W - q) < 0.5  # five small steps from q, not from the identity


def test_data_dims_brings_each_space_to_its_top_components(tmp_path):
    import numpy as np

    from dldiy_muse.config import MuseConfig
    from dldiy_muse.pipeline import load_pair

    files = _user_pair(tmp_path, n=300)
    cfg = MuseConfig()
    cfg.data.src, cfg.data.tgt, cfg.data.dims = files[1], files[3], 4
    pair = load_pair(cfg)
    assert pair.src.vectors.shape == (300, 4) and pair.tgt.vectors.shape == (300, 4)
    assert np.allclose(np.linalg.norm(pair.src.vectors, axis=1), 1, atol=1e-5)
