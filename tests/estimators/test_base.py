"""Every estimate carries the same typed diagnostics, on the device until read."""

from __future__ import annotations

import pytest
import torch
from conftest import steps_for, tiny_batch, tiny_net

from eqpop import settle
from eqpop.dynamics import Status
from eqpop.estimators import registry
from eqpop.estimators.base import Diagnostics

FIELDS = {"seconds", "imag_ratio", "status", "residual"} | {
    f"{phase}_{what}" for phase in ("free", "nudge", "linear") for what in ("steps", "residual")
}


@pytest.mark.parametrize("method", registry.names())
def test_every_estimator_reports_the_same_fields(method):
    net = tiny_net("mlp")
    x, y = tiny_batch("mlp")
    steps = steps_for(net)
    free = settle(net, x, steps=steps)
    hyper = dict(beta=0.1, n_points=4, t_free=steps, t_nudge=steps, periods=2,
                 steps_per_point=40, free=free)  # fmt: skip
    est = registry.estimate(net, x, y, method, **hyper)
    chosen = registry.get(method)
    assert isinstance(est.stats.status, torch.Tensor)
    values = est.stats.read()
    assert set(values) == FIELDS and values["status"] is Status.OK
    assert (values["free_steps"] is not None) == chosen.free_phase
    assert (values["nudge_steps"] is not None) == chosen.nudged
    assert (values["linear_steps"] is not None) == (chosen.truth is not None)
    assert (values["imag_ratio"] is not None) == chosen.points  # complex nudges: hEP
    assert 0 <= values["residual"] < 1e-4 and values["seconds"] > 0


def test_an_estimate_with_no_phase_reads_as_ok_with_nothing_measured():
    """A plug-in may report no phase at all (an estimator that settles nothing itself)."""
    values = Diagnostics(seconds=0.5).read()
    assert values["status"] is Status.OK and values["seconds"] == 0.5
    assert {k for k, v in values.items() if v is not None} == {"seconds", "status"}
