"""Predictive coding network with value and error neurons (appendix D, Fig. 5).

Error neurons ``eps_l = u_l - (w_f[l] sigma(u_{l-1}) + b_l)`` (``u_0 = x``) and value neurons
``du_l/dt = -eps_l + sigma'(u_l) * (w_b[l] eps_{l+1})``; the output is nudged towards the
one-hot target by ``-beta (u_L - y)``, the gradient of the squared-error loss. With tied
weights ``w_b[l] = w_f[l+1]^T`` the dynamics descend an energy and the Jacobian is symmetric.
The value neurons are the state that synapses see, so ``activate`` is the identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from eqpop.nets.activations import (
    SHIFTED_SIGMOID_STRIP,
    shifted_sigmoid,
    shifted_sigmoid_prime,
)
from eqpop.nets.base import (
    EquilibriumNet,
    FeedbackScale,
    Init,
    Inputs,
    State,
    WeightInit,
    after_first,
    as_column,
    cast,
    dense_weights,
    feedback_weights,
    one_hot,
)
from eqpop.nets.mlp import _check_sizes


class PredictiveCodingNet(EquilibriumNet):
    analytic_strip = SHIFTED_SIGMOID_STRIP

    def __init__(
        self,
        sizes: Sequence[int],
        symmetric: bool = False,
        asymmetry_angle: float | None = None,
        feedback_scale: FeedbackScale = "matched",
        dt: float = 0.2,
        init: Init = "uniform",
        gain: float = 1.0,
    ):
        super().__init__()
        self.sizes = _check_sizes(sizes)
        self.n_classes = self.sizes[-1]
        self.dt = float(dt)
        self.symmetric = symmetric
        weights = WeightInit(init, gain)
        self.w_f = dense_weights(self.sizes, weights)
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(n)) for n in self.sizes[1:])
        forward = [] if symmetric else list(self.w_f[1:])
        self.w_b = feedback_weights(
            forward, weights, asymmetry_angle, transposed=True, scale=feedback_scale
        )

    @property
    def readout_names(self) -> tuple[str, ...]:
        return ()

    def initial_state(self, x: Tensor) -> State:
        return tuple(x.new_zeros(x.shape[0], n) for n in self.sizes[1:])

    def activate(self, state: State) -> State:
        return state

    def input_drive(self, x: Tensor) -> Tensor:
        return x.flatten(1) @ self.w_f[0].T + self.b[0]

    def errors(self, u: State, x: Tensor | Inputs) -> list[Tensor]:
        """Error neurons eps_l: what each layer's value misses of its prediction."""
        activated = [shifted_sigmoid(v) for v in u[:-1]]
        eps = [u[0] - cast(self.inputs(x).first, u[0])]
        for v, inp, w, b in zip(u[1:], activated, after_first(self.w_f), after_first(self.b)):
            eps.append(v - (inp @ cast(w, inp).T + cast(b, v)))
        return eps

    def drive(self, s: State, x: Tensor | Inputs, beta=0.0, y=None) -> State:
        """``u + F(u)``: the Euler target with unit step, so that ``d drive/du - I = J_F``."""
        eps = self.errors(s, x)
        field = [-e for e in eps]
        for k, w_b in enumerate(self.backward_weights()):
            field[k] = field[k] + shifted_sigmoid_prime(s[k]) * (eps[k + 1] @ cast(w_b, s[k]).T)
        if self.check_nudge(beta, y):
            target = one_hot(y, self.n_classes, s[-1])
            field[-1] = field[-1] - as_column(beta, s[-1]) * (s[-1] - target)
        return tuple(v + f for v, f in zip(s, field))

    def readout(self, state: State) -> Tensor:
        return state[-1]

    def sample_loss(self, state: State, y: Tensor) -> Tensor:
        target = one_hot(y, self.n_classes, state[-1])
        return 0.5 * ((state[-1] - target) ** 2).sum(1)
