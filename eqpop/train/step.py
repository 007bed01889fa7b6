"""One training step, composed of terms. A term acts at up to three points of a batch: before
the estimate (``prepare``: the sign rule flips beta, Init-EP starts the free phase from its
prediction), on the parameters' gradients (``add``: the estimate sets them, homeostasis adds
its loss's), and after the optimiser's step (``after``: Init-EP's initializer learns). A new
term joins by being listed in ``terms``; the step itself does not change.

Nothing in a step waits for the host: what an epoch adds up is kept on the device
(``EpochTally``) and read once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from eqpop import homeostasis
from eqpop.config import TrainConfig
from eqpop.dynamics import Settled, settle
from eqpop.estimators.base import Estimate
from eqpop.estimators.registry import Method
from eqpop.nets import EquilibriumNet, State
from eqpop.train.state import TrainingState


class EpochTally:
    """What an epoch's training batches add up to, kept on the device: nothing in a training
    step waits for the host, and ``read`` brings it all over in one synchronisation."""

    def __init__(self, device: torch.device):
        def zero(dtype: torch.dtype) -> Tensor:
            return torch.zeros((), dtype=dtype, device=device)

        self.loss, self.homeo = zero(torch.float64), zero(torch.float64)
        self.errors, self.status = zero(torch.int64), zero(torch.int64)
        self.bad_grad, self.bad_state = zero(torch.bool), zero(torch.bool)
        self.imag_ratio: Tensor | None = None  # the largest over the batches (hEP)
        self.free: Settled | None = None  # the last batch's free phase
        self.seen = self.batches = 0

    def add(self, est: Estimate, free: Settled | None, grads: list[Tensor], state: State) -> None:
        self.status = torch.maximum(self.status, est.stats.status)
        if est.stats.imag_ratio is not None:
            ratio = est.stats.imag_ratio
            self.imag_ratio = ratio if self.imag_ratio is None else self.imag_ratio.maximum(ratio)
        self.free = free
        for g in grads:
            self.bad_grad |= ~torch.isfinite(g).all()
        for u in state:
            self.bad_state |= ~torch.isfinite(u).all()

    def read(self) -> dict[str, float]:
        """Sums, flags and the last free residual as Python numbers (NaN where absent)."""
        nan = torch.full((), math.nan, dtype=torch.float64, device=self.loss.device)
        values = {
            "loss": self.loss,
            "homeo": self.homeo,
            "errors": self.errors,
            "status": self.status,
            "bad_grad": self.bad_grad,
            "bad_state": self.bad_state,
            "imag_ratio": nan if self.imag_ratio is None else self.imag_ratio,
            "residual": nan if self.free is None else self.free.residuals.max(),
        }
        return dict(zip(values, torch.stack([v.double() for v in values.values()]).tolist()))


@dataclass
class Batch:
    """What the terms of one step share."""

    x: Tensor
    y: Tensor
    hyper: dict[str, Any]  # the method's keywords for this batch
    dynamics: EquilibriumNet  # the net whose fixed points the estimate sees
    start: State | None = None  # where the free phase starts (None: the net's own start)
    free: Settled | None = None  # the method's free phase (None: it has none)
    est: Estimate | None = None
    settled: Settled | None = None  # the trained net's free fixed point


class Term:
    """A part of the training step; each hook does nothing unless a term overrides it."""

    def prepare(self, batch: Batch) -> None:
        """Before the estimate."""

    def add(self, batch: Batch, tally: EpochTally) -> None:
        """On the parameters' gradients, in the order the terms are listed."""

    def after(self, batch: Batch) -> None:
        """After the optimiser's step."""


class SignRule(Term):
    """``random_sign``: beta's sign drawn per batch from the run's own stream."""

    def __init__(self, state: TrainingState):
        self.state = state

    def prepare(self, batch: Batch) -> None:
        if self.state.signs.random() < 0.5:
            batch.hyper["beta"] = -batch.hyper["beta"]


class InitEP(Term):
    """Initialized EP (O'Connor et al. 2019): the free phase starts from the initializer's
    prediction (of a net anchored to it, ``init_ep_lambda``), and after each step the
    initializer learns to predict the fixed point reached."""

    def __init__(self, state: TrainingState):
        self.state = state

    def prepare(self, batch: Batch) -> None:
        batch.dynamics = self.state.dynamics()
        batch.start = self.state.start_state(batch.x)

    def after(self, batch: Batch) -> None:
        optimizer = self.state.init_optimizer
        optimizer.zero_grad(set_to_none=True)
        self.state.initializer.local_loss(batch.x, batch.settled.state).backward()
        optimizer.step()


class Gradient(Term):
    """The method's estimate, from the free phase it settles (if it has one): it sets every
    parameter's gradient."""

    def __init__(self, state: TrainingState, method: Method, cfg: TrainConfig):
        self.state, self.method, self.relaxation = state, method, cfg.relaxation()

    def add(self, batch: Batch, tally: EpochTally) -> None:
        x, y, net = batch.x, batch.y, self.state.net
        if self.method.free_phase:
            batch.free = settle(batch.dynamics, x, state=batch.start, **self.relaxation)
            batch.hyper["free"] = batch.free
        batch.est = self.method.estimate(batch.dynamics, x, y, **batch.hyper)
        for name, p in net.named_parameters():
            p.grad = batch.est.grads[name].clone()
        batch.settled = batch.free if batch.free is not None else settle(net, x, **self.relaxation)


class Homeostasis(Term):
    """``lambda_homeo`` times the Jacobian homeostasis loss (Eq. 12) at the free fixed point,
    its gradient added to the estimate's."""

    def __init__(self, state: TrainingState, cfg: TrainConfig):
        self.state, self.strength, self.samples = state, cfg.lambda_homeo, cfg.homeo_samples

    def add(self, batch: Batch, tally: EpochTally) -> None:
        settled = batch.settled
        h = homeostasis.loss(
            self.state.net, settled.inputs, settled.state, self.samples, generator=self.state.noise
        )
        (self.strength * h).backward()
        tally.homeo += h.detach().double()


def terms(cfg: TrainConfig, state: TrainingState, method: Method) -> list[Term]:
    """The run's terms, in the order they act."""
    found: list[Term] = []
    if method.nudged and cfg.random_sign:
        found.append(SignRule(state))
    if state.initializer is not None:
        found.append(InitEP(state))
    found.append(Gradient(state, method, cfg))
    if cfg.lambda_homeo > 0:
        found.append(Homeostasis(state, cfg))
    return found


class Step:
    """One batch: every term's ``prepare``, the gradients (``add``), the optimiser's step,
    every term's ``after``; the batch's loss and errors tallied on the device."""

    def __init__(self, cfg: TrainConfig, state: TrainingState, method: Method):
        self.state = state
        self.settings = method.settings(cfg)  # the method's keywords, as the config sets them
        self.terms = terms(cfg, state, method)

    def __call__(self, x: Tensor, y: Tensor, tally: EpochTally) -> None:
        state, net = self.state, self.state.net
        batch = Batch(x, y, dict(self.settings), net)
        for term in self.terms:
            term.prepare(batch)
        state.optimizer.zero_grad(set_to_none=True)
        for term in self.terms:
            term.add(batch, tally)
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        tally.add(batch.est, batch.free, grads, batch.settled.state)
        state.optimizer.step()
        for term in self.terms:
            term.after(batch)
        with torch.no_grad():
            s = batch.settled.state
            tally.loss += net.loss(s, y).double() * len(y)
            tally.errors += (net.readout(s).argmax(1) != y).sum()
        tally.seen += len(y)
        tally.batches += 1
