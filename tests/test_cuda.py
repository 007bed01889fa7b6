"""The same numbers on a GPU as on the CPU (skipped where no CUDA device is present; run through
the device tool). Catches tensors created on the wrong device and dtype drift."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import steps_for, tiny_batch, tiny_net

from eqpop.config import build_config
from eqpop.data import DATASETS
from eqpop.estimators import estimate, registry
from eqpop.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("method", sorted(registry.names()))
@pytest.mark.parametrize("name", ["mlp", "conv"])
def test_every_estimator_gives_the_cpu_result_on_cuda(name, method):
    net = tiny_net(name)
    x, y = tiny_batch(name)
    hyper = dict(
        beta=0.3, n_points=4, t_free=steps_for(net), t_nudge=60, periods=2, steps_per_point=40
    )
    on_cpu = estimate(net, x, y, method, **hyper)
    on_gpu = estimate(net.cuda(), x.cuda(), y.cuda(), method, **hyper)
    for a, b in zip(on_cpu.grads.values(), on_gpu.grads.values()):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-7, atol=1e-9)


def test_trainer_runs_an_epoch_on_cuda_with_homeostasis_and_init_ep():
    data = DATASETS["synthetic"](shape=(3, 8, 8), n_train=64, n_val=32)
    cfg = build_config(
        net="conv",
        hidden=[4, 6],
        dataset="synthetic",
        method="hep",
        n_points=2,
        lambda_homeo=1.0,
        init_ep=True,
        augment=True,
        epochs=1,
        batch_size=32,
        t_free=12,
        t_nudge=6,
        probe_batch=16,
        device="cuda",
    )
    trainer = Trainer(cfg, None, data)
    assert next(trainer.net.parameters()).is_cuda
    rec = trainer.run_epoch()
    assert math.isfinite(rec["train_loss"]) and math.isfinite(rec["homeo_loss"])
