"""Recurrent backprop: delta of Eq. (4) as the fixed point of the adjoint dynamics (VJPs).

Iterating ``w <- J_f^T w + dt dloss/du`` at the free fixed point converges to
``-J_F^{-T} dloss/du``: the true neuronal error, and with it the true gradient.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from eqpop.dynamics import Settled
from eqpop.estimators.base import Estimate, finish, free_phase, loss_cotangent, solve_linear
from eqpop.estimators.registry import Method, register
from eqpop.nets.base import EquilibriumNet, Inputs


def rbp(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    y: Tensor,
    *,
    t_free: int = 100,
    t_adjoint: int | None = None,
    rtol: float = 1e-6,
    free: Settled | None = None,
    solver: str = "plain",
    anderson_memory: int = 5,
) -> Estimate:
    """``t_adjoint`` caps the adjoint iteration (default 10 x ``t_free``); it stops earlier
    once converged to ``rtol``, Anderson-accelerated (``anderson_memory``) under
    ``solver="anderson"``."""
    free = free_phase(net, x, t_free, free)
    start = time.perf_counter()
    source = tuple(net.dt * c for c in loss_cotangent(net, free.state, y))
    _, pullback = torch.func.vjp(lambda *u: net.step(u, free.inputs), *free.state)
    memory = anderson_memory if solver == "anderson" else 0
    w, adjoint = solve_linear(pullback, source, t_adjoint or 10 * t_free, rtol, memory=memory)
    return finish(net, x, y, free, w, start, linear=adjoint)


# in training, the adjoint iteration is counted as long as the free phase
register(Method("rbp", rbp, cost="2 * t_free", order=50, truth="delta"))
