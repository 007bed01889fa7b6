"""Equilibrium networks, registered by name for configs, the CLI and Optuna categoricals."""

from __future__ import annotations

from collections.abc import Callable

from eqpop.nets.base import EquilibriumNet, State
from eqpop.nets.conv import ConvNet
from eqpop.nets.mlp import LayeredMLP, OutputFeedbackMLP
from eqpop.nets.pcn import PredictiveCodingNet

NETS: dict[str, Callable[..., EquilibriumNet]] = {
    "mlp": LayeredMLP,
    "output-feedback": OutputFeedbackMLP,
    "conv": ConvNet,
    "pcn": PredictiveCodingNet,
}


def get_net(name: str, **kwargs) -> EquilibriumNet:
    """Build a registered net; an unknown name is a ``ValueError`` listing the known ones."""
    if name not in NETS:
        raise ValueError(f"unknown net {name!r}; choose one of {', '.join(NETS)}")
    return NETS[name](**kwargs)


__all__ = [
    "NETS",
    "ConvNet",
    "EquilibriumNet",
    "LayeredMLP",
    "OutputFeedbackMLP",
    "PredictiveCodingNet",
    "State",
    "get_net",
]
