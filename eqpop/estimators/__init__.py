"""Gradient estimators, registered by name (``registry``): every one is
``f(net, x, y, **hyper) -> Estimate``. Importing the package registers the built-in ones and
those of installed plug-ins."""

from __future__ import annotations

from eqpop.estimators import classic, exact, hep, hep_continuous, rbp  # noqa: F401 (register)
from eqpop.estimators.base import Diagnostics, Estimate, parameter_grads
from eqpop.estimators.hep import cauchy_points
from eqpop.estimators.registry import Method, estimate, get, load_plugins, methods, register

load_plugins()

__all__ = [
    "Diagnostics",
    "Estimate",
    "Method",
    "cauchy_points",
    "estimate",
    "get",
    "methods",
    "parameter_grads",
    "register",
]
