"""The parameterised soft-max readout of Laborieux et al. (2021), shared by the MLPs and conv net.

The readout does not act on the free dynamics; during a nudge it pushes the output layer by
``-beta * dloss/ds_out = beta * w_ro^T (y - softmax(w_ro s_out + b_ro))``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from eqpop.nets.base import WeightInit, cast, one_hot, stable_softmax


class SoftmaxReadout(nn.Module):
    """Logits ``w_ro s_out + b_ro`` on the flattened activated output layer."""

    def _init_readout(self, n_features: int, n_classes: int, init: WeightInit) -> None:
        """Readout weights drawn like the net's (gain 1 whatever the net's gain)."""
        self.n_classes = n_classes
        w = WeightInit(init.kind).weight(n_classes, n_features, fan_in=n_features)
        self.w_ro = nn.Parameter(w)
        self.b_ro = nn.Parameter(torch.zeros(n_classes))

    def logits(self, s_out: Tensor) -> Tensor:
        flat = s_out.flatten(1)
        return flat @ cast(self.w_ro, flat).T + cast(self.b_ro, flat)

    def readout(self, state: tuple[Tensor, ...]) -> Tensor:
        return self.logits(self.activate(state)[-1])

    def sample_loss(self, state: tuple[Tensor, ...], y: Tensor) -> Tensor:
        return nn.functional.cross_entropy(self.readout(state), y.long(), reduction="none")

    def nudge(self, s_out: Tensor, y: Tensor) -> Tensor:
        """``-dloss/ds_out`` per sample, shaped like the output layer (multiply by beta)."""
        logits = self.logits(s_out)
        err = one_hot(y, self.n_classes, logits) - stable_softmax(logits, dim=1)
        return (err @ cast(self.w_ro, err)).reshape(s_out.shape)
