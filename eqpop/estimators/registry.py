"""The method registry: one record per gradient estimator, declared in the estimator's own file.

Everything that treats methods differently reads the record instead of a method's name: config
validation (which names exist, which need a free phase), the Trainer (which config fields feed
which hyperparameter), ``eqpop compare`` and the study probe (the grid of |beta| and N, the two
ground truths) and, through the description stored with the results (Parquet attrs,
``study.json``), the reports (labels, table order, settling cost). Adding an estimator is one
file (``docs/design.md``).

Estimators from other packages register through the ``eqpop.estimators`` entry-point group: each
entry point names a module that calls ``register`` when imported (Ray actors load them too).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

from eqpop.errors import ConfigError
from eqpop.records import check_cost

if TYPE_CHECKING:
    from torch import Tensor

    from eqpop.estimators.base import Estimate
    from eqpop.nets.base import EquilibriumNet, Inputs

#: the two ground truths every other estimate is compared with: RBP's delta (the true neuronal
#: error, ``cos_rbp``) and the exact ``d_beta s*`` (what EP gives without finite-nudge bias,
#: ``cos_exact``); their gap is the bias from Jacobian asymmetry
Truth = Literal["delta", "d_beta"]


@dataclass(frozen=True)
class Method:
    """One estimator ``estimate(net, x, y, **hyper) -> Estimate``.

    Its keyword hyperparameters are named as the training-config fields that set them in
    training (``t_free``, ``t_nudge``, ``beta``, ...): one vocabulary, no renaming; a keyword no
    config field has (``rtol``) keeps its default there. ``cost`` is its settling steps per
    training sample and batch, an arithmetic expression over config fields (the reports'
    compute axis evaluates it on each trial's config). ``order`` places it in tables and
    legends; ``truth`` marks a ground truth; ``complex_nudge`` a method that nudges with
    complex beta, which needs a holomorphic net (``EquilibriumNet.holomorphic``). Whether it
    runs from a free phase, takes beta or takes N is read off its signature (keywords
    ``free``, ``beta``, ``n_points``).
    """

    name: str
    estimate: Callable[..., Estimate]
    cost: str
    order: int
    label: str = ""
    truth: Truth | None = None
    complex_nudge: bool = False
    hyper: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        params = inspect.signature(self.estimate).parameters.values()
        keywords = frozenset(p.name for p in params if p.kind is p.KEYWORD_ONLY)
        object.__setattr__(self, "hyper", keywords)
        object.__setattr__(self, "label", self.label or self.name)
        check_cost(self.cost)

    @property
    def free_phase(self) -> bool:
        """Starts from the free fixed point (shared with other methods, or Init-EP's guess)."""
        return "free" in self.hyper

    @property
    def nudged(self) -> bool:
        """Nudges with a teaching amplitude beta."""
        return "beta" in self.hyper

    @property
    def points(self) -> bool:
        """Takes a number N of points on the circle (labelled ``name N=k``)."""
        return "n_points" in self.hyper

    def settings(self, cfg: Any) -> dict[str, Any]:
        """Its hyperparameters as a training config sets them: every keyword that is one of
        the config's fields."""
        return {key: getattr(cfg, key) for key in self.hyper if key in type(cfg).model_fields}

    def describe(self) -> dict[str, Any]:
        """What a report needs to know about the method, as plain JSON values."""
        return {
            "label": self.label,
            "order": self.order,
            "nudged": self.nudged,
            "points": self.points,
            "cost": self.cost,
            "truth": self.truth,
        }


_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` (once per name: a second one with the same name is an error)."""
    if method.name in _METHODS and _METHODS[method.name] is not method:
        raise ValueError(f"method {method.name!r} is registered already")
    _METHODS[method.name] = method
    return method


def load_plugins() -> None:
    """Import every module named in the ``eqpop.estimators`` entry-point group."""
    for entry in entry_points(group="eqpop.estimators"):
        entry.load()


def methods() -> list[Method]:
    """Every method, in table order."""
    return sorted(_METHODS.values(), key=lambda m: (m.order, m.name))


def names() -> list[str]:
    """Every method's name, in table order."""
    return [m.name for m in methods()]


def get(name: str) -> Method:
    if name not in _METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(names())}")
    return _METHODS[name]


def truth(kind: Truth) -> Method:
    """The ground truth of that kind."""
    found = [m for m in _METHODS.values() if m.truth == kind]
    if len(found) != 1:
        raise ValueError(f"need exactly one {kind} ground truth, found {len(found)}")
    return found[0]


def truths() -> tuple[Method, Method]:
    """Both ground truths, in the order compare runs them: RBP's delta, the exact d_beta s*."""
    return truth("delta"), truth("d_beta")


def describe() -> dict[str, dict[str, Any]]:
    """Every method's report description, keyed by name (stored with the results)."""
    return {m.name: m.describe() for m in methods()}


def hyperparameters() -> set[str]:
    """Every keyword any registered method accepts."""
    return set().union(*(m.hyper for m in _METHODS.values()))


def estimate(
    net: EquilibriumNet, x: Tensor | Inputs, y: Tensor, method: str, **hyper: Any
) -> Estimate:
    """Run a registered estimator. Hyperparameters another method would use are ignored (one
    grid serves all methods); a name no method knows is an error, as is an unknown method."""
    chosen = get(method)
    unknown = sorted(set(hyper) - hyperparameters())
    if unknown:
        known = sorted(hyperparameters())
        raise ConfigError(f"unknown estimator hyperparameter(s) {unknown}; known: {known}")
    return chosen.estimate(net, x, y, **{k: v for k, v in hyper.items() if k in chosen.hyper})
