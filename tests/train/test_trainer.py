"""The Trainer on real digits (small slices, few steps): records, checkpoints, exact resume,
homeostasis, Init-EP, divergence."""

from __future__ import annotations

import math
import random
import traceback
from dataclasses import replace

import pandas as pd
import pytest
import torch

from eqpop.config import build_config
from eqpop.data import DataError, load_dataset
from eqpop.data.base import Split
from eqpop.dynamics import settle
from eqpop.errors import ConfigError
from eqpop.estimators import registry
from eqpop.nets import LayeredMLP, OutputFeedbackMLP
from eqpop.presets import preset
from eqpop.records import CHECKPOINT, PREVIOUS, RUN_METRICS
from eqpop.train import Diverged, EpochTally, Trainer

REQUIRED = [
    "epoch",
    "train_loss",
    "train_error",
    "val_error",
    "val_top5_error",
    "symmetry_ratio",
    "homeo_loss",
    "residual",
    "seconds",
    "samples_per_s",
]


@pytest.fixture(scope="module")
def small() -> Split:
    d = load_dataset("digits")
    return Split(
        d.x_train[:192],
        d.y_train[:192],
        d.x_val[:96],
        d.y_val[:96],
        10,
        d.mean,
        d.std,
        d.scale,
        "digits",
    )


def tiny(**kw):
    base = dict(
        hidden=[16, 12],
        asymmetry_angle=30.0,
        epochs=2,
        batch_size=32,
        t_free=12,
        t_nudge=6,
        lr=0.05,
        probe_batch=16,
        periods=1,
        steps_per_point=4,
    )
    return build_config(**{**base, **kw})


def test_records_every_epoch_in_parquet(tmp_path, small):
    trainer = Trainer(tiny(lambda_homeo=0.5), tmp_path, small)
    trainer.fit()
    frame = pd.read_parquet(tmp_path / RUN_METRICS)
    assert list(frame.epoch) == [1, 2]
    assert set(REQUIRED) <= set(frame.columns)
    assert {"weight_angle_l0", "weight_angle_l1", "cos_rbp_l0", "cos_rbp_l2"} <= set(frame.columns)
    assert frame.homeo_loss.notna().all() and (frame.samples_per_s > 0).all()
    assert (tmp_path / CHECKPOINT).is_file()
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("method", ["rbp", "exact", "classic", "hep", "hep_continuous"])
def test_every_method_trains(small, method):
    trainer = Trainer(tiny(method=method, epochs=1, n_points=4), None, small)
    rec = trainer.run_epoch()
    assert math.isfinite(rec["train_loss"]) and 0 <= rec["val_error"] <= 1


def test_the_papers_options_reach_the_run(small):
    """Signed classic nudge, LeCun-normal weights, [0, 1] inputs and a training subset: each
    is what the net, the batches and the estimator get."""
    cfg = tiny(
        method="classic", beta=-0.5, init="lecun_normal", inputs="unit", train_subset=96, epochs=1
    )
    trainer = Trainer(cfg, None, small)
    assert trainer.step.settings["beta"] == -0.5
    assert len(trainer.batches) * cfg.batch_size == 96
    x, _ = next(iter(trainer.batches))
    assert float(x.min()) >= 0 and float(x.max()) <= 1 and float(x.max()) > 0.5
    w = trainer.net.w_f[0]
    assert float(w.std()) == pytest.approx(w.shape[1] ** -0.5, rel=0.1)
    rec = trainer.run_epoch()
    assert math.isfinite(rec["train_loss"])


def test_training_truth_is_the_limit_of_hep_with_the_same_nudged_phase(small):
    """RBP's adjoint and exact's tangent are cut at t_nudge terms in training (the papers'
    code): exact is then what hEP converges to as N grows, step for step."""
    trainer = Trainer(tiny(dtype="float64", asymmetry_angle=60.0, t_nudge=4), None, small)
    x, y = trainer.probe
    free = settle(trainer.net, x, steps=500)  # a fixed point: no drift along the nudged phase

    def as_trained(method: str, **hyper):
        chosen = registry.get(method)  # with the config's settings, as the Trainer runs it
        settings = {**chosen.settings(trainer.cfg), "free": free, **hyper}
        return chosen.estimate(trainer.net, x, y, **settings)

    truth = as_trained("exact")
    assert truth.stats.linear.steps == 4
    hep = as_trained("hep", beta=1e-2, n_points=6)
    for got, want in zip(hep.error, truth.error):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    rbp = as_trained("rbp")
    converged = as_trained("rbp", t_adjoint=500, rtol=1e-12)
    assert rbp.stats.linear.steps == 4 and converged.stats.linear.steps > 4


