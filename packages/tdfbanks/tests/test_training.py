"""Pre-emphasis for every front end, CTC utterances dropped by zero_infinity counted, and the
summary of an experiment's runs (chosen learning rate, mean ± std)."""

import numpy as np
import pytest
import torch

from dldiy_tdfbanks.config import Config
from dldiy_tdfbanks.experiment import summarise
from dldiy_tdfbanks.models import PreEmphasis, Recognizer, make_frontend
from dldiy_tdfbanks.train import CTCLoss, ctc_frames_needed


@pytest.mark.parametrize("name", ["mfsc", "tdfb-fixed", "tdfb-learn-all", "leaf", "sincnet"])
def test_preemphasis_reaches_every_frontend(name):
    torch.manual_seed(0)
    x = torch.randn(2, 4000)
    lengths = torch.tensor([4000, 3000])
    plain = make_frontend(name, impl="fft").eval()
    emph = make_frontend(name, preemphasis=True, impl="fft").eval()
    emph.load_state_dict(plain.state_dict(), strict=False)
    y = x.clone()
    y[:, 1:] -= 0.97 * x[:, :-1]
    with torch.no_grad():
        got, frames = emph(x, lengths)
        want, _ = plain(y, lengths)
        other, _ = plain(x, lengths)
    assert torch.equal(frames, plain.frames(lengths))
    torch.testing.assert_close(got, want, atol=2e-4, rtol=1e-4)
    assert (got - other).abs().max() > 0.1  # it does change the features
    learnable = [n for n, p in emph.named_parameters() if p.requires_grad]
    assert ("preemphasis" in learnable) == (name == "tdfb-learn-all")
    if name in ("mfsc", "leaf", "sincnet"):
        assert isinstance(emph, PreEmphasis)


def test_ctc_frames_needed_counts_repeats_within_an_utterance():
    targets = torch.tensor([1, 2, 2, 3, 3, 4, 4, 4, 5])  # [1 2 2 3] [3 4 4 4] [5]
    assert ctc_frames_needed(targets, torch.tensor([4, 4, 1])).tolist() == [5, 6, 1]


def test_ctc_loss_counts_the_utterances_zero_infinity_drops():
    torch.manual_seed(0)
    model = Recognizer(make_frontend("mfsc"), channels=8, layers=1, first_stride=4, dropout=0)
    loss_fn = CTCLoss()
    waves = torch.randn(3, 1600) * 0.1
    lengths = torch.tensor([1600, 1600, 800])  # 11, 11, 6 front-end frames -> 3, 3, 2 outputs
    targets = torch.tensor([1, 2, 1, 2, 3, 4, 5, 1])  # 2, 5 and 1 phones
    loss, metrics = loss_fn(model, (waves, lengths, targets, torch.tensor([2, 5, 1])))
    assert metrics == {"ctc_dropped": 1.0} and torch.isfinite(loss)
    loss_fn(model, (waves, lengths, targets, torch.tensor([2, 5, 1])))
    assert loss_fn.state_dict() == {"dropped": 2, "seen": 6}
    again = CTCLoss()
    again.load_state_dict(loss_fn.state_dict())
    assert again.dropped == 2


def _run(name, seed, lr, dev, test):
    return {"frontend": name, "seed": seed, "frontend_lr": lr, "dev_per": dev,
            "test_per": test, "frontend_params": 0 if name == "mfsc" else 10, "train_s": 1.0,
            "train_hours": 0.5, "steps": 60, "best_step": 40, "folder": f"{name}/{seed}",
            "config": {"train": {"epochs": 6}}}


