"""vecmap's whitening / re-weighting / de-whitening (Artetxe et al., AAAI 2018, section 3) as
options of the final mapping step."""

import numpy as np
from test_embeddings_cli import _user_pair

from dldiy_core.testing import run_cli
from dldiy_muse.cli import main
from dldiy_muse.procrustes import procrustes
from dldiy_muse.vecmap import VecmapSteps, vecmap_maps, whitening


def _skewed(n=400, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * np.linspace(3, 0.3, d)  # anisotropic: whitening matters
    r = np.linalg.qr(rng.normal(size=(d, d)))[0]
    z = x @ r + 0.3 * rng.normal(size=(n, d))
    return x.astype(np.float32), z.astype(np.float32)


def test_whitening_is_the_inverse_square_root_of_the_covariance():
    x, _ = _skewed()
    w = whitening(x)
    assert np.allclose(w, w.T, atol=1e-8)
    assert np.allclose((x @ w).T @ (x @ w), np.eye(x.shape[1]), atol=1e-4)


def test_without_whitening_and_reweighting_the_cosines_are_procrustes():
    x, z = _skewed()
    A, B = vecmap_maps(x, z, VecmapSteps())
    W = procrustes(x, z)
    assert np.allclose((x @ A.T) @ (z @ B.T).T, (x @ W.T) @ z.T, atol=1e-3)


def test_whitening_then_own_dewhitening_with_reweighting_0_is_orthogonal_per_side():
    x, z = _skewed()
    A, B = vecmap_maps(x, z, VecmapSteps(whiten=True, src_dewhiten="src", trg_dewhiten="trg"))
    eye = np.eye(x.shape[1])
    assert np.allclose(A @ A.T, eye, atol=1e-4) and np.allclose(B @ B.T, eye, atol=1e-4)
    # a rotation of each side, but not Procrustes' (whitening changed the SVD it solves)
    W = procrustes(x, z)
    assert not np.allclose((x @ A.T) @ (z @ B.T).T, (x @ W.T) @ z.T, atol=1e-3)


def test_whitening_recovers_a_planted_rotation_exactly():
    x, _ = _skewed()
    r = np.linalg.qr(np.random.default_rng(5).normal(size=(12, 12)))[0].astype(np.float32)
    z = x @ r
    for steps in (VecmapSteps(whiten=True), VecmapSteps(whiten=True, src_reweight=0.5),
                  VecmapSteps(whiten=True, src_reweight=0.5, src_dewhiten="src",
                              trg_dewhiten="trg")):
        A, B = vecmap_maps(x, z, steps)
        # whitened, the cross-covariance's singular values are all 1: re-weighting is moot
        # and both sides land on the same points
        assert np.allclose(x @ A.T, z @ B.T, atol=1e-3)


def test_cli_vecmap_steps_make_a_two_sided_run(tmp_path):
    import json

    files = _user_pair(tmp_path, n=800)
    dicts = ["--train", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test.txt")]
    run = tmp_path / "run"
    result = run_cli(main, ["align", "--mode", "supervised", *files, *dicts, "--out", str(run),
                            "--set", "refine.iterations=1", "--whiten", "--src-reweight",
                            "0.5", "--src-dewhiten", "src", "--trg-dewhiten", "trg"])
    assert result.code == 0, result.err
    result = run_cli(main, ["eval", "--run", str(run), "--json", str(tmp_path / "e.json")])
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "e.json").read_text())["csls_p@1"] >= 0.95
    out = run_cli(main, ["export", "--run", str(run), "--out", str(tmp_path / "s.vec"),
                         "--tgt-out", str(tmp_path / "t.vec")])
    assert out.code == 0, out.err
    t_exported = np.loadtxt(tmp_path / "t.vec", skiprows=1, usecols=range(1, 17))
    assert not np.allclose(t_exported[0], np.load(tmp_path / "tgt.npy")[0], atol=1e-3)
    bad = run_cli(main, ["align", "--mode", "supervised", *files, *dicts, "--out",
                         str(tmp_path / "r2"), "--src-dewhiten", "src"])
    assert bad.code == 2 and "refine.whiten" in bad.err


def test_cli_mapping_compares_orthogonal_and_vecmap_steps(tmp_path):
    import json

    files = _user_pair(tmp_path, n=800)
    dicts = ["--train", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test.txt")]
    out = tmp_path / "m.json"
    result = run_cli(main, ["mapping", *files, *dicts, "--json", str(out)])
    assert result.code == 0, result.err
    fig = json.loads(out.read_text())["figures"]
    assert set(fig["settings"]) == {"orthogonal", "whiten", "whiten-dewhiten",
                                    "vecmap-supervised"}
    assert all(s["csls_p@1"] >= 0.95 for s in fig["settings"].values())  # a planted pair
