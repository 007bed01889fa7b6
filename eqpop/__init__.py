"""eqpop: equilibrium networks, every gradient estimator side by side, trained as a population.

The names below load on first use, so that ``eqpop report`` and the study-file checks start
without importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "Settled": "eqpop.dynamics",
    "settle": "eqpop.dynamics",
    "Estimate": "eqpop.estimators",
    "estimate": "eqpop.estimators",
    "methods": "eqpop.estimators",
    "NETS": "eqpop.nets",
    "get_net": "eqpop.nets",
}

__all__ = sorted(_LAZY)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'eqpop' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
