"""Equilibrium networks, registered by name for configs, the CLI and Optuna categoricals."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eqpop.errors import ConfigError
from eqpop.nets.base import EquilibriumNet, FeedbackScale, Init, State
from eqpop.nets.clipped import ClippedMLP
from eqpop.nets.conv import ConvNet
from eqpop.nets.mlp import LayeredMLP, OutputFeedbackMLP
from eqpop.nets.pcn import PredictiveCodingNet

NETS: dict[str, Callable[..., EquilibriumNet]] = {
    "mlp": LayeredMLP,
    "output-feedback": OutputFeedbackMLP,
    "conv": ConvNet,
    "pcn": PredictiveCodingNet,
    "clipped": ClippedMLP,
}


def get_net(name: str, **kwargs) -> EquilibriumNet:
    """Build a registered net; an unknown name is a ``ConfigError`` listing the known ones."""
    if name not in NETS:
        raise ConfigError(f"unknown net {name!r}; choose one of {', '.join(NETS)}")
    return NETS[name](**kwargs)


def net_for_data(
    name: str,
    input_shape: tuple[int, ...],
    n_classes: int,
    hidden: Sequence[int],
    symmetric: bool = False,
    asymmetry_angle: float | None = None,
    feedback_scale: FeedbackScale = "matched",
    dt: float | None = None,
    init: Init = "uniform",
) -> EquilibriumNet:
    """A net sized for images of ``input_shape = (C, H, W)``: ``hidden`` are the widths of the
    hidden layers (dense nets) or the channels of every layer (conv net); ``init`` how weights
    are drawn (``WeightInit``)."""
    widths = list(hidden)
    extra = {"init": init} | ({} if dt is None else {"dt": dt})
    tying = (
        {}
        if name == "output-feedback"
        else {
            "symmetric": symmetric,
            "asymmetry_angle": asymmetry_angle,
            "feedback_scale": feedback_scale,
        }
    )
    if name == "conv":
        c, h, _ = input_shape
        return get_net(
            name,
            in_channels=c,
            input_size=h,
            channels=widths,
            n_classes=n_classes,
            **tying,
            **extra,
        )
    n_in = 1
    for d in input_shape:
        n_in *= d
    return get_net(name, sizes=[n_in, *widths, n_classes], **tying, **extra)


__all__ = [
    "NETS",
    "ClippedMLP",
    "ConvNet",
    "EquilibriumNet",
    "LayeredMLP",
    "OutputFeedbackMLP",
    "PredictiveCodingNet",
    "State",
    "get_net",
    "net_for_data",
]
