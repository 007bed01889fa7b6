"""The true d_beta s* (Table 1's "True d_beta u*"): forward-mode fixed point of
``v <- J_f v + df/dbeta`` at the free fixed point, mapped to the activated state."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from eqpop.dynamics import Settled, residual
from eqpop.estimators.base import Estimate, activated_tangent, finish, free_phase
from eqpop.jacobian import jvp_operator
from eqpop.nets.base import EquilibriumNet


def exact(
    net: EquilibriumNet,
    x: Tensor,
    y: Tensor,
    *,
    steps: int = 100,
    tangent_steps: int | None = None,
    free: Settled | None = None,
) -> Estimate:
    free = free_phase(net, x, steps, free)
    start = time.perf_counter()
    u = free.state
    zero = torch.zeros((), dtype=x.dtype)
    _, source = torch.func.jvp(lambda b: net.step(u, x, b, y), (zero,), (torch.ones_like(zero),))
    v = source
    res = torch.zeros(x.shape[0])
    n = tangent_steps or steps
    tangent_map = jvp_operator(lambda *w: net.step(w, x), u)
    with torch.no_grad():
        for _ in range(n):
            new = tuple(a + b for a, b in zip(tangent_map(v), source))
            res, v = residual(new, v), new
    error = tuple(-d for d in activated_tangent(net, u, v))
    return finish(net, x, y, free, error, start, tangent_steps=n, tangent_residual=float(res.max()))
