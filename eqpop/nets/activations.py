"""Holomorphic activations for hEP's complex states, each analytic in a strip around the reals."""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: half-width of the strip |Im x| < h where each activation is analytic: the poles of
#: sigmoid(z) lie at Im z = pi (2m + 1), so 4x - 2 puts the shifted sigmoid's at Im x = pi / 4
SHIFTED_SIGMOID_STRIP = math.pi / 4
SIGMOID_WEIGHTED_UNIT_STRIP = math.pi


_ONE = torch.tensor(1.0)


def sigmoid(z: Tensor) -> Tensor:
    """The logistic function, real or complex. For a complex z it is computed from real parts,
    ``1 / (1 + w e^{-ib}) = (1 + w cos b + i w sin b) / |1 + w e^{-ib}|^2`` with z = a + ib and
    w = e^{-a}: PyTorch's complex ``sigmoid`` (and ``exp``) on the CPU took 210 us for a 96x64
    state where this takes 65, and hEP's nudged phases with N > 2 run on complex states. Far
    left, where w overflows, it is ~0 as the function is (PyTorch's gives NaN there, off the
    real axis); only at a pole is it non-finite."""
    if not z.is_complex():
        return torch.sigmoid(z)
    return torch.complex(*sigmoid_parts(z.real, z.imag))


def sigmoid_parts(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """The real and imaginary parts of sigmoid(a + ib), from real arithmetic (``sigmoid``)."""
    w = torch.exp(a.neg()).clamp_max(torch.finfo(a.dtype).max)
    d, ws = torch.addcmul(_ONE, w, torch.cos(b)), w * torch.sin(b)
    r = torch.hypot(d, ws).reciprocal()  # 1 / |.|, without squaring a large w
    return d * r * r, ws * r * r


#: -2 as a 0-dim tensor: it combines with a state of any dtype and device, and ``torch.add``
#: with it and ``alpha`` takes two operations where ``4 * x - 2`` takes three (each wrapping a
#: Python number in a tensor); the activation runs three times per step of every relaxation
_MINUS_TWO = torch.tensor(-2.0)


def shifted_sigmoid(x: Tensor) -> Tensor:
    """The paper's MLP activation 1/(1+exp(-4x+2)), slope 1 at its centre (appendix E.2)."""
    v = torch.add(_MINUS_TWO, x, alpha=4)
    return sigmoid(v) if v.is_complex() else v.sigmoid_()


def shifted_sigmoid_parts(u: Tensor) -> tuple[Tensor, Tensor]:
    """The real and imaginary parts of ``shifted_sigmoid`` of a complex state."""
    return sigmoid_parts(torch.add(_MINUS_TWO, u.real, alpha=4), u.imag * 4)


def shifted_sigmoid_prime(x: Tensor) -> Tensor:
    s = shifted_sigmoid(x)
    return 4 * s * (1 - s)


def sigmoid_weighted_unit(x: Tensor) -> Tensor:
    """The conv net's activation (x/2) sig(x) + (1 - x/2) sig(x - 2): a smooth hard sigmoid."""
    return 0.5 * x * sigmoid(x) + (1 - 0.5 * x) * sigmoid(x - 2)


def hard_sigmoid(x: Tensor) -> Tensor:
    """``max(0, min(1, x))``, Scellier & Bengio's and O'Connor et al.'s rho: not analytic, so
    a net with it takes no complex nudge."""
    if x.is_complex():
        raise ValueError("the hard sigmoid is not holomorphic: no complex states (hEP) on it")
    return x.clamp(0.0, 1.0)


def leaky_hard_sigmoid(x: Tensor) -> Tensor:
    """``hard_sigmoid(x) + 0.01 x``: O'Connor et al.'s initializer's activation, whose leak
    keeps a unit's gradient alive where the hard sigmoid is flat."""
    return hard_sigmoid(x) + 0.01 * x
