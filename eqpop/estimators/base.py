"""What every estimator returns, and the pieces they share.

Sign convention: ``Estimate.error`` is the paper's delta (Eq. 4), per layer and per sample, so
that the gradient estimate is ``dL/dtheta ~ mean_batch (dF/dtheta)^T error`` (Eq. 6). EP-type
estimators report ``-d_beta s*`` (the nudge pushes *down* the loss), which equals RBP's delta
for a net with a symmetric Jacobian.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from eqpop.dynamics import (
    Phase,
    Settled,
    Status,
    anderson,
    flat,
    residual,
    settle,
    status,
    unflat,
)
from eqpop.nets.base import EquilibriumNet, Inputs, State, batch_of

PHASES = ("free", "nudge", "linear")


@dataclass(frozen=True)
class Diagnostics:
    """How an estimate was made, with the same fields for every estimator; its tensors stay on
    the device until ``read``, so that making an estimate never waits for the host.

    A phase the estimator does not run is None: ``free`` (the free fixed point, shared or its
    own), ``nudge`` (classic's and hEP's nudged relaxations, hep_continuous's oscillation),
    ``linear`` (RBP's adjoint or exact's tangent iteration). ``imag_ratio`` is set by estimators
    that nudge with complex beta (see ``imag_ratio``); ``seconds`` is wall time on the host.
    """

    free: Phase | None = None
    nudge: Phase | None = None
    linear: Phase | None = None
    imag_ratio: Tensor | None = None
    seconds: float = 0.0

    def phases(self) -> list[Phase]:
        return [p for p in (getattr(self, name) for name in PHASES) if p is not None]

    @property
    def own(self) -> Phase | None:
        """The estimator's own phase (nudged, else linear, else free): what ``eqpop compare``
        reports as an estimate's residual."""
        return self.nudge or self.linear or self.free

    @property
    def status(self) -> Tensor:
        """The worst status of the phases run (0-dim device tensor; OK when none is)."""
        phases = self.phases()
        if not phases:
            return torch.zeros((), dtype=torch.int64)
        return torch.stack([p.status for p in phases]).amax()

    def read(self) -> dict[str, float | int | None]:
        """Every field as a Python number, None where absent, plus ``residual`` (the own
        phase's): one host sync."""
        out: dict[str, float | int | None] = {"seconds": self.seconds, "imag_ratio": None}
        out["residual"] = None
        pending: dict[str, Tensor] = {"status": self.status}
        if self.own is not None:
            pending["residual"] = self.own.residual
        if self.imag_ratio is not None:
            pending["imag_ratio"] = self.imag_ratio
        for name in PHASES:
            phase = getattr(self, name)
            out[f"{name}_steps"] = out[f"{name}_residual"] = None
            if phase is not None:
                out[f"{name}_steps"] = phase.steps
                pending[f"{name}_residual"] = phase.residual
        values = torch.stack([t.double() for t in pending.values()]).tolist()
        out.update(zip(pending, values))
        out["status"] = Status(int(out["status"]))
        return out


@dataclass
class Estimate:
    """Error vectors, gradients ready for ``.grad`` and the diagnostics of the phases run."""

    error: State
    grads: dict[str, Tensor]
    stats: Diagnostics


def free_phase(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    steps: int,
    free: Settled | None = None,
    tol: float | None = None,
) -> Settled:
    """The free fixed point, or the one the caller already settled (shared across methods)."""
    return free if free is not None else settle(net, x, steps=steps, tol=tol)


def loss_cotangent(net: EquilibriumNet, state: State, y: Tensor) -> State:
    """Per-sample ``dloss/du`` at ``state`` (the sum over the batch, differentiated)."""
    u = tuple(t.detach().requires_grad_() for t in state)
    with torch.enable_grad():
        loss = net.sample_loss(u, y).sum()
        grads = torch.autograd.grad(loss, u, allow_unused=True)
    return tuple(torch.zeros_like(t) if g is None else g for t, g in zip(u, grads))


def activated_tangent(net: EquilibriumNet, state: State, tangent: State) -> State:
    """``d activate(u) . tangent``: maps a state derivative to activated coordinates."""
    return torch.func.jvp(lambda *u: net.activate(u), tuple(state), tuple(tangent))[1]


def parameter_grads(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    y: Tensor,
    state: State,
    error: State,
    activated: State | None = None,
) -> dict[str, Tensor]:
    """``mean_batch (d drive/dtheta)^T error`` for the dynamics' parameters (Eq. 6), plus the
    true loss gradient for the readout, which does not act on the free dynamics.

    ``activated`` is the presynaptic activity (default ``activate(state)``); the readout's
    gradient is taken at ``state``.
    """
    named = dict(net.named_parameters())
    readout = {k: named[k] for k in net.readout_names if k in named}
    dynamic = {k: p for k, p in named.items() if k not in readout}
    s = tuple(t.detach() for t in (net.activate(state) if activated is None else activated))
    x = batch_of(x)  # the first-layer drive is differentiated here, so from the raw batch
    batch = x.shape[0]
    with torch.enable_grad():
        out = net.drive(s, x)
        cot = tuple(e.to(o.dtype) / batch for e, o in zip(error, out))
        g = torch.autograd.grad(out, list(dynamic.values()), cot, allow_unused=True)
        grads = {
            k: torch.zeros_like(p) if gk is None else gk for (k, p), gk in zip(dynamic.items(), g)
        }
        if readout:
            loss = net.loss(tuple(t.detach() for t in state), y)
            for k, gk in zip(readout, torch.autograd.grad(loss, list(readout.values()))):
                grads[k] = gk
    return {k: grads[k] for k in named}


def imag_ratio(net: EquilibriumNet, state: State) -> Tensor:
    """Largest ``|Im u|`` of complex nudged states over the net's ``analytic_strip`` (a 0-dim
    float64 device tensor).

    At 1 or more the states may have met a pole of the activation: the fixed point need not be
    analytic in the disk of radius |beta|, and the Cauchy estimate's bias bound no longer holds
    (a smaller |beta| restores it). 0 for real states.
    """
    if not state[0].is_complex():
        return torch.zeros((), dtype=torch.float64, device=state[0].device)
    peak = torch.stack([u.imag.abs().amax() for u in state]).amax()
    return peak.double() / net.analytic_strip


def solve_linear(
    apply: Callable[[State], State],
    source: State,
    max_steps: int,
    rtol: float,
    check_every: int = 10,
    memory: int = 0,
) -> tuple[State, Phase]:
    """Fixed point of ``w <- apply(w) + source`` (RBP's adjoint, exact's tangent), from
    ``w = 0``: after n steps w is the n-term series ``sum_{k<n} apply^k(source)``, which is what
    n nudged steps from the free fixed point give to first order in beta (so exact capped at
    T_nudge steps is the limit of hEP with that nudged phase). Every ``check_every`` steps it
    measures the per-sample RMS change relative to the RMS of w; it stops once that falls under
    ``rtol`` (OK), after ``max_steps`` (MAX_STEPS), or as soon as it *grows* between two checks
    (GREW: the linearised dynamics are not contracting, the net's fixed point is marginal or
    unstable), keeping the last iterate before the growth. The checks are the loop's only host
    synchronisations. Returns w and the phase, with the per-sample relative residuals.

    Iterated on without the growth check, one diverging adjoint wrecked a training run in a
    single step. ``memory`` > 0 accelerates the iteration instead (``anderson``, to ``rtol``;
    it ends OK or MAX_STEPS).
    """
    if memory:
        b = flat(source)
        with torch.no_grad():
            z, n, rel, ended = anderson(
                lambda z: flat(apply(unflat(z, source))) + b,
                torch.zeros_like(b),
                max_steps,
                rtol,
                memory,
                relative=True,
            )
        return unflat(z, source), Phase(n, rel, status(rel, ended))
    w, n, best = tuple(torch.zeros_like(t) for t in source), 0, float("inf")
    ended, checked = Status.MAX_STEPS, None
    with torch.no_grad():
        for n in range(1, max_steps + 1):
            new = tuple(a + b for a, b in zip(apply(w), source))
            if n % check_every == 0 or n == max_steps:
                scale = residual(new, tuple(torch.zeros_like(t) for t in new)).clamp_min(1e-30)
                rel = residual(new, w) / scale
                res = float(rel.max())
                if res > best:
                    ended, n = Status.GREW, n - 1
                    break
                best, checked = res, rel
                if res < rtol:
                    ended, w = Status.OK, new
                    break
            w = new
    return w, Phase(n, checked, status(checked, ended))


def finish(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    y: Tensor,
    free: Settled,
    error: State,
    start: float,
    **phases: Phase | Tensor | None,
) -> Estimate:
    """Common tail of the free-phase estimators: gradients at the free fixed point, and the
    diagnostics of the free phase plus ``phases`` (``nudge``, ``linear``, ``imag_ratio``).

    ``seconds`` counts the free phase at its own cost even when it was settled once and
    shared, so that methods compare as if each had run alone.
    """
    grads = parameter_grads(net, x, y, free.state, error)
    seconds = time.perf_counter() - start + free.seconds
    stats = Diagnostics(free=free.phase, seconds=seconds, **phases)
    return Estimate(tuple(e.detach() for e in error), grads, stats)
