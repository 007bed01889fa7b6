"""Recurrent backprop: delta of Eq. (4) as the fixed point of the adjoint dynamics (VJPs).

Iterating ``w <- J_f^T w + dt dloss/du`` at the free fixed point converges to
``-J_F^{-T} dloss/du``: the true neuronal error, and with it the true gradient.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from eqpop.dynamics import Settled, residual
from eqpop.estimators.base import Estimate, finish, free_phase, loss_cotangent
from eqpop.nets.base import EquilibriumNet


def rbp(
    net: EquilibriumNet,
    x: Tensor,
    y: Tensor,
    *,
    steps: int = 100,
    adjoint_steps: int | None = None,
    free: Settled | None = None,
) -> Estimate:
    free = free_phase(net, x, steps, free)
    start = time.perf_counter()
    source = tuple(net.dt * c for c in loss_cotangent(net, free.state, y))
    _, pullback = torch.func.vjp(lambda *u: net.step(u, x), *free.state)
    w = source
    res = torch.zeros(x.shape[0])
    n = adjoint_steps or steps
    with torch.no_grad():
        for _ in range(n):
            new = tuple(p + c for p, c in zip(pullback(w), source))
            res, w = residual(new, w), new
    return finish(net, x, y, free, w, start, adjoint_steps=n, adjoint_residual=float(res.max()))
