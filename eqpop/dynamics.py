"""settle(): the one relaxation loop every estimator runs, real or complex."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from eqpop.nets.base import EquilibriumNet, State


@dataclass
class Settled:
    """A relaxed state with the diagnostics of how it got there.

    ``residuals`` is the per-sample RMS change of the state in the last step (the norm of the
    discrete vector field, as the paper uses to tune the number of steps); ``residual`` its
    largest value.
    """

    state: State
    steps: int
    residuals: Tensor
    seconds: float

    @property
    def residual(self) -> float:
        return float(self.residuals.max())


def residual(new: State, old: State) -> Tensor:
    """Per-sample RMS of ``new - old`` over all units of all layers, shape ``(B,)``."""
    sq = sum((n - o).abs().pow(2).flatten(1).sum(1) for n, o in zip(new, old))
    units = sum(n[0].numel() for n in new)
    return (sq / units).sqrt()


def to_dtype(state: State, dtype: torch.dtype) -> State:
    return tuple(u.to(dtype) for u in state)


def settle(
    net: EquilibriumNet,
    x: Tensor,
    y: Tensor | None = None,
    beta: float | complex | Tensor = 0.0,
    steps: int = 100,
    state: State | None = None,
    tol: float | None = None,
) -> Settled:
    """Iterate ``net.step`` from ``state`` (default ``net.initial_state(x)``) up to ``steps`` times.

    A complex ``beta`` (scalar or one per sample) lifts the state to the complex dtype matching
    ``x``. With ``tol``, stops as soon as the residual falls under it (one host sync a step).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    start = time.perf_counter()
    u = net.initial_state(x) if state is None else state
    complex_beta = torch.is_complex(beta) if isinstance(beta, Tensor) else isinstance(beta, complex)
    if complex_beta and not u[0].is_complex():
        u = to_dtype(u, torch.promote_types(u[0].dtype, torch.complex64))
    res = torch.full((x.shape[0],), float("inf"), device=x.device)
    done = 0
    with torch.no_grad():
        for done in range(1, steps + 1):
            new = net.step(u, x, beta, y)
            if tol is not None or done == steps:
                res = residual(new, u)
            u = new
            if tol is not None and res.max().item() < tol:
                break
    return Settled(u, done, res, time.perf_counter() - start)
