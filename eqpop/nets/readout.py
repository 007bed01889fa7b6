"""How a net's output is read and nudged.

``SoftmaxReadout``: the parameterised soft-max readout of Laborieux et al. (2021), shared by
the MLPs and conv net. The readout does not act on the free dynamics; during a nudge it pushes
the output layer by ``-beta * dloss/ds_out = beta * w_ro^T (y - softmax(w_ro s_out + b_ro))``.

``SquaredErrorOutput``: the activated output layer is the prediction itself, with the cost
``||s_out - y||^2`` of Scellier & Bengio (2017) and O'Connor et al. (2019), and no parameter.
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


class SquaredErrorOutput:
    """The activated output layer, one unit per class, is the prediction; the cost is
    ``C = ||s_out - onehot(y)||^2`` (no 1/2, as O'Connor et al.'s code), so the nudge adds
    ``-beta dC/ds_out = 2 beta (y - s_out)`` to the output layer's drive. A mixin placed before
    a net's soft-max readout: ``_init_readout`` then makes no parameter."""

    def _init_readout(self, n_features: int, n_classes: int, init: WeightInit) -> None:
        if n_features != n_classes:
            raise ValueError(
                f"a squared-error output needs one unit per class: {n_features} != {n_classes}"
            )
        self.n_classes = n_classes

    @property
    def readout_names(self) -> tuple[str, ...]:
        return ()

    def readout(self, state: tuple[Tensor, ...]) -> Tensor:
        return self.activate(state)[-1].flatten(1)

    def sample_loss(self, state: tuple[Tensor, ...], y: Tensor) -> Tensor:
        out = self.readout(state)
        return (out - one_hot(y, self.n_classes, out)).pow(2).sum(1)

    def nudge(self, s_out: Tensor, y: Tensor) -> Tensor:
        """``-dC/ds_out`` per sample, shaped like the output layer (multiply by beta)."""
        return 2 * (one_hot(y, self.n_classes, s_out) - s_out)

    def nudger(
        self, beta: float | complex | Tensor, y: Tensor | None, like: Tensor
    ) -> Callable[[Tensor, Tensor], None] | None:
        """``pre_out += beta * nudge(s_out, y)`` in place, its constants made once."""
        if not self.check_nudge(beta, y):
            return None
        target = one_hot(y, self.n_classes, like)
        column = 2 * as_column(beta, target)

        def add(s_out: Tensor, pre: Tensor) -> None:
            pre.add_(torch.sub(target, s_out).mul_(column))

        return add
