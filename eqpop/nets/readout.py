"""The parameterised soft-max readout of Laborieux et al. (2021), shared by the MLPs and conv net.

The readout does not act on the free dynamics; during a nudge it pushes the output layer by
``-beta * dloss/ds_out = beta * w_ro^T (y - softmax(w_ro s_out + b_ro))``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from eqpop.nets.base import WeightInit, as_column, cast, one_hot, stable_softmax


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

    def nudger(
        self, beta: float | complex | Tensor, y: Tensor | None, like: Tensor
    ) -> Callable[[Tensor, Tensor], None] | None:
        """``pre_out += beta * nudge(s_out, y)`` in place, for a relaxation loop: the targets'
        one-hot, the cast readout and beta's column made once (``one_hot`` reads its labels
        on the host, which at every nudged step was a synchronisation per step). None when
        the nudge is off (``beta`` 0)."""
        if not self.check_nudge(beta, y):
            return None
        w, b = cast(self.w_ro, like), cast(self.b_ro, like)
        target = one_hot(y, self.n_classes, like)
        column = as_column(beta, target)
        softmax = stable_softmax if like.is_complex() else torch.softmax

        def add(s_out: Tensor, pre: Tensor) -> None:
            logits = torch.addmm(b, s_out.flatten(1), w.T)
            err = torch.sub(target, softmax(logits, dim=1)).mul_(column)
            pre.view(len(pre), -1).addmm_(err, w)

        return add
