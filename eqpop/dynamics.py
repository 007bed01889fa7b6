"""settle(): the one relaxation loop every estimator runs, real or complex; and how a phase
ended (``Phase``, ``Status``), kept on the device until someone reads it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum

import torch
from torch import Tensor

from eqpop.nets.base import EquilibriumNet, Inputs, State


class Status(IntEnum):
    """How a phase ended, from best to worst: the status of several phases is their maximum."""

    OK = 0  # reached its tolerance, or ran the fixed number of steps it was given
    MAX_STEPS = 1  # used every step it was allowed without reaching its tolerance
    GREW = 2  # a linear iteration grew between two checks and was stopped: not contracting
    NON_FINITE = 3  # NaN or inf in the state


def status(residuals: Tensor, ended: Status) -> Tensor:
    """``ended`` (what the loop knows), or NON_FINITE where a residual is NaN/inf: a 0-dim
    int64 tensor on the residuals' device, computed without a host synchronisation."""
    finite = torch.isfinite(residuals).all()
    return torch.where(finite, int(ended), int(Status.NON_FINITE))


@dataclass(frozen=True)
class Phase:
    """One relaxation or linear iteration: ``steps`` (known to the host that ran the loop) and,
    on the device, the per-sample ``residuals`` of its last step and its ``status``."""

    steps: int
    residuals: Tensor
    status: Tensor

    @property
    def residual(self) -> Tensor:
        """The largest per-sample residual, a 0-dim device tensor."""
        return self.residuals.amax()


@dataclass
class Settled:
    """A relaxed state with the diagnostics of how it got there.

    ``residuals`` is the per-sample RMS change of the state in the last step (the norm of the
    discrete vector field, as the paper uses to tune the number of steps); ``residual`` its
    largest value, read on the host. ``inputs`` is the batch with its first-layer drive, for
    the phases that follow on the same batch.
    """

    state: State
    steps: int
    residuals: Tensor
    seconds: float
    status: Tensor
    inputs: Inputs

    @property
    def residual(self) -> float:
        return float(self.residuals.max())

    @property
    def phase(self) -> Phase:
        return Phase(self.steps, self.residuals, self.status)


def residual(new: State, old: State) -> Tensor:
    """Per-sample RMS of ``new - old`` over all units of all layers, shape ``(B,)``."""
    sq = sum((n - o).abs().pow(2).flatten(1).sum(1) for n, o in zip(new, old))
    units = sum(n[0].numel() for n in new)
    return (sq / units).sqrt()


def to_dtype(state: State, dtype: torch.dtype) -> State:
    return tuple(u.to(dtype) for u in state)


def settle(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    y: Tensor | None = None,
    beta: float | complex | Tensor = 0.0,
    steps: int = 100,
    state: State | None = None,
    tol: float | None = None,
    check_every: int = 10,
) -> Settled:
    """Iterate ``net.step`` from ``state`` (default ``net.initial_state(x)``) up to ``steps`` times.

    ``x`` is a batch or its ``Inputs`` (the first-layer drive, computed here once if not given).
    A complex ``beta`` (scalar or one per sample) lifts the state to the complex dtype matching
    ``x``. With ``tol``, stops at the first of every ``check_every`` steps (and the last) where
    the residual is under it, ends MAX_STEPS if it never is, and those checks are its only host
    synchronisations; without ``tol`` it never waits for the host.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    start = time.perf_counter()
    with torch.no_grad():
        inputs = net.inputs(x)
    x = inputs.x
    u = net.initial_state(x) if state is None else state
    complex_beta = torch.is_complex(beta) if isinstance(beta, Tensor) else isinstance(beta, complex)
    if complex_beta and not u[0].is_complex():
        u = to_dtype(u, torch.promote_types(u[0].dtype, torch.complex64))
    res = torch.full((x.shape[0],), float("inf"), device=x.device)
    done, ended = 0, Status.OK if tol is None else Status.MAX_STEPS
    with torch.no_grad():
        step = net.stepper(inputs, beta, y, u[0])
        for done in range(1, steps + 1):
            new = step(u)
            check = tol is not None and (done % check_every == 0 or done == steps)
            if check or done == steps:
                res = residual(new, u)
            u = new
            if check and res.max().item() < tol:
                ended = Status.OK
                break
    return Settled(u, done, res, time.perf_counter() - start, status(res, ended), inputs)