def test_hep_epochs_record_how_far_the_nudges_reach_into_the_complex_plane(small):
    recs = {n: Trainer(tiny(epochs=1, n_points=n), None, small).run_epoch() for n in (2, 4)}
    assert recs[2]["imag_ratio"] == 0.0 and 0 < recs[4]["imag_ratio"] < 1
    classic = Trainer(tiny(epochs=1, method="classic"), None, small).run_epoch()
    assert math.isnan(classic["imag_ratio"])


def assert_same_run(straight: Trainer, resumed: Trainer) -> None:
    """The same records (timings aside) and bit-identical weights."""
    skip = {"seconds", "samples_per_s"}
    a, b = straight.metrics().drop(columns=skip), resumed.metrics().drop(columns=skip)
    pd.testing.assert_frame_equal(a, b)
    for (name, p), q in zip(straight.net.named_parameters(), resumed.net.parameters()):
        assert torch.equal(p, q), name


def test_resume_gives_the_uninterrupted_result(tmp_path, small):
    cfg = tiny(epochs=3, lambda_homeo=0.3, augment=False)
    straight = Trainer(cfg, tmp_path / "a", small)
    straight.fit()
    first = Trainer(tiny(epochs=2, lambda_homeo=0.3, augment=False), tmp_path / "b", small)
    first.fit()
    resumed = Trainer(cfg, tmp_path / "b", small)
    assert resumed.resume() and resumed.epoch == 2
    resumed.fit()
    assert_same_run(straight, resumed)


def test_resume_refuses_another_config_and_a_corrupt_checkpoint(tmp_path, small):
    Trainer(tiny(epochs=1), tmp_path, small).fit()
    with pytest.raises(ValueError, match="different config"):
        Trainer(tiny(epochs=2, lr=0.5), tmp_path, small).resume()
    (tmp_path / CHECKPOINT).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="unreadable checkpoint"):
        Trainer(tiny(epochs=2), tmp_path, small).resume()


