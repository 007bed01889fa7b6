"""The recurrent convolutional net of appendix E.2 (Fig. 4i, Table 2) and its softmax pooling.

Layer l is driven by ``P(w_f[l] * s_{l-1}) + P~(s_l, w_b[l], s_{l+1}) + b_l`` where P is
softmax pooling and the backward module ``P~(s_l, w, s_{l+1}) = d/ds_l [s_{l+1} . P(w * s_l)]``
is written out explicitly (no autograd inside the dynamics, so it stays holomorphic).
We use the activated state s_{l+1} inside P~: with tied weights the net then derives from an
energy and its Jacobian is exactly symmetric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eqpop.nets.activations import SIGMOID_WEIGHTED_UNIT_STRIP, sigmoid_weighted_unit
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
    feedback_weights,
    stable_softmax,
)
from eqpop.nets.readout import SoftmaxReadout


def _windows(z: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2, 4): the 2x2 stride-2 pooling windows."""
    b, c, h, w = z.shape
    return (
        z.reshape(b, c, h // 2, 2, w // 2, 2)
        .permute(0, 1, 2, 4, 3, 5)
        .reshape(b, c, h // 2, w // 2, 4)
    )


def _unwindows(z: Tensor) -> Tensor:
    b, c, h, w, _ = z.shape
    return z.reshape(b, c, h, w, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, 2 * h, 2 * w)


def softmax_pool(z: Tensor) -> Tensor:
    """Softmax pooling (Stergiou et al. 2021): sum_i softmax(z_R)_i z_i over each 2x2 window R."""
    zw = _windows(z)
    return (stable_softmax(zw, dim=-1) * zw).sum(-1)


def softmax_pool_vjp(z: Tensor, cotangent: Tensor) -> Tensor:
    """Cotangent of ``softmax_pool`` at z: dy/dz_i = p_i (1 + z_i - y), holomorphic."""
    zw = _windows(z)
    p = stable_softmax(zw, dim=-1)
    y = (p * zw).sum(-1, keepdim=True)
    return _unwindows(p * (1 + zw - y) * cotangent.unsqueeze(-1))


class ConvNet(SoftmaxReadout, EquilibriumNet):
    """Defaults are the paper's CIFAR-10 net: (16,16,128), (8,8,256), (4,4,512), (1,1,512).

    Every convolution has a 3x3 kernel and 'same' padding except the last one ('valid').
    ``symmetric=True`` uses the next layer's forward kernel as the backward kernel.
    ``init="lecun_normal"`` draws kernels as the paper's code does (Flax's default); the default
    ``gain`` (None) gives the uniform draw the same standard deviation 1/sqrt(fan_in), sqrt(3)
    times PyTorch's default: with the smaller init the input's signal shrinks ~6x per layer and
    the deepest layer barely varies with the input.
    """

    transposed_feedback = False
    analytic_strip = SIGMOID_WEIGHTED_UNIT_STRIP

    def __init__(
        self,
        in_channels: int = 3,
        input_size: int = 32,
        channels: Sequence[int] = (128, 256, 512, 512),
        n_classes: int = 10,
        symmetric: bool = False,
        asymmetry_angle: float | None = None,
        feedback_scale: FeedbackScale = "matched",
        dt: float = 1.0,
        init: Init = "uniform",
        gain: float | None = None,
    ):
        super().__init__()
        self.channels = [int(c) for c in channels]
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be positive, got {list(channels)}")
        self.dt = float(dt)
        self.symmetric = symmetric
        self.paddings = [1] * (len(self.channels) - 1) + [0]
        self.sizes = []
        size = int(input_size)
        for pad in self.paddings:
            size = size + 2 * pad - 2
            if size < 2 or size % 2:
                raise ValueError(
                    f"input_size {input_size} does not pool evenly through {len(self.channels)} "
                    "layers (each layer halves it; the last conv is 'valid')"
                )
            size //= 2
            self.sizes.append(size)
        c_in = [int(in_channels), *self.channels[:-1]]
        if gain is None:
            gain = math.sqrt(3.0) if init == "uniform" else 1.0
        weights = WeightInit(init, gain)
        self.w_f = nn.ParameterList(
            nn.Parameter(weights.weight(co, ci, 3, 3, fan_in=ci * 9))
            for ci, co in zip(c_in, self.channels)
        )
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(c)) for c in self.channels)
        forward = [] if symmetric else list(self.w_f[1:])
        self.w_b = feedback_weights(
            forward, weights, asymmetry_angle, transposed=False, scale=feedback_scale
        )
        self._init_readout(self.channels[-1] * self.sizes[-1] ** 2, n_classes, weights)

    def initial_state(self, x: Tensor) -> State:
        return tuple(x.new_zeros(x.shape[0], c, n, n) for c, n in zip(self.channels, self.sizes))

    def activate(self, state: State) -> State:
        return tuple(sigmoid_weighted_unit(u) for u in state)

    def input_drive(self, x: Tensor) -> Tensor:
        z = F.conv2d(x, self.w_f[0], padding=self.paddings[0])
        return softmax_pool(z) + self.b[0].view(1, -1, 1, 1)

    def drive(self, s: State, x: Tensor | Inputs, beta=0.0, y=None) -> State:
        rest = zip(s[:-1], after_first(self.w_f), after_first(self.b), self.paddings[1:])
        pre = [
            cast(self.inputs(x).first, s[0]),
            *(
                softmax_pool(F.conv2d(inp, cast(w, inp), padding=pad))
                + cast(b, inp).view(1, -1, 1, 1)
                for inp, w, b, pad in rest
            ),
        ]
        for k, w_b in enumerate(self.backward_weights()):
            w, pad = cast(w_b, s[k]), self.paddings[k + 1]
            z = F.conv2d(s[k], w, padding=pad)
            pre[k] = pre[k] + F.conv_transpose2d(softmax_pool_vjp(z, s[k + 1]), w, padding=pad)
        if self.check_nudge(beta, y):
            pre[-1] = pre[-1] + as_column(beta, s[-1]) * self.nudge(s[-1], y)
        return tuple(pre)
