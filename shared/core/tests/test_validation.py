"""Validation loop, best/last checkpoints, schedulers, early stopping, precision, EMA."""

import json

import pytest
import torch

from dldiy_core import TrainConfig, Trainer
from dldiy_core.checkpoint import CheckpointError, load_checkpoint
from dldiy_core.config import resolve
from dldiy_core.toy import PRESETS, ToyConfig, build, mlp, mse_loss, planted_regression
from dldiy_core.trainer import Diverged, load_weights


def toy(out, *sets):
    return build(resolve(ToyConfig, PRESETS, "tiny", None, ["n_valid=128", *sets]), out)


def records(run, kind):
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r["kind"] == kind]


def test_validation_every_n_steps_keeps_the_best_beside_the_last(tmp_path):
    trainer, data, valid = toy(tmp_path, "train.epochs=3", "train.eval_every=5",
                               "train.keep_last=2", "train.checkpoint_every=4")
    trainer.fit(data, valid)
    evals = records(tmp_path, "valid")
    assert [r["step"] for r in evals] == [5, 10, 15, 20, 24]
    best = min(evals, key=lambda r: r["valid_loss"])
    assert trainer.state.best == best["valid_loss"]
    assert load_checkpoint(tmp_path / "best.safetensors")["trainer"]["step"] == best["step"]
    assert load_checkpoint(tmp_path / "checkpoint.safetensors")["trainer"]["step"] == 24
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == [
        "checkpoint-00000020.safetensors", "checkpoint-00000024.safetensors"]
    # the figure is the item-weighted mean of the loss over the whole validation set
    model = mlp(32, 16, 4)
    load_weights(tmp_path / "best.safetensors", model)
    x, y = valid.tensors
    with torch.no_grad():
        assert torch.nn.functional.mse_loss(model(x), y).item() == pytest.approx(
            best["valid_loss"], rel=1e-5)


def test_validation_at_each_epoch_end_and_early_stopping(tmp_path):
    # monitoring a falling loss as "max" never improves: patience 2 stops at the third epoch
    trainer, data, valid = toy(tmp_path, "train.epochs=10", "train.patience=2",
                               "train.monitor_mode=max")
    trainer.fit(data, valid)
    assert [r["step"] for r in records(tmp_path, "valid")] == [8, 16, 24]
    assert trainer.state.step == 24 and trainer.state.bad_evals == 2


def test_custom_validation_callable_and_unknown_monitor(tmp_path):
    trainer, data, _ = toy(tmp_path, "train.eval_every=4", "train.monitor=valid_score",
                           "train.monitor_mode=max")
    calls = []
    trainer.fit(data, valid=lambda t: calls.append(t.state.step) or {"score": -len(calls)})
    assert calls == [4, 8] and trainer.state.best == -1
    trainer, data, valid = toy(tmp_path / "b", "train.monitor=valid_acc")
    with pytest.raises(Exception, match="train.monitor='valid_acc' is not a validation figure"):
        trainer.fit(data, valid)


def test_epoch_scheduler_steps_once_an_epoch(tmp_path):
    trainer, data, _ = toy(tmp_path, "schedule=epoch", "train.epochs=3", "train.log_every=4")
    trainer.fit(data)
    assert [r["lr"] for r in records(tmp_path, "train")] == pytest.approx(
        [1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3])


def test_plateau_scheduler_steps_on_the_validation_figure(tmp_path):
    trainer, data, valid = toy(tmp_path, "schedule=plateau", "train.epochs=3",
                               "train.eval_every=4")
    trainer.fit(data, valid)
    assert trainer.scheduler.best == min(r["valid_loss"] for r in records(tmp_path, "valid"))
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(Exception, match="scheduler_every must be 'valid'"):
        Trainer(model, opt, mse_loss, TrainConfig(), scheduler_every="step",
                scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(opt))


