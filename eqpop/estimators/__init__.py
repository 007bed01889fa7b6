"""Gradient estimators, registered by name: every one is ``f(net, x, y, **hyper) -> Estimate``."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import Tensor

from eqpop.estimators.base import Estimate, parameter_grads
from eqpop.estimators.classic import classic
from eqpop.estimators.exact import exact
from eqpop.estimators.hep import cauchy_points, hep
from eqpop.estimators.hep_continuous import hep_continuous
from eqpop.estimators.rbp import rbp
from eqpop.nets.base import EquilibriumNet

ESTIMATORS: dict[str, Callable[..., Estimate]] = {
    "rbp": rbp,
    "exact": exact,
    "classic": classic,
    "hep": hep,
    "hep_continuous": hep_continuous,
}


def hyperparameters(method: str) -> set[str]:
    """The keyword hyperparameters a method accepts."""
    params = inspect.signature(ESTIMATORS[method]).parameters.values()
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY}


def estimate(net: EquilibriumNet, x: Tensor, y: Tensor, method: str, **hyper) -> Estimate:
    """Run a registered estimator. Hyperparameters another method would use are ignored (one
    grid serves all methods); a name no method knows is an error, as is an unknown method."""
    if method not in ESTIMATORS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(ESTIMATORS)}")
    known = set().union(*(hyperparameters(m) for m in ESTIMATORS))
    unknown = sorted(set(hyper) - known)
    if unknown:
        raise ValueError(f"unknown estimator hyperparameter(s) {unknown}; known: {sorted(known)}")
    accepted = hyperparameters(method)
    return ESTIMATORS[method](net, x, y, **{k: v for k, v in hyper.items() if k in accepted})


__all__ = [
    "ESTIMATORS",
    "Estimate",
    "cauchy_points",
    "estimate",
    "hyperparameters",
    "parameter_grads",
]
