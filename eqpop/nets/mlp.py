"""Multi-layer equilibrium nets of appendix E.2: reciprocal (Fig. 4a), output feedback (Fig. 4e)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from eqpop.nets.activations import (
    SHIFTED_SIGMOID_STRIP,
    shifted_sigmoid,
    shifted_sigmoid_parts,
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
)
from eqpop.nets.readout import SoftmaxReadout


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    sizes = [int(n) for n in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least an input and an output width >= 1, got {sizes}")
    return sizes


Product = tuple[int, int, Tensor]  # (to layer, from layer, transposed weight)


class _MLPBase(SoftmaxReadout, EquilibriumNet):
    """Layers 1..L of widths ``sizes[1:]`` with forward weights ``w_f.k`` (layer k -> k+1)."""

    analytic_strip = SHIFTED_SIGMOID_STRIP
    affine_drive = True

    def __init__(self, sizes: Sequence[int], n_classes: int | None, dt: float, init: WeightInit):
        super().__init__()
        self.sizes = _check_sizes(sizes)
        self.dt = float(dt)
        self.w_f = dense_weights(self.sizes, init)
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(n)) for n in self.sizes[1:])
        self._init_readout(self.sizes[-1], n_classes or self.sizes[-1], init)

    def initial_state(self, x: Tensor) -> State:
        return tuple(x.new_zeros(x.shape[0], n) for n in self.sizes[1:])

    def activate(self, state: State) -> State:
        return tuple(shifted_sigmoid(u) for u in state)

    def input_drive(self, x: Tensor) -> Tensor:
        return x.flatten(1) @ self.w_f[0].T + self.b[0]

    def _forward_drive(self, s: State, x: Tensor | Inputs) -> list[Tensor]:
        """Bottom-up input of every layer plus its bias."""
        first = cast(self.inputs(x).first, s[0])
        rest = zip(s[:-1], after_first(self.w_f), after_first(self.b))
        return [first, *(inp @ cast(w, inp).T + cast(b, inp) for inp, w, b in rest)]

    def _feedback(self, like: Tensor) -> list[Product]:
        """Every top-down connection's product."""
        raise NotImplementedError

    def _products(self, like: Tensor) -> list[Product]:
        """Every product a step makes, bottom-up then top-down, its weight cast to the dtype of
        ``like`` and transposed."""
        forward = [(k + 1, k, cast(w, like).T) for k, w in enumerate(after_first(self.w_f))]
        return forward + self._feedback(like)

    def _bases(self, inputs: Inputs, like: Tensor) -> list[Tensor]:
        """What each layer's products add to: the input's drive, then the biases."""
        return [cast(inputs.first, like), *(cast(b, like) for b in after_first(self.b))]

    def linear_drive(self, v: State) -> State:
        pre: list[Tensor | None] = [None] * len(v)
        for k, j, w in self._products(v[0]):
            term = v[j] @ w
            pre[k] = term if pre[k] is None else pre[k] + term
        return tuple(torch.zeros_like(v[k]) if t is None else t for k, t in enumerate(pre))

    def stepper(self, inputs: Inputs, beta, y, like: Tensor) -> Callable[[State], State]:
        """``step`` with the weights cast and transposed once, every product fused with the
        bias or the sum it adds to (``addmm``), the nudge's constants made once, and the blend
        of a damped net as one ``lerp``: about half the operations of ``step``."""
        if like.is_complex():
            return self._complex_stepper(inputs, beta, y, like)
        bases, products = self._bases(inputs, like), self._products(like)
        nudge, dt, origin = self.nudger(beta, y, like), self.dt, self.origin

        def step(u: State) -> State:
            s = self.activate(u)
            pre: list[Tensor | None] = [None] * len(u)
            for k, j, w in products:  # the first product into a layer starts from its base,
                if pre[k] is None:  # which stays as it is (the input's drive is the batch's)
                    pre[k] = torch.addmm(bases[k], s[j], w)
                else:
                    pre[k].addmm_(s[j], w)
            if pre[-1] is None and nudge is not None:  # a one-layer net: the input's drive only
                pre[-1] = bases[-1].clone()
            out = tuple(base if p is None else p for base, p in zip(bases, pre))
            if nudge is not None:
                nudge(s[-1], out[-1])
            if dt == 1.0:
                return out
            return tuple(torch.lerp(a, p, dt) for a, p in zip(origin(u, s), out))

        return step

    def _complex_stepper(self, inputs: Inputs, beta, y, like: Tensor) -> Callable:
        """``step`` on complex states (hEP with N > 2) with real weights: the real and the
        imaginary parts of each activated layer stacked as one real matrix of twice the rows,
        so that each product is one real GEMM where a complex one (weights cast to complex)
        does twice the work; the activation from real parts, packed into complex once per
        layer and step."""
        real = like.real
        bases, products = self._bases(inputs, real), self._products(real)
        nudge, dt, rows = self.nudger(beta, y, like), self.dt, len(like)

        def step(u: State) -> State:
            parts = [shifted_sigmoid_parts(t) for t in u]
            stacked = [torch.cat(p) for p in parts]  # (2B, n): real rows, then imaginary
            pre: list[Tensor | None] = [None] * len(u)
            for k, j, w in products:
                if pre[k] is None:
                    pre[k] = stacked[j] @ w
                else:
                    pre[k].addmm_(stacked[j], w)
            out = []
            for base, p in zip(bases, pre):
                if p is None:  # a one-layer net: the input's drive only
                    out.append(torch.complex(base, torch.zeros_like(base)))
                else:
                    out.append(torch.complex(p[:rows].add_(base), p[rows:]))
            if nudge is not None:
                nudge(torch.complex(*parts[-1]), out[-1])
            if dt == 1.0:
                return tuple(out)
            return tuple(torch.lerp(a, p, dt) for a, p in zip(u, out))

        return step

    def _add_nudge(self, pre: list[Tensor], s: State, beta, y) -> None:
        if self.check_nudge(beta, y):
            pre[-1] = pre[-1] + as_column(beta, s[-1]) * self.nudge(s[-1], y)


