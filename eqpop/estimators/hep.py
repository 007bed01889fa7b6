"""Holomorphic EP: the N-point Cauchy integral of Eqs. (7) and (22).

``d_beta s* ~ (1/N) sum_k (s*_{beta_k} - s*_0) / beta_k`` with ``beta_k = |beta| e^{2 i pi k/N}``.
Subtracting s*_0 changes nothing mathematically (sum_k 1/beta_k = 0) but removes a large
cancellation. The leading bias is ``|beta|^N / (N+1)!`` (appendix E.1).

A real net's fixed point at conj(beta) is the conjugate of the one at beta, so only the points
k = 0 .. N/2 are settled, all in one batched relaxation, and the others enter as conjugates.
N = 2 uses +|beta| and -|beta| and needs no complex arithmetic at all.
"""

from __future__ import annotations

import cmath
import time

import torch
from torch import Tensor

from eqpop.dynamics import Settled, settle
from eqpop.estimators.base import Estimate, finish, free_phase, imag_ratio
from eqpop.estimators.registry import Method, register
from eqpop.nets.base import EquilibriumNet, Inputs, State, tile


def cauchy_points(beta: float, n_points: int) -> tuple[list[complex], list[float]]:
    """The settled points beta_k (k = 0..N//2) and how often each counts in the full circle."""
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    ks = range(n_points // 2 + 1)
    points = [abs(beta) * cmath.exp(2j * cmath.pi * k / n_points) for k in ks]
    if n_points == 2:
        points = [complex(abs(beta)), complex(-abs(beta))]
    weights = [1.0 if k == 0 or 2 * k == n_points else 2.0 for k in ks]
    return points, weights


def hep(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    y: Tensor,
    *,
    beta: float = 0.1,
    n_points: int = 2,
    t_free: int = 100,
    t_nudge: int = 20,
    free: Settled | None = None,
    nudge_nonfinite: str = "keep",
) -> Estimate:
    """``nudge_nonfinite="zero"`` sets the entries of a nudged point's activated state that blew up
    (NaN or infinite: a complex nudge that met a pole of the activation) to zero, as the
    papers' reference code does (``nan_to_num``; infinities zeroed too, where it keeps them
    as +-3.4e38); the sample's estimate then misses that point's term but the batch trains on.
    "keep" leaves them, and the run stops as diverged. The nudged phase reports NON_FINITE
    either way."""
    if nudge_nonfinite not in ("keep", "zero"):
        raise ValueError(f"hep: nudge_nonfinite must be 'keep' or 'zero', got {nudge_nonfinite!r}")
    free = free_phase(net, x, t_free, free)
    start = time.perf_counter()
    points, weights = cauchy_points(beta, n_points)
    inputs = free.inputs
    k, b, like = len(points), inputs.x.shape[0], inputs.x
    real = all(p.imag == 0 for p in points)
    dtype = like.dtype if real else torch.promote_types(like.dtype, torch.complex64)
    betas = torch.tensor([p.real if real else p for p in points], dtype=dtype, device=like.device)
    nudged = settle(
        net,
        inputs.repeat(k),
        tile(y, k),
        beta=betas.repeat_interleave(b),
        steps=t_nudge,
        state=tuple(tile(u, k).to(dtype) for u in free.state),
    )
    s0 = net.activate(free.state)
    s_nudged = net.activate(nudged.state)
    if nudge_nonfinite == "zero":
        s_nudged = tuple(torch.where(torch.isfinite(s), s, 0) for s in s_nudged)
    error: State = tuple(
        -sum(
            (w / (n_points * bk)) * (sk - s) for w, bk, sk in zip(weights, betas, chunk.split(b))
        ).real
        for s, chunk in zip(s0, s_nudged)
    )
    return finish(
        net, x, y, free, error, start, nudge=nudged.phase, imag_ratio=imag_ratio(net, nudged.state)
    )


# N/2 + 1 points are settled (the others are their conjugates), each for t_nudge steps
register(
    Method("hep", hep, cost="t_free + (n_points // 2 + 1) * t_nudge", order=20, complex_nudge=True)
)