def test_a_resume_with_more_epochs_continues_the_schedule_of_the_new_length(tmp_path, small):
    """Before: the cosine schedule came back with its old length, so the extra epoch trained at
    learning rate 0 and the weights did not move. Now 1 + 1 epochs equal 2 uninterrupted."""
    cfg = tiny(epochs=2, cosine_schedule=True, augment=False)
    straight = Trainer(cfg, tmp_path / "a", small)
    straight.fit()
    Trainer(tiny(epochs=1, cosine_schedule=True, augment=False), tmp_path / "b", small).fit()
    resumed = Trainer(cfg, tmp_path / "b", small)
    assert resumed.resume() and resumed.epoch == 1
    after_one = [p.detach().clone() for p in resumed.net.parameters()]
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.lr / 2)  # was 0
    resumed.fit()
    moved = max((p - q).abs().max().item() for p, q in zip(resumed.net.parameters(), after_one))
    assert moved > 1e-3
    for (name, p), q in zip(straight.net.named_parameters(), resumed.net.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    skip = ["seconds", "samples_per_s"]
    pd.testing.assert_frame_equal(
        straight.metrics().drop(columns=skip), resumed.metrics().drop(columns=skip), rtol=1e-5
    )


def test_a_refused_resume_names_each_changed_field_and_fewer_epochs_are_refused(tmp_path, small):
    Trainer(tiny(epochs=2), tmp_path, small).fit()
    with pytest.raises(ConfigError) as changed:
        Trainer(tiny(epochs=2, lr=0.5, beta=0.2), tmp_path, small).resume()
    assert "lr: 0.05 -> 0.5" in str(changed.value) and "beta: 0.5 -> 0.2" in str(changed.value)
    with pytest.raises(ConfigError, match="trained 2 epochs already, this run asks for 1"):
        Trainer(tiny(epochs=1), tmp_path, small).resume()


def test_a_resume_on_other_data_is_refused_unless_allowed(tmp_path, small, capsys):
    """Other images of the same shape under the same name: refused in one line naming the
    data; ``allow_new_data`` goes on, saying so."""
    Trainer(tiny(epochs=1), tmp_path, small).fit()
    other = replace(small, x_train=small.x_train.flip(-1))
    with pytest.raises(DataError, match=r"^digits: holds other data than .*--allow-new-data"):
        Trainer(tiny(epochs=2), tmp_path, other).resume()
    assert Trainer(tiny(epochs=2), tmp_path, small).resume()  # the same data: fine
    moved = tiny(epochs=2, data_dir=str(tmp_path / "moved"))
    assert Trainer(moved, tmp_path, small).resume()  # the same data elsewhere: fine too
    again = Trainer(tiny(epochs=2), tmp_path, other)
    assert again.resume(allow_new_data=True) and again.epoch == 1
    assert "resuming" in capsys.readouterr().err


def test_a_corrupt_checkpoint_falls_back_on_the_previous_one(tmp_path, small, capsys):
    Trainer(tiny(epochs=2), tmp_path, small).fit()
    assert (tmp_path / PREVIOUS).is_file()
    (tmp_path / CHECKPOINT).write_bytes(b"PK\x03\x04 truncated")
    again = Trainer(tiny(epochs=3), tmp_path, small)
    assert again.resume() and again.epoch == 1
    assert "unreadable checkpoint" in capsys.readouterr().err
    assert list(again.fit().epoch) == [1, 2, 3]


def test_init_ep_records_forward_error_and_distance(small):
    trainer = Trainer(tiny(init_ep=True, init_ep_lambda=0.1, t_free=3), None, small)
    frame = trainer.fit()
    assert {"val_error_forward", "init_distance"} <= set(frame.columns)
    # the initializer learns to predict the fixed point
    assert frame.init_distance.iloc[-1] < frame.init_distance.iloc[0]


def test_o_connor_s_net_learns_with_its_initializer_trained_by_sgd():
    """The mnist-init-ep preset (the clipped net, classic EP with a random sign, 4 free steps
    from the initializer's guess, which learns by plain SGD at the net's layer rates,
    ``lr_scales``) on all the digits, 32 hidden units: the settled state learns, the guess nears
    it and its error falls."""
    changed = {"dataset": "digits", "hidden": [32], "epochs": 4, "asymmetry_angle": None}
    cfg = tiny(**{**preset("mnist-init-ep"), **changed})
    trainer = Trainer(cfg, None, load_dataset("digits"))
    optimizer = trainer.state.init_optimizer
    assert isinstance(optimizer, torch.optim.SGD)
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx([0.05, 0.1])
    frame = trainer.fit()
    assert frame.val_error.iloc[-1] < 0.2
    assert frame.val_error_forward.iloc[-1] < frame.val_error_forward.iloc[0]
    assert frame.init_distance.iloc[-1] < frame.init_distance.iloc[0]


def test_divergence_stops_the_run_with_a_reason(small):
    trainer = Trainer(tiny(lr=1e38, method="rbp", epochs=3), None, small)
    with pytest.raises(Diverged, match="non-finite"):
        trainer.fit()


def test_layer_wise_learning_rates(small):
    mlp, feedback = LayeredMLP([4, 5, 6, 7]), OutputFeedbackMLP([4, 5, 6, 7])  # 3 layers
    named = [(mlp, "w_f.0"), (mlp, "b.2"), (mlp, "w_b.0"), (mlp, "w_b.1"), (feedback, "w_o")]
    named.append((mlp, "w_ro"))
    assert [net.layer_of(name) for net, name in named] == [0, 2, 1, 2, 2, 3]
    trainer = Trainer(tiny(lr_scales=[4, 3, 2, 1]), None, small)
    lrs = sorted(g["lr"] for g in trainer.optimizer.param_groups)
    assert lrs == pytest.approx([0.05, 0.1, 0.15, 0.2])


def test_conv_net_trains_with_layer_scales_homeostasis_and_init_ep():
    from eqpop.data import DATASETS

    data = DATASETS["synthetic"](shape=(3, 8, 8), n_train=64, n_val=32)
    cfg = tiny(
        net="conv",
        hidden=[4, 6],
        dataset="synthetic",
        lr_scales=[3, 2, 1],
        lambda_homeo=1.0,
        init_ep=True,
        init_ep_lambda=0.1,
        augment=True,
        epochs=1,
    )
    rec = Trainer(cfg, None, data).run_epoch()
    assert math.isfinite(rec["train_loss"]) and {"weight_angle_l0", "cos_rbp_l1"} <= set(rec)
    assert math.isfinite(rec["val_error_forward"]) and math.isfinite(rec["homeo_loss"])


def _count_reads(monkeypatch) -> list[str]:
    """Every tensor value read on the host (``item``, ``tolist``, ``float``, ``int``, ``bool``)
    outside torch's own optimisers (Adam reads its CPU step counter), by the function that
    read it."""
    reads: list[str] = []
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def read(self, *args, _original=original, **kwargs):
            stack = traceback.extract_stack()[:-1]
            if not any("torch/optim" in frame.filename for frame in stack):
                reads.append(stack[-1].name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, read)
    return reads


@pytest.mark.parametrize("method, extra", [
    ("hep", dict(n_points=4, lambda_homeo=0.5, init_ep=True)),
    ("classic", dict(random_sign=True)),
    ("hep_continuous", {}),
])  # fmt: skip
def test_an_epochs_training_reads_the_device_once(small, monkeypatch, method, extra):
    """A training step leaves everything it adds up (loss, errors, homeostasis, residuals,
    statuses, non-finite flags, imag_ratio) on the device; the epoch reads it in one go after
    its last batch, however many there are. (Evaluation and the per-epoch measurements read
    their own results once each; RBP's and exact's linear iterations still check convergence
    on the host every 10 steps.)"""
    reads = _count_reads(monkeypatch)
    trainer = Trainer(tiny(method=method, epochs=2, **extra), None, small)
    tally = EpochTally(trainer.device)
    trainer.train_step(*next(iter(trainer.batches)), tally)
    assert reads == []
    monkeypatch.setattr(trainer, "evaluate", dict)
    monkeypatch.setattr(trainer, "measure", dict)
    trainer.run_epoch()
    assert len(trainer.batches) == 6 and reads == ["read"]


def test_the_trainer_leaves_the_global_random_state_alone(small):
    """Each run owns its generators: building and training one neither reads nor moves
    torch's or Python's global streams, and interleaving two runs changes neither."""
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    alone = Trainer(tiny(epochs=1, lambda_homeo=0.5, random_sign=True), None, small)
    alone.run_epoch()
    assert torch.equal(torch.get_rng_state(), torch_state) and random.getstate() == python_state
    a = Trainer(tiny(epochs=1, lambda_homeo=0.5, random_sign=True), None, small)
    b = Trainer(tiny(epochs=1, lambda_homeo=0.5, random_sign=True, seed=1), None, small)
    b.run_epoch()
    a.run_epoch()
    for p, q in zip(alone.net.parameters(), a.net.parameters()):
        assert torch.equal(p, q)


def test_anderson_free_phases_train_like_plain_ones_in_fewer_steps(tmp_path, small):
    """The same run with the free phases solved to a tolerance by plain steps or by Anderson
    acceleration: fewer steps, the same fixed points, so the same training to float
    precision; anderson without a tolerance is refused."""
    runs = {}
    for solver in ("plain", "anderson"):
        cfg = tiny(epochs=1, t_free=400, solver=solver, solver_tol=1e-7, dtype="float64")
        trainer = Trainer(cfg, tmp_path / solver, small)
        x, y = trainer.probe
        runs[solver] = (trainer.fit(), settle(trainer.net, x, **cfg.relaxation()).steps)
    (plain, plain_steps), (fast, fast_steps) = runs["plain"], runs["anderson"]
    assert fast_steps < plain_steps
    assert fast.val_error.iloc[0] == pytest.approx(plain.val_error.iloc[0], abs=0.02)
    assert fast.train_loss.iloc[0] == pytest.approx(plain.train_loss.iloc[0], rel=1e-3)
    with pytest.raises(ValueError, match="solver anderson needs solver_tol"):
        tiny(solver="anderson")
