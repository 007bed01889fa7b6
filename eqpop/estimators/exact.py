"""The true d_beta s* (Table 1's "True d_beta u*"): forward-mode fixed point of
``v <- J_f v + df/dbeta`` at the free fixed point, mapped to the activated state."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from eqpop.dynamics import Settled
from eqpop.estimators.base import (
    Estimate,
    activated_tangent,
    finish,
    free_phase,
    solve_linear,
)
from eqpop.estimators.registry import Method, register
from eqpop.jacobian import jvp_operator
from eqpop.nets.base import EquilibriumNet, Inputs

#: the tangent iteration's default cap, in free-phase lengths: long enough to converge wherever
#: the free phase does (the converged measurement of Fig. 2 gives nudged phases the same)
CAP = 10


def exact(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    y: Tensor,
    *,
    t_free: int = 100,
    t_adjoint: int | None = None,
    rtol: float = 1e-6,
    free: Settled | None = None,
) -> Estimate:
    """``t_adjoint`` caps the tangent iteration (default ``CAP`` x ``t_free``); it stops earlier
    once converged to ``rtol``. Capped at a nudged phase's length T, it is the derivative of the
    state after T nudged steps (``solve_linear``): the truth for an estimate with that phase."""
    free = free_phase(net, x, t_free, free)
    start = time.perf_counter()
    u, inputs = free.state, free.inputs
    zero = torch.zeros((), dtype=inputs.x.dtype, device=inputs.x.device)
    one = torch.ones_like(zero)
    _, source = torch.func.jvp(lambda b: net.step(u, inputs, b, y), (zero,), (one,))
    tangent_map = jvp_operator(lambda *w: net.step(w, inputs), u)
    v, tangent = solve_linear(tangent_map, source, t_adjoint or CAP * t_free, rtol)
    error = tuple(-d for d in activated_tangent(net, u, v))
    return finish(net, x, y, free, error, start, linear=tangent)


register(Method("exact", exact, cost="2 * t_free", order=40, truth="d_beta"))