def test_nan_loss_never_reaches_a_checkpoint(tmp_path):
    trainer, data, _ = toy(tmp_path, "train.checkpoint_every=1", "train.log_every=100")
    calls = []

    def poisoned(model, batch):
        calls.append(1)
        loss = mse_loss(model, batch)
        return loss * float("nan") if len(calls) == 6 else loss
    trainer.loss_fn = poisoned
    with pytest.raises(Diverged, match="diverged at step 6"):
        trainer.fit(data)
    ck = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert ck["trainer"]["step"] == 5
    assert all(torch.isfinite(v).all() for v in ck["model"].values())


def test_resumable_settings_are_matched_by_full_path(tmp_path):
    def trainer(device, steps=2, resumable=()):
        model = torch.nn.Linear(2, 1)
        cfg = TrainConfig(max_steps=2, batch_size=8, progress=False, device="cpu")
        run_config = {"train": {"device": "cpu"}, "model": {"device": device},
                      "stage": {"steps": steps}}
        return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), mse_loss, cfg,
                       tmp_path, run_config=run_config, resumable=resumable)
    data = planted_regression(32, 2, 1)
    trainer("a").fit(data)
    with pytest.raises(CheckpointError, match=r"model.device: 'a' -> 'b'"):
        trainer("b").fit(data, resume=True)
    with pytest.raises(CheckpointError, match=r"stage.steps: 2 -> 3"):
        trainer("a", steps=3).fit(data, resume=True)
    trainer("a", steps=3, resumable={"stage.steps"}).fit(data, resume=True)  # declared: allowed


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_resumes(tmp_path, precision):
    sets = [f"train.precision={precision}", "train.epochs=3", "train.log_every=4"]
    trainer, data, _ = toy(tmp_path / "full", *sets)
    history = trainer.fit(data)
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert (load_checkpoint(tmp_path / "full/checkpoint.safetensors")["scaler"] is None) == (
        precision == "bf16")
    part, _, _ = toy(tmp_path / "part", *sets, "train.max_steps=10")
    part.fit(data)
    toy(tmp_path / "part", *sets)[0].fit(data, resume=True)
    for k, v in load_checkpoint(tmp_path / "full/checkpoint.safetensors")["model"].items():
        assert torch.equal(v, load_checkpoint(tmp_path / "part/checkpoint.safetensors")[
            "model"][k]), k


def test_gradient_accumulation_equals_the_large_batch(tmp_path):
    big, data, _ = toy(tmp_path / "big", "train.batch_size=64", "train.shuffle=false",
                       "train.epochs=2")
    big.fit(data)
    acc, _, _ = toy(tmp_path / "acc", "train.batch_size=16", "train.accumulate=4",
                    "train.shuffle=false", "train.epochs=2")
    acc.fit(data)
    assert acc.state.step == big.state.step == 16
    for a, b in zip(acc.model.parameters(), big.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_ema_weights_are_validated_and_loaded(tmp_path):
    trainer, data, valid = toy(tmp_path, "train.ema=0.9", "train.epochs=2")
    trainer.fit(data, valid)
    ema = trainer.ema.module
    assert any(not torch.equal(a, b) for a, b in zip(ema.parameters(),
                                                     trainer.model.parameters(), strict=True))
    model = mlp(32, 16, 4)
    load_weights(tmp_path / "best.safetensors", model)
    for a, b in zip(model.parameters(), ema.parameters(), strict=True):
        assert torch.equal(a, b)


def test_tensorboard_event_files(tmp_path):
    pytest.importorskip("torch.utils.tensorboard")
    trainer, data, valid = toy(tmp_path, "train.tensorboard=true")
    trainer.fit(data, valid)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_compiled_model_keeps_clean_state_dict_keys(tmp_path):
    trainer, data, _ = toy(tmp_path, "train.compile=true", "train.max_steps=4")
    trainer.fit(data)
    keys = load_checkpoint(tmp_path / "checkpoint.safetensors")["model"].keys()
    assert keys == mlp(32, 16, 4).state_dict().keys()
