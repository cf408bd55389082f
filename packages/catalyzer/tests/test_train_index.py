import numpy as np
import pytest
import torch

from dldiy_catalyzer.config import PRESETS, CatalyzerConfig
from dldiy_catalyzer.evaluate import catalyzer_recalls
from dldiy_catalyzer.index import CatalyzerIndex
from dldiy_catalyzer.models import Catalyzer
from dldiy_catalyzer.train import build_trainer, train
from dldiy_core import UserError, resolve
from dldiy_core.testing import assert_same_weights

TINY = ["train.batch_size=100", "train.log_every=5", "lr_schedule=[0.1,0.02]",
        "loss.rank_negative=20", "loss.lambda_koleo=0.02"]


def tiny_cfg(*sets):
    return resolve(CatalyzerConfig, PRESETS, "tiny", None, [*TINY, *sets])


def test_training_raises_recall_over_the_untrained_network(splits):
    torch.manual_seed(0)
    untrained = catalyzer_recalls(Catalyzer(splits.d, 24, 64), splits, "lattice")
    trainer = train(tiny_cfg("train.epochs=6"), None, splits=splits)
    trained = catalyzer_recalls(trainer.model, splits, "lattice")
    losses = [h["loss"] for h in trainer.history]
    assert losses[-1] < losses[0]
    # an untrained network already keeps clusters apart; training must sharpen the ranking
    assert trained["lattice32"][10] > untrained["lattice32"][10] + 0.15
    assert trained["lattice64"][10] > untrained["lattice64"][10] + 0.05
    assert trained["catalyzer24 (float)"][10] > untrained["catalyzer24 (float)"][10] + 0.05


def test_end_to_end_training_through_the_lattice_runs(splits):
    for quantizer in ("zn79", "sign"):
        trainer = train(tiny_cfg("train.epochs=1", f"loss.quantizer={quantizer}"), None,
                        splits=splits)
        assert np.isfinite([h["loss"] for h in trainer.history]).all()


def test_resume_mid_epoch_keeps_the_mined_triplets(splits, tmp_path):
    full = train(tiny_cfg("train.epochs=3"), tmp_path / "full", splits=splits)
    part, source = build_trainer(tiny_cfg("train.epochs=3", "train.max_steps=22"),
                                 tmp_path / "part", splits)
    part.fit(source)
    train(tiny_cfg("train.epochs=3"), tmp_path / "part", resume=True, splits=splits)
    assert full.state.step == 45
    assert_same_weights(tmp_path / "full/checkpoint.safetensors",
                        tmp_path / "part/checkpoint.safetensors")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Catalyzer(16, 24, 32).eval()


def test_index_search_save_load(net, splits, tmp_path):
    index = CatalyzerIndex(net, r2=79, keep_vectors=True)
    index.add(splits.xb[:700])
    index.add(splits.xb[700:])
    d, ids = index.search(splits.xq, 10)
    assert ids.shape == (len(splits.xq), 10) and (np.diff(d, axis=1) >= -1e-6).all()
    loaded = CatalyzerIndex.load(index.save(tmp_path / "i.safetensors"))
    assert np.array_equal(loaded.codes, index.codes)
    assert np.array_equal(loaded.search(splits.xq, 10)[1], ids)
    sharded = CatalyzerIndex(net, r2=79, shards=3)
    sharded.add(splits.xb)
    assert np.array_equal(sharded.search(splits.xq, 10)[1], ids)
    _, reranked = index.search(splits.xq, 10, rerank=50)
    exact = ((splits.xb[reranked] - splits.xq[:, None]) ** 2).sum(-1)
    assert (np.diff(exact, axis=1) >= -1e-5).all()


def test_index_bad_input(net, splits):
    index = CatalyzerIndex(net)
    index.add(splits.xb[:50])
    with pytest.raises(UserError, match=r"shape \(3, 8\), the index expects \[n, 16\]"):
        index.search(np.zeros((3, 8), np.float32), 5)
    bad = np.array(splits.xq[:4])
    bad[2, 3] = np.nan
    with pytest.raises(UserError, match="row 2 has NaN or inf"):
        index.add(bad)
    with pytest.raises(UserError, match="k=51: must be between 1 and the 50"):
        index.search(splits.xq[:2], 51)


@pytest.mark.parametrize("d_out", [32, 40])
def test_other_output_dimensions_train_evaluate_and_index(splits, d_out):
    from dldiy_catalyzer.evaluate import lattice_codes
    trainer = train(tiny_cfg("train.epochs=1", f"model.d_out={d_out}"), None, splits=splits)
    rec = catalyzer_recalls(trainer.model, splits, "lattice")
    assert {"lattice16", "lattice32", "lattice64"} <= set(rec)
    codes = lattice_codes(d_out)
    assert all(b - 8 <= codes[f"lattice{b}"]["bits"] <= b for b in (16, 32, 64))
    index = CatalyzerIndex(trainer.model)
    index.add(splits.xb)
    assert index.codec.bits == 64 and index.bytes_per_vector == d_out
    assert index.search(splits.xq, 10)[1].shape == (len(splits.xq), 10)
