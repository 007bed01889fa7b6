"""Holomorphic activations for hEP's complex states, each analytic in a strip around the reals."""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: half-width of the strip |Im x| < h where each activation is analytic: the poles of
#: sigmoid(z) lie at Im z = pi (2m + 1), so 4x - 2 puts the shifted sigmoid's at Im x = pi / 4
SHIFTED_SIGMOID_STRIP = math.pi / 4
SIGMOID_WEIGHTED_UNIT_STRIP = math.pi


#: -2 as a 0-dim tensor: it combines with a state of any dtype and device, and ``torch.add``
#: with it and ``alpha`` takes two operations where ``4 * x - 2`` takes three (each wrapping a
#: Python number in a tensor); the activation runs three times per step of every relaxation
_MINUS_TWO = torch.tensor(-2.0)


def shifted_sigmoid(x: Tensor) -> Tensor:
    """The paper's MLP activation 1/(1+exp(-4x+2)), slope 1 at its centre (appendix E.2)."""
    return torch.add(_MINUS_TWO, x, alpha=4).sigmoid_()


def shifted_sigmoid_prime(x: Tensor) -> Tensor:
    s = shifted_sigmoid(x)
    return 4 * s * (1 - s)


def sigmoid_weighted_unit(x: Tensor) -> Tensor:
    """The conv net's activation (x/2) sig(x) + (1 - x/2) sig(x - 2): a smooth hard sigmoid."""
    return 0.5 * x * torch.sigmoid(x) + (1 - 0.5 * x) * torch.sigmoid(x - 2)