class LayeredMLP(_MLPBase):
    """Reciprocally connected layers with independent backward weights ``w_b.k`` (k+1 -> k).

    ``symmetric=True`` ties each backward weight to the transposed forward weight (an energy
    based net); ``asymmetry_angle`` (degrees) sets ``w_b <- sin(a) w_b + cos(a) w_f^T``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        symmetric: bool = False,
        asymmetry_angle: float | None = None,
        feedback_scale: FeedbackScale = "matched",
        n_classes: int | None = None,
        dt: float = 1.0,
        init: Init = "uniform",
        gain: float = 1.0,
    ):
        weights = WeightInit(init, gain)
        super().__init__(sizes, n_classes, dt, weights)
        self.symmetric = symmetric
        forward = [] if symmetric else list(self.w_f[1:])
        self.w_b = feedback_weights(
            forward, weights, asymmetry_angle, transposed=True, scale=feedback_scale
        )

    def _feedback(self, like: Tensor) -> list[Product]:
        return [(k, k + 1, cast(w, like).T) for k, w in enumerate(self.backward_weights())]

    def drive(self, s: State, x: Tensor | Inputs, beta=0.0, y=None) -> State:
        pre = self._forward_drive(s, x)
        for k, w_b in enumerate(self.backward_weights()):
            pre[k] = pre[k] + s[k + 1] @ cast(w_b, s[k + 1]).T
        self._add_nudge(pre, s, beta, y)
        return tuple(pre)


class OutputFeedbackMLP(_MLPBase):
    """No feedback between adjacent layers: the output feeds back to the first hidden layer only.

    Its Jacobian can never be symmetric through weights alone, which is what Fig. 4e-h uses to
    show that homeostasis acts on the Jacobian, not on weight alignment.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        n_classes: int | None = None,
        dt: float = 1.0,
        init: Init = "uniform",
        gain: float = 1.0,
    ):
        weights = WeightInit(init, gain)
        super().__init__(sizes, n_classes, dt, weights)
        if len(self.sizes) < 3:
            raise ValueError("OutputFeedbackMLP needs at least one hidden layer")
        self.w_o = nn.Parameter(
            weights.weight(self.sizes[1], self.sizes[-1], fan_in=self.sizes[-1])
        )

    def layer_of(self, name: str) -> int:
        """``w_o`` feeds the output back and goes with the output layer."""
        return self.n_layers - 1 if name == "w_o" else super().layer_of(name)

    def _feedback(self, like: Tensor) -> list[Product]:
        return [(0, self.n_layers - 1, cast(self.w_o, like).T)]

    def drive(self, s: State, x: Tensor | Inputs, beta=0.0, y=None) -> State:
        pre = self._forward_drive(s, x)
        pre[0] = pre[0] + s[-1] @ cast(self.w_o, s[-1]).T
        self._add_nudge(pre, s, beta, y)
        return tuple(pre)
