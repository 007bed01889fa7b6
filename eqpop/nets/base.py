"""The contract every equilibrium network follows.

A net is defined by two pure functions of its parameters:

- ``activate(u)``: the activated state s = sigma(u) that synapses and the readout see;
- ``drive(s, x, beta, y)``: where each layer is pulled to, given the activated state.

What a batch contributes that no state changes, the first layer's drive ``x -> W x + b``, is
computed once per batch by ``inputs(x)`` (an ``Inputs``), and ``drive`` and ``step`` take either
that or a raw ``x`` (then they compute it themselves, once per call).

One discrete step is ``u <- u + dt * (drive(activate(u)) - u)`` (``dt = 1`` gives the
paper's discrete dynamics ``u <- f(u)``); a net may start it from the activated state instead
(``origin``: the clipped net, whose activation is the clip). The vector field is
``F(u) = drive(activate(u)) - u``
and its Jacobian with respect to the activated state, ``d drive / ds - I``, is the J_F that
homeostasis and the symmetry ratio measure. ``drive`` contains the nudge
``-beta * dloss/ds_out``, so that ``-d_beta s*`` equals RBP's delta for tied weights.

Everything is holomorphic (but the clipped net's hard sigmoid, ``holomorphic`` false): a
complex ``beta`` (a scalar or one value per sample) gives a complex state, and real parameters
are cast to the state's dtype where they meet it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]


def tile(t: Tensor, times: int) -> Tensor:
    """``times`` copies of a batch-first tensor, one after the other along the batch."""
    return t.repeat(times, *([1] * (t.ndim - 1)))


@dataclass(frozen=True)
class Inputs:
    """A batch as the dynamics see it: the raw ``x`` and ``first``, the drive it gives the first
    layer (bias included), which no state changes. Built once per batch by ``net.inputs(x)``
    and shared by every phase that settles or differentiates the dynamics on that batch: the
    free phase, the nudged points, the adjoint and tangent iterations, the homeostasis probes.
    On the Fashion-MNIST MLP that term was 45 % of a free phase when every step redid it."""

    x: Tensor
    first: Tensor

    def repeat(self, times: int) -> Inputs:
        """The batch tiled ``times`` (hEP's points, homeostasis's noise draws)."""
        return Inputs(tile(self.x, times), tile(self.first, times))


def after_first(params: nn.ParameterList) -> list[Tensor]:
    """Every parameter of the list but the first. Iterated, not sliced: slicing builds a new
    ParameterList, which wraps a tensor that ``torch.func.functional_call`` put in place as a
    fresh Parameter and so cuts its gradient (the dense ground truth differentiates that way)."""
    return list(params)[1:]


def batch_of(x: Tensor | Inputs) -> Tensor:
    """The raw batch, whether given as it is or as ``Inputs``."""
    return x.x if isinstance(x, Inputs) else x


def as_column(beta: float | complex | Tensor, like: Tensor) -> Tensor | float | complex:
    """Broadcast a per-sample beta (shape ``(B,)``) against a batch-first tensor."""
    if isinstance(beta, Tensor) and beta.ndim > 0:
        return beta.reshape(-1, *([1] * (like.ndim - 1)))
    return beta


def cast(t: Tensor, like: Tensor) -> Tensor:
    """A real parameter cast to the (possibly complex) dtype of the state it meets."""
    return t if t.dtype == like.dtype else t.to(like.dtype)


def stable_softmax(z: Tensor, dim: int) -> Tensor:
    """Softmax that stays holomorphic for complex z: the shift is a constant per slice."""
    shift = (z.real if z.is_complex() else z).amax(dim=dim, keepdim=True).detach()
    e = torch.exp(z - shift)
    return e / e.sum(dim=dim, keepdim=True)


def one_hot(y: Tensor, n_classes: int, like: Tensor) -> Tensor:
    return nn.functional.one_hot(y.long(), n_classes).to(like.dtype)


Init = Literal["uniform", "lecun_normal", "xavier_uniform"]

#: std of a standard normal truncated to [-2, 2] (Flax's variance_scaling divides by it)
_TRUNCATED_STD = 0.87962566103423978


@dataclass(frozen=True)
class WeightInit:
    """How a net draws its weights.

    ``uniform`` is PyTorch's layer default, U(-a, a) with a = gain/sqrt(fan_in);
    ``lecun_normal`` is Flax's default (the papers' reference code): a normal truncated at two
    standard deviations, rescaled so that its std is a, sqrt(3) times the uniform one's;
    ``xavier_uniform`` is Glorot's U(-b, b) with b = gain sqrt(6 / (fan_in + fan_out)), the
    fans read off the tensor's shape (O'Connor et al.'s code draws both its nets so).
    """

    kind: Init = "uniform"
    gain: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in get_args(Init):
            known = ", ".join(get_args(Init))
            raise ValueError(f"init: unknown {self.kind!r}; choose one of {known}")

    def weight(self, *shape: int, fan_in: int) -> Tensor:
        return self.fill_(torch.empty(*shape), fan_in)

    def fill_(self, t: Tensor, fan_in: int) -> Tensor:
        """Draw into ``t`` in place, in its memory order (a transposed view gets the draws of
        its untransposed layout, as PyTorch's in-place initialisers do)."""
        scale = self.gain / math.sqrt(fan_in)
        with torch.no_grad():
            if self.kind == "xavier_uniform":
                return nn.init.xavier_uniform_(t, self.gain)
            if self.kind == "uniform":
                return t.uniform_(-scale, scale)
            std = scale / _TRUNCATED_STD
            return nn.init.trunc_normal_(t, 0.0, std, -2 * std, 2 * std)


def dense_weights(sizes: list[int], init: WeightInit) -> nn.ParameterList:
    """Forward weights of a layered net, ``(n_out, n_in)`` per consecutive pair of sizes."""
    return nn.ParameterList(
        nn.Parameter(init.weight(n_out, n_in, fan_in=n_in))
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    )


def mirror(w: Tensor, transposed: bool) -> Tensor:
    """What a backward weight equals in a tied net: the transposed matrix or the same kernel."""
    return w.T if transposed else w


FeedbackScale = Literal["matched", "own"]


def feedback_weights(
    forward: list[Tensor],
    init: WeightInit,
    angle_deg: float | None,
    transposed: bool,
    scale: FeedbackScale = "matched",
) -> nn.ParameterList:
    """Independent backward weights shaped like ``mirror(w_f)``.

    ``angle_deg`` sets the paper's initial asymmetry ``w_b <- sin(a) w_b + cos(a) w_f^T``:
    0 degrees is a symmetric start, 90 degrees an independent one. ``scale``: ``matched``
    rescales the own draw ``w_b`` to the norm of ``w_f^T`` first, so that the angle is ``a``
    exactly and the norm stays that of the forward weight; ``own`` keeps the own draw as drawn
    (with the backward layer's fan-in), as the papers' code does: at 90 degrees the feedback
    is then the own draw itself, which for a 10-wide output is sqrt(width / 10) larger.
    """
    params = nn.ParameterList()
    for w_f in forward:
        target = mirror(w_f.detach(), transposed)
        fan_in = target.shape[1] * (target[0, 0].numel() if target.ndim > 2 else 1)
        w_b = init.fill_(torch.empty_like(target), fan_in)
        if angle_deg is not None:
            if scale == "matched":
                w_b = w_b * (target.norm() / w_b.norm())
            a = math.radians(angle_deg)
            w_b = math.sin(a) * w_b + math.cos(a) * target
        params.append(nn.Parameter(w_b.contiguous()))
    return params


class EquilibriumNet(nn.Module):
    """Base class: subclasses implement ``initial_state``, ``activate``, ``drive``, ``readout``."""

    dt: float = 1.0
    #: the states' activation is analytic for |Im u| below this (hEP's complex nudges must stay
    #: inside the strip for the Cauchy estimate's bias bound to hold); inf: entire
    analytic_strip: float = math.inf

    @property
    def holomorphic(self) -> bool:
        """Whether complex nudges (hEP) can run on it: its activation is analytic somewhere
        off the real axis."""
        return self.analytic_strip > 0

    def initial_state(self, x: Tensor) -> State:  # pragma: no cover - abstract
        raise NotImplementedError

    def input_drive(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """The first layer's drive from the input, its bias included."""
        raise NotImplementedError

    def inputs(self, x: Tensor | Inputs) -> Inputs:
        """``x`` with its first-layer drive, computed here (``x`` itself if it is ``Inputs``)."""
        return x if isinstance(x, Inputs) else Inputs(x, self.input_drive(x))

    def activate(self, state: State) -> State:  # pragma: no cover - abstract
        raise NotImplementedError

    def drive(
        self,
        s: State,
        x: Tensor | Inputs,
        beta: float | complex | Tensor = 0.0,
        y: Tensor | None = None,
    ) -> State:  # pragma: no cover - abstract
        raise NotImplementedError

    def readout(self, state: State) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample_loss(self, state: State, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Per-sample loss, shape ``(B,)``."""
        raise NotImplementedError

    #: whether a backward weight mirrors the transposed forward matrix (dense) or its kernel (conv)
    transposed_feedback: bool = True

    def feedback_pairs(self) -> list[tuple[str, Tensor, Tensor]]:
        """(name, mirrored forward weight, backward weight) pairs whose angle is weight symmetry.

        Nets with independent backward weights ``w_b.k`` mirroring ``w_f.{k+1}`` get these
        for free; tied or feedback-free nets have none.
        """
        w_b = getattr(self, "w_b", None) or []
        return [
            (f"w_b.{k}", mirror(self.w_f[k + 1], self.transposed_feedback), w)
            for k, w in enumerate(w_b)
        ]

    def backward_weights(self) -> list[Tensor]:
        """Backward weights in use: the independent ones, or the mirrored forward ones if tied."""
        if getattr(self, "symmetric", False):
            return [mirror(w, self.transposed_feedback) for w in after_first(self.w_f)]
        return list(self.w_b)

    @property
    def readout_names(self) -> tuple[str, ...]:
        """Parameters trained with the true loss gradient at the free fixed point."""
        return ("w_ro", "b_ro")

    @property
    def n_layers(self) -> int:
        """Layers with a state (every one has a bias ``b.k``)."""
        return len(self.b)

    def layer_of(self, name: str) -> int:
        """Which layer a parameter belongs to, for layer-wise learning rates: ``w_f.k`` and
        ``b.k`` are layer k's, the feedback ``w_b.k`` from layer k+1 goes with layer k+1, and
        the readout is the extra index ``n_layers``."""
        head, _, k = name.partition(".")
        if head in ("w_f", "b"):
            return int(k)
        if head == "w_b":
            return int(k) + 1
        if name in self.readout_names:
            return self.n_layers
        raise ValueError(f"{type(self).__name__} has no parameter {name!r}")

    def step(
        self,
        state: State,
        x: Tensor | Inputs,
        beta: float | complex | Tensor = 0.0,
        y: Tensor | None = None,
    ) -> State:
        s = self.activate(state)
        target = self.drive(s, x, beta, y)
        if self.dt == 1.0:
            return target
        return tuple(u + self.dt * (t - u) for u, t in zip(self.origin(state, s), target))

    def origin(self, state: State, activated: State) -> State:
        """Where a step of size dt < 1 starts from: the state itself, ``u + dt (drive - u)``."""
        return state

    def anchor(self, drive: State, activated: State, guess: State, lam: float) -> State:
        """The drive with Eq. (10)'s pull ``lambda (u^f - u)`` towards Init-EP's ``guess``,
        divided by ``1 + lambda`` so that a step of dt = 1 lands on the anchored fixed-point
        map's image (the fixed points solve ``F(u) + lambda (u^f - u) = 0``)."""
        return tuple((d + lam * g.to(d.dtype)) / (1 + lam) for d, g in zip(drive, guess))

    #: whether the free drive is affine in the activated state (``linear_drive`` is then its
    #: Jacobian's product, the same at every state and on every batch)
    affine_drive: bool = False

    def linear_drive(self, v: State) -> State:  # pragma: no cover - abstract
        """``d drive/ds . v`` of a net whose free drive is affine in s: the drive without its
        input and biases, differentiable in the parameters."""
        raise NotImplementedError

    def stepper(
        self, inputs: Inputs, beta: float | complex | Tensor, y: Tensor | None, like: Tensor
    ) -> Callable[[State], State]:
        """``step`` on one batch, beta and targets, for a relaxation loop without gradients
        (``settle``), in the dtype of ``like`` (the state's): what depends only on those is
        made once here rather than at every step. This default closes over ``step``; the MLPs
        hoist their weights, casts and targets and fuse each product with its bias."""
        return lambda u: self.step(u, inputs, beta, y)

    def forward(
        self,
        state: State,
        x: Tensor | Inputs,
        beta: float | complex | Tensor = 0.0,
        y: Tensor | None = None,
    ) -> State:
        """One step of the dynamics (so ``torch.func.functional_call`` reaches ``step``)."""
        return self.step(state, x, beta, y)

    def loss(self, state: State, y: Tensor) -> Tensor:
        """Mean loss over the batch (what a trainer minimises)."""
        return self.sample_loss(state, y).mean()

    def check_nudge(self, beta: float | complex | Tensor, y: Tensor | None) -> bool:
        """True when the nudge term is active; a nonzero beta needs targets.

        A tensor beta always counts as active, so that forward-mode AD through beta = 0
        (the exact d_beta u*) sees the nudge term.
        """
        active = isinstance(beta, Tensor) or beta != 0
        if active and y is None:
            raise ValueError("a nonzero beta needs targets y")
        return active
