"""The fast path gives what the plain path gives: every estimator on every architecture, with
the input's drive computed once per batch (``Inputs``) and recomputed at every step as before."""

from __future__ import annotations

import pytest
import torch
from conftest import steps_for, tiny_batch, tiny_net

from eqpop import settle
from eqpop.estimators import registry
from eqpop.nets.base import Inputs, batch_of

TOLERANCE = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}


def _estimate(net, x, y, method):
    steps = steps_for(net) // 3
    free = settle(net, x, steps=steps)
    hyper = dict(beta=0.2, n_points=4, t_free=steps, t_nudge=20, periods=1,
                 steps_per_point=10, free=free)  # fmt: skip
    return registry.estimate(net, x, y, method, **hyper)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method", registry.names())
def test_inputs_once_per_batch_equal_inputs_every_step(arch, method, dtype, monkeypatch):
    net = tiny_net(arch).to(dtype)
    x, y = tiny_batch(arch)
    x = x.to(dtype)
    fast = _estimate(net, x, y, method)

    def every_step(x):  # what every step did before: the drive from the raw batch, again
        raw = batch_of(x)
        return Inputs(raw, net.input_drive(raw))

    monkeypatch.setattr(net, "inputs", every_step)
    plain = _estimate(net, x, y, method)
    for a, b in zip(fast.error, plain.error):
        torch.testing.assert_close(a, b, **TOLERANCE[dtype])
    for name in fast.grads:
        torch.testing.assert_close(fast.grads[name], plain.grads[name], **TOLERANCE[dtype])
