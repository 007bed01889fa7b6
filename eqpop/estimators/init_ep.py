"""Initialized EP (O'Connor et al. 2019): a feed-forward net predicts the free fixed point.

The initializer mirrors the equilibrium net's forward path (dense or conv + softmax pooling)
and is trained with *local* per-layer losses only: each layer regresses the settled state of
its layer from its own, detached, input, so no gradient flows between its layers. The free
phase then starts from its prediction, which combines with any estimator that has a free phase.
``Anchored`` adds Eq. (10)'s pull ``lambda (s^f - s)`` towards the prediction.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from eqpop.nets.activations import (
    hard_sigmoid,
    leaky_hard_sigmoid,
    shifted_sigmoid,
    sigmoid_weighted_unit,
)
from eqpop.nets.base import EquilibriumNet, Inputs, State, WeightInit, batch_of
from eqpop.nets.clipped import ClippedMLP
from eqpop.nets.conv import ConvNet, softmax_pool


def _same(t: Tensor) -> Tensor:
    return t


class Initializer(nn.Module):
    """Predicts every layer's free fixed point u*_l from x in one forward pass.

    Its weights are drawn as the net's (``init``) and its biases start at zero. For the clipped
    net it is O'Connor et al.'s: each layer's prediction is ``leaky_hard_sigmoid`` of its affine
    output and feeds the next layer as it is, and it regresses the settled *clipped* state."""

    def __init__(self, net: EquilibriumNet, init: WeightInit | None = None):
        super().__init__()
        self.conv = isinstance(net, ConvNet)
        clipped = isinstance(net, ClippedMLP)
        #: how a layer's affine output becomes its predicted state, and which view of the
        #: settled state the prediction regresses
        self.predict: Callable[[Tensor], Tensor] = leaky_hard_sigmoid if clipped else _same
        self.observe: Callable[[Tensor], Tensor] = hard_sigmoid if clipped else _same
        if self.conv:
            c_in = [net.w_f[0].shape[1], *net.channels[:-1]]
            self.paddings = list(net.paddings)
            self.layers = nn.ModuleList(
                nn.Conv2d(ci, co, 3, padding=p)
                for ci, co, p in zip(c_in, net.channels, net.paddings)
            )
            self.act = sigmoid_weighted_unit
        else:
            sizes = net.sizes
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
            self.act = _same if clipped else shifted_sigmoid  # how a prediction feeds the next
        for layer in self.layers:
            (init or WeightInit()).fill_(layer.weight, layer.weight[0].numel())
            nn.init.zeros_(layer.bias)
        self.to(next(net.parameters()).dtype)

    def _layer(self, k: int, inp: Tensor) -> Tensor:
        if self.conv:
            return softmax_pool(self.layers[k](inp))
        return self.layers[k](inp.flatten(1))

    def forward(self, x: Tensor, local: bool = False) -> State:
        """Predicted states; ``local`` detaches each layer's input (training with local losses)."""
        out, inp = [], x
        for k in range(len(self.layers)):
            u = self.predict(self._layer(k, inp))
            out.append(u)
            inp = self.act(u.detach() if local else u)
        return tuple(out)

    def local_loss(self, x: Tensor, target: State) -> Tensor:
        """Sum over layers of half the squared distance to the settled state, averaged over the
        batch (Eq. 8 halved, as O'Connor et al.'s code: its gradient is the plain difference)."""
        pred = self(x, local=True)
        return sum(
            ((p - self.observe(t.detach())) ** 2).flatten(1).sum(1).mean() / 2
            for p, t in zip(pred, target)
        )

    def distance(self, pred: State, state: State) -> Tensor:
        """RMS distance between a prediction and the settled state it regresses, over all units
        (0-dim, float64, on the device: an evaluation reads it once per epoch)."""
        sq = torch.zeros((), dtype=torch.float64, device=state[0].device)
        for p, s in zip(pred, state):
            sq = sq + ((p - self.observe(s)) ** 2).sum().double()
        return (sq / sum(s.numel() for s in state)) ** 0.5


class Anchored(EquilibriumNet):
    """The net with Eq. (10)'s extra pull ``lambda (u^f - u)`` towards the initializer's guess.

    Its fixed point solves ``F(u) + lambda (u^f - u) = 0``. The wrapped net is not registered as
    a submodule, so parameter names (and so ``Estimate.grads``) stay those of the net.
    """

    def __init__(self, net: EquilibriumNet, initializer: Initializer, lam: float):
        super().__init__()
        object.__setattr__(self, "inner", net)
        object.__setattr__(self, "initializer", initializer)
        self.lam = float(lam)
        self.dt = net.dt
        self._cache: tuple[Tensor, State] | None = None

    def _target(self, x: Tensor) -> State:
        if self._cache is None or self._cache[0] is not x:
            with torch.no_grad():
                self._cache = (x, self.initializer(x))
        return self._cache[1]

    def named_parameters(self, *args, **kwargs):
        return self.inner.named_parameters(*args, **kwargs)

    def parameters(self, recurse: bool = True):
        return self.inner.parameters(recurse)

    def initial_state(self, x: Tensor) -> State:
        return self._target(x)

    def inputs(self, x: Tensor | Inputs) -> Inputs:
        return self.inner.inputs(x)

    def activate(self, state: State) -> State:
        return self.inner.activate(state)

    def drive(self, s: State, x: Tensor | Inputs, beta=0.0, y=None) -> State:
        d = self.inner.drive(s, x, beta, y)
        return self.inner.anchor(d, s, self._target(batch_of(x)), self.lam)

    def origin(self, state: State, activated: State) -> State:
        return self.inner.origin(state, activated)

    def readout(self, state: State) -> Tensor:
        return self.inner.readout(state)

    def sample_loss(self, state: State, y: Tensor) -> Tensor:
        return self.inner.sample_loss(state, y)

    @property
    def readout_names(self) -> tuple[str, ...]:
        return self.inner.readout_names

    @property
    def analytic_strip(self) -> float:
        return self.inner.analytic_strip


__all__ = ["Anchored", "Initializer"]


def anchored(net: EquilibriumNet, initializer: Initializer | None, lam: float) -> EquilibriumNet:
    """The net whose fixed points the estimators see: Eq. (10)'s anchored net when there is
    an initializer and ``lam > 0``, else the net itself."""
    if initializer is not None and lam > 0:
        return Anchored(net, initializer, lam)
    return net
