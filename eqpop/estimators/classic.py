"""Classic EP: the one-sided finite difference (s*_beta - s*_0) / beta, biased at O(beta)."""

from __future__ import annotations

import time

from torch import Tensor

from eqpop.dynamics import Settled, settle
from eqpop.estimators.base import Estimate, finish, free_phase
from eqpop.estimators.registry import Method, register
from eqpop.nets.base import EquilibriumNet, Inputs


def classic(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    y: Tensor,
    *,
    beta: float = 0.1,
    steps: int = 100,
    nudge_steps: int = 20,
    free: Settled | None = None,
) -> Estimate:
    free = free_phase(net, x, steps, free)
    start = time.perf_counter()
    nudged = settle(net, free.inputs, y, beta=beta, steps=nudge_steps, state=free.state)
    s0, sb = net.activate(free.state), net.activate(nudged.state)
    error = tuple(-(b - a) / beta for a, b in zip(s0, sb))
    return finish(net, x, y, free, error, start, nudge=nudged.phase)


_CONFIG = {"beta": "beta", "steps": "t_free", "nudge_steps": "t_nudge"}
register(Method("classic", classic, _CONFIG, cost="t_free + t_nudge", order=10))