def test_summary_keeps_the_learning_rate_of_lowest_first_seed_dev_per():
    cfg = Config(experiment=["mfsc", "leaf"], seeds=2, frontend_lr=1e-3,
                 frontend_lr_grid=[1e-2])
    done = [_run("mfsc", 0, 1e-3, 0.5, 0.6), _run("leaf", 0, 1e-3, 0.4, 0.5),
            _run("leaf", 0, 1e-2, 0.3, 0.45), _run("mfsc", 1, 1e-3, 0.7, 0.8)]
    figures = summarise(cfg, done)
    assert not figures["complete"] and figures["runs_planned"] == 5
    mfsc, leaf = figures["rows"]["mfsc"], figures["rows"]["leaf"]
    assert mfsc["frontend_lr"] is None and mfsc["n_seeds"] == 2
    assert mfsc["dev_per_mean"] == pytest.approx(0.6)
    assert mfsc["dev_per_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert leaf["frontend_lr"] == 1e-2 and leaf["test_per"] == [0.45]
    assert leaf["dev_per_std"] == 0.0 and leaf["best_epoch"] == [4.0]
    assert figures["lr_tuning"] == {"leaf": {"0.001": 0.4, "0.01": 0.3}}
    figures = summarise(cfg, [*done, _run("leaf", 1, 1e-2, 0.35, 0.55)])
    assert figures["complete"] and figures["rows"]["leaf"]["seeds"] == [0, 1]


def test_best_epoch_of_a_run_stopped_early_counts_its_steps_per_epoch():
    cfg = Config(experiment=["mfsc"], seeds=1)
    run = {**_run("mfsc", 0, 1e-3, 0.5, 0.6), "config": {"train": {"epochs": 30}},
           "steps": 60, "best_step": 40}
    assert summarise(cfg, [{**run, "steps_per_epoch": 10}])["rows"]["mfsc"]["best_epoch"] == [
        4.0]  # stopped after 6 of 30 epochs (train.patience): 40 / 10, not 40 / (60 / 30)
    assert summarise(cfg, [{**run, "steps": 300}])["rows"]["mfsc"]["best_epoch"] == [4.0]


def test_a_resumed_runs_train_time_counts_the_earlier_processes():
    from dldiy_tdfbanks.experiment import _earlier_seconds

    records = [{"step": 10, "elapsed_s": 5.0}, {"step": 20, "elapsed_s": 9.0},
               {"step": 20, "valid_per": 0.5}, {"step": 30, "elapsed_s": 4.0},
               {"step": 40, "elapsed_s": 8.0}, {"step": 50, "elapsed_s": 2.0}]
    assert _earlier_seconds(records, logged_here=True) == 9.0 + 8.0
    assert _earlier_seconds(records, logged_here=False) == 9.0 + 8.0 + 2.0
    assert _earlier_seconds(records[:2], logged_here=True) == 0.0


def test_long_preset_is_the_quick_setting_trained_longer():
    from dldiy_tdfbanks.config import PRESETS

    long, quick = PRESETS["long"], PRESETS["quick"]
    assert long["data"] == quick["data"] and long["model"] == quick["model"]
    assert (long["lr"], long["frontend_lr"]) == (quick["lr"], quick["frontend_lr"])
    assert {**long["train"], "epochs": 4, "patience": 0} == {**quick["train"], "patience": 0}
    assert long["train"]["epochs"] > 5 * quick["train"]["epochs"]


def test_reuse_takes_the_first_seed_from_a_results_file_and_trains_the_other_seeds(
        tmp_path, monkeypatch):
    from dldiy_core import UserError, write_results
    from dldiy_tdfbanks import experiment

    cfg = Config(experiment=["mfsc", "leaf"], seeds=3, frontend_lr=1e-3,
                 frontend_lr_grid=[1e-2])
    first = [_run("mfsc", 0, 1e-3, 0.5, 0.6), _run("leaf", 0, 1e-3, 0.4, 0.5),
             _run("leaf", 0, 1e-2, 0.3, 0.45)]
    path = write_results(tmp_path / "first.json", summarise(cfg, first))
    runs, note = experiment.reused_runs(cfg, path, 0.5)
    assert note["runs"] == 3 and note["file"] == str(path)
    trained = []

    def fake_run_one(c, name, folder, data, resume, force, seed, frontend_lr):
        trained.append((name, seed, frontend_lr))
        return {**_run(name, seed, c.frontend_lr if frontend_lr is None else frontend_lr,
                       0.1 * seed, 0.2 * seed), "folder": "x"}

    monkeypatch.setattr(experiment, "run_one", fake_run_one)
    figures = experiment.run_table(cfg, tmp_path / "out", {}, reused=(runs, note))
    # only seeds 1 and 2, each front end at the learning rate chosen on the first seed
    assert trained == [("mfsc", 1, None), ("leaf", 1, 1e-2), ("mfsc", 2, None),
                       ("leaf", 2, 1e-2)]
    leaf = figures["rows"]["leaf"]
    assert leaf["seeds"] == [0, 1, 2] and leaf["dev_per"] == [0.3, 0.1, 0.2]
    assert leaf["test_per"] == pytest.approx([0.45, 0.2, 0.4])
    assert leaf["best_epoch"][0] == 4.0 and leaf["folder"] == "leaf/seed1-flr0.01"
    assert figures["lr_tuning"] == {"leaf": {"0.001": 0.4, "0.01": 0.3}}
    assert figures["complete"] and figures["runs_planned"] == 3 + 4
    assert figures["reused"] == note
    # a file that holds seed 1 too: only seed 2 is trained, the rest is read back
    path = write_results(tmp_path / "two.json", summarise(cfg, figures_runs := [
        *first, _run("mfsc", 1, 1e-3, 0.1, 0.2), _run("leaf", 1, 1e-2, 0.1, 0.2)]))
    runs, note = experiment.reused_runs(cfg, path, 0.5)
    assert note["runs"] == 5 and note["first_seed_runs"] == 3
    trained.clear()
    again = experiment.run_table(cfg, tmp_path / "out2", {}, reused=(runs, note))
    assert trained == [("mfsc", 2, None), ("leaf", 2, 1e-2)]
    for name, row in figures["rows"].items():  # the same table; plots from seed 2's run
        assert {**again["rows"][name], "folder": None} == {**row, "folder": None}, name
    assert again["rows"]["leaf"]["folder"] == "leaf/seed2-flr0.01" and len(figures_runs) == 5
    assert again["complete"] and again["runs_done"] == again["runs_planned"] == 7
    # a file of other settings, or of other front ends, is refused (one line naming it)
    for other, why in ((Config(experiment=["mfsc", "leaf"], seeds=3, frontend_lr=1e-3,
                               frontend_lr_grid=[1e-2], lr=0.1), "lr"),
                       (Config(experiment=["mfsc"], seeds=3, frontend_lr=1e-3,
                               frontend_lr_grid=[1e-2]), "experiment")):
        with pytest.raises(UserError, match=why):
            experiment.reused_runs(other, path, 0.5)
    with pytest.raises(UserError, match="train_hours"):
        experiment.reused_runs(cfg, path, 0.7)
