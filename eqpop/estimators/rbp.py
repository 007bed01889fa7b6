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
    steps: int = 100,
    adjoint_steps: int | None = None,
    rtol: float = 1e-6,
    free: Settled | None = None,
    memory: int = 0,
) -> Estimate:
    """``adjoint_steps`` caps the adjoint iteration (default 10 x ``steps``); it stops earlier
    once converged to ``rtol``, Anderson-accelerated with ``memory`` > 0."""
    free = free_phase(net, x, steps, free)
    start = time.perf_counter()
    source = tuple(net.dt * c for c in loss_cotangent(net, free.state, y))
    _, pullback = torch.func.vjp(lambda *u: net.step(u, free.inputs), *free.state)
    cap = adjoint_steps or 10 * steps
    w, adjoint = solve_linear(pullback, source, cap, rtol, memory=memory)
    return finish(net, x, y, free, w, start, linear=adjoint)


# in training, the adjoint iteration is counted as long as the free phase
_CONFIG = {"steps": "t_free", "adjoint_steps": "adjoint_steps", "memory": "solver_memory"}
register(Method("rbp", rbp, _CONFIG, cost="2 * t_free", order=50, truth="delta"))
