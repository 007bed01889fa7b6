"""settle(): the one relaxation loop every estimator runs, real or complex; and how a phase
ended (``Phase``, ``Status``), kept on the device until someone reads it."""

from __future__ import annotations

import time
from collections.abc import Callable
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


def anderson(
    fn: Callable[[Tensor], Tensor],
    x0: Tensor,
    max_steps: int,
    tol: float,
    memory: int = 5,
    relative: bool = False,
    check_every: int = 5,
    reg: float = 1e-6,
) -> tuple[Tensor, int, Tensor, Status]:
    """Anderson acceleration (type II, mixing 1: Walker & Ni 2011, as deep-equilibrium models
    use it) of ``x <- fn(x)`` for the rows of ``x0``, independent problems (one per sample).

    Each step evaluates ``fn`` once and moves to the combination of the last ``memory`` images
    ``fn(x_i)`` whose residuals ``fn(x_i) - x_i`` combine to the least norm (weights summing
    to 1; a ridge of ``reg`` times their mean square keeps the small system regular).
    Safeguarded: a row whose residual grew past its best forgets its history and takes a
    plain step from there (unguarded, 2 of 50 rows of a trained Fashion-MNIST net stalled at
    4e-3). Every ``check_every`` steps (its only host synchronisations) it stops if every
    row's residual RMS (relative to the RMS of ``fn(x)`` when ``relative``) is under ``tol``.
    Returns ``fn(x)`` at the last iterate, the steps, the per-row residuals of that iterate,
    and OK or MAX_STEPS.
    """
    b, n = x0.shape
    residuals = x0.new_zeros(b, memory, n)  # fn(x_i) - x_i
    images = x0.new_zeros(b, memory, n)  # fn(x_i)
    valid = torch.zeros(b, memory, dtype=torch.bool, device=x0.device)
    system = x0.new_zeros(b, memory + 1, memory + 1)
    system[:, 0, 1:] = system[:, 1:, 0] = 1
    rhs = x0.new_zeros(b, memory + 1, 1)
    rhs[:, 0] = 1
    eye = torch.eye(memory, dtype=x0.dtype, device=x0.device)
    x, best = x0, x0.new_full((b,), float("inf")).real
    res = best
    for k in range(max_steps):
        fx = fn(x)
        g = fx - x
        slot = k % memory
        residuals[:, slot], images[:, slot] = g, fx
        norm = torch.linalg.vector_norm(g, dim=1)
        valid &= (norm <= best)[:, None]  # the safeguard's restart
        valid[:, slot] = True
        best = torch.minimum(best, norm)
        if (k + 1) % check_every == 0 or k + 1 == max_steps:
            scale = torch.linalg.vector_norm(fx, dim=1).clamp_min(1e-30) if relative else n**0.5
            res = norm / scale
            if res.max().item() < tol:
                return fx, k + 1, res, Status.OK
        if k + 1 == max_steps:
            break
        gram = torch.bmm(residuals, residuals.transpose(1, 2).conj())
        gram = gram.masked_fill(~(valid[:, :, None] & valid[:, None, :]), 0)
        # scaled to a unit mean square (the weights do not change), or a converged row's tiny
        # entries vanish beside the constraint's ones in float32; a forgotten or empty slot
        # gets a weight of ~1e-8 of the others'
        diag = gram.diagonal(dim1=1, dim2=2).real
        mean = (diag.sum(1) / valid.sum(1)).clamp_min(1e-30)
        ridge = torch.where(valid, reg, 1e8)
        system[:, 1:, 1:] = gram / mean[:, None, None] + ridge[:, :, None] * eye
        weights = torch.linalg.solve_ex(system, rhs)[0]
        x = torch.bmm(weights[:, 1:, :].transpose(1, 2), images)[:, 0]
    return fx, max_steps, res, Status.MAX_STEPS


def flat(state: State) -> Tensor:
    """A state as one batch-first matrix (``unflat`` takes it back)."""
    return torch.cat([u.flatten(1) for u in state], 1)


def unflat(z: Tensor, like: State) -> State:
    sizes = [u[0].numel() for u in like]
    return tuple(part.reshape(u.shape) for part, u in zip(z.split(sizes, 1), like))


def settle(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    y: Tensor | None = None,
    beta: float | complex | Tensor = 0.0,
    steps: int = 100,
    state: State | None = None,
    tol: float | None = None,
    check_every: int = 10,
    memory: int = 0,
) -> Settled:
    """Iterate ``net.step`` from ``state`` (default ``net.initial_state(x)``) up to ``steps`` times.

    ``x`` is a batch or its ``Inputs`` (the first-layer drive, computed here once if not given).
    A complex ``beta`` (scalar or one per sample) lifts the state to the complex dtype matching
    ``x``. With ``tol``, stops at the first of every ``check_every`` steps (and the last) where
    the residual is under it, ends MAX_STEPS if it never is, and those checks are its only host
    synchronisations; without ``tol`` it never waits for the host. ``memory`` > 0 accelerates
    the iteration (``anderson`` with that memory, to ``tol``, which it then needs; it checks
    every 5 steps, as it takes few).
    """
    if memory and tol is None:
        raise ValueError("Anderson acceleration (memory > 0) needs a tolerance")
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
        if memory:
            z, done, res, ended = anderson(
                lambda z: flat(step(unflat(z, u))), flat(u), steps, tol, memory, check_every=5
            )
            u = unflat(z, u)
            seconds = time.perf_counter() - start
            return Settled(u, done, res, seconds, status(res, ended), inputs)
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
