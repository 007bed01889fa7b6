"""Continuous-time holomorphic EP, Eqs. (8) and (9): no free phase at all.

The nudge beta(t) = |beta| e^{2 i pi t / T} rotates through N values, each held for
``steps_per_point`` steps, for ``periods`` periods, while the net keeps running. The error is
the average of ``s(t) / beta(t)`` (Eq. 8) and the presynaptic activity the average of ``s(t)``
(Eq. 9 by the mean value property; for dense nets ``dF/dtheta`` is linear in s, so averaging s
is averaging ``dF/dtheta``). Both converge as the number of periods grows.

Eqs. (8)-(9) integrate the fixed points ``u*_{beta(t)}``, which the system reaches only once
the transient after each change of beta has died out. ``sample="end"`` (the default, and what
the paper's code does) reads the state once per hold, at its end, where it is closest to that
fixed point: the estimate is then the N-point Cauchy sum averaged over the periods.
``sample="every"`` reads every step, the running time average a physical integrator would
form: each transient adds a bias (of the order of the fraction of a hold it lasts) that only
many periods average away. On the tiny float64 MLP at |beta| 0.2, N = 4, 40 steps per hold,
the relative error against exact is 1.2e-5 with "end" after one period, and 3.6 %, 1.3 %,
1.0 % with "every" after 1, 4, 16 periods (tests/estimators/test_ground_truth.py).
"""

from __future__ import annotations

import cmath
import time

import torch
from torch import Tensor

from eqpop.dynamics import Phase, Status, residual, status, to_dtype
from eqpop.estimators.base import Diagnostics, Estimate, imag_ratio, parameter_grads
from eqpop.estimators.registry import Method, register
from eqpop.nets.base import EquilibriumNet, Inputs, State


def _accumulate(total: State | None, new: State) -> State:
    return new if total is None else tuple(a + b for a, b in zip(total, new))


def hep_continuous(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    y: Tensor,
    *,
    beta: float = 0.1,
    n_points: int = 4,
    periods: int = 5,
    steps_per_point: int = 60,
    sample: str = "end",
) -> Estimate:
    if n_points < 2 or periods < 1 or steps_per_point < 1:
        raise ValueError("hep_continuous needs n_points >= 2, periods >= 1, steps_per_point >= 1")
    if sample not in ("end", "every"):
        raise ValueError(f"hep_continuous: sample must be 'end' or 'every', got {sample!r}")
    first_read = 0 if sample == "every" else steps_per_point - 1
    start = time.perf_counter()
    with torch.no_grad():
        inputs = net.inputs(x)
    dtype = torch.promote_types(inputs.x.dtype, torch.complex64)
    u = to_dtype(net.initial_state(inputs.x), dtype)
    sum_err = sum_s = sum_u = None
    reads = periods * n_points * (steps_per_point - first_read)
    points = [abs(beta) * cmath.exp(2j * cmath.pi * k / n_points) for k in range(n_points)]
    with torch.no_grad():
        steppers = [net.stepper(inputs, bk, y, u[0]) for bk in points]  # one per hold's beta
        for _ in range(periods):
            for bk, step in zip(points, steppers):
                # beta is constant over the hold: sum s there, divide by beta_k once
                sum_k = None
                for t in range(steps_per_point):
                    prev, u = u, step(u)
                    if t >= first_read:
                        s = net.activate(u)
                        sum_k, sum_u = _accumulate(sum_k, s), _accumulate(sum_u, u)
                sum_err = _accumulate(sum_err, tuple(v / bk for v in sum_k))
                sum_s = _accumulate(sum_s, sum_k)
    last_res = residual(u, prev)
    error = tuple((-e / reads).real for e in sum_err)
    s_bar = tuple((v / reads).real for v in sum_s)
    u_bar = tuple((v / reads).real for v in sum_u)
    grads = parameter_grads(net, x, y, u_bar, error, activated=s_bar)
    stats = Diagnostics(
        nudge=Phase(periods * n_points * steps_per_point, last_res, status(last_res, Status.OK)),
        imag_ratio=imag_ratio(net, u),
        seconds=time.perf_counter() - start,
    )
    return Estimate(error, grads, stats)


# a period: N values of beta, each held for steps_per_point steps
_COST = "periods * n_points * steps_per_point"
register(Method("hep_continuous", hep_continuous, cost=_COST, order=30, complex_nudge=True))
