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
    t_free: int = 100,
    t_nudge: int = 20,
    free: Settled | None = None,
) -> Estimate:
    free = free_phase(net, x, t_free, free)
    start = time.perf_counter()
    nudged = settle(net, free.inputs, y, beta=beta, steps=t_nudge, state=free.state)
    s0, sb = net.activate(free.state), net.activate(nudged.state)
    error = tuple(-(b - a) / beta for a, b in zip(s0, sb))
    return finish(net, x, y, free, error, start, nudge=nudged.phase)


register(Method("classic", classic, cost="t_free + t_nudge", order=10))
