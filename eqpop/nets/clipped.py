"""The layered net of Scellier & Bengio (2017) as O'Connor et al. (2019) train it: hard-sigmoid
units whose states are clipped to [0, 1] after every step, and the output layer's clipped state
is the prediction, with a squared-error cost (``SquaredErrorOutput``).

O'Connor et al.'s step is ``s <- clip(s - eps dE/ds, 0, 1)`` with
``dE/ds = s - drive(s)`` (drive: bias, input, both neighbours' clipped states through the
weights, the nudge ``-beta dC/ds``). Here the state ``u`` is the step's value *before* the clip
and the activation is the clip, so that ``activate(u)`` follows their dynamics exactly:
``u <- s + dt (drive(s) - s)`` with ``s = clip(u)``, a step that starts from the activated state
(``origin``). Written so, the net keeps eqpop's contract: the step's Jacobian carries the clip's
mask (a saturated unit neither moves nor passes a perturbation on), so RBP's adjoint, the exact
derivative and every EP estimate differentiate the clipped dynamics, and the dense float64
ground truth of the tests holds for it as for the smooth nets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from eqpop.nets.activations import hard_sigmoid
from eqpop.nets.base import Init, Inputs, State
from eqpop.nets.mlp import LayeredMLP
from eqpop.nets.readout import SquaredErrorOutput


class ClippedMLP(SquaredErrorOutput, LayeredMLP):
    """A reciprocal MLP (``LayeredMLP``'s weights, ties and starting angles) with hard-sigmoid
    units clipped to [0, 1] and a squared-error output layer; ``dt`` is O'Connor et al.'s
    step size epsilon (0.5), and their weights are drawn ``xavier_uniform``."""

    analytic_strip = 0.0  # the clip is analytic nowhere off the reals: no hEP on this net

    def __init__(
        self, sizes: Sequence[int], *, dt: float = 0.5, init: Init = "xavier_uniform", **net: Any
    ):
        """``LayeredMLP``'s arguments, with O'Connor et al.'s step size and draw as defaults."""
        super().__init__(sizes, dt=dt, init=init, **net)

    def activate(self, state: State) -> State:
        return tuple(hard_sigmoid(u) for u in state)

    def origin(self, state: State, activated: State) -> State:
        """A step starts from the clipped state, as O'Connor et al.'s gradient step does."""
        return activated

    def anchor(self, drive: State, activated: State, guess: State, lam: float) -> State:
        """Eq. (10)'s pull added to the energy's gradient unscaled, as in O'Connor et al.'s
        code (``E + lambda/2 ||s - s^f||^2``): the step is then theirs,
        ``s + eps (drive - s + lambda (s^f - s))``; the fixed points are the same either way."""
        return tuple(d + lam * (g.to(d.dtype) - s) for d, g, s in zip(drive, guess, activated))

    def stepper(self, inputs: Inputs, beta, y, like: Tensor) -> Callable[[State], State]:
        if like.is_complex():
            raise ValueError("the clipped net is not holomorphic: no complex nudges (hEP) on it")
        return super().stepper(inputs, beta, y, like)
