"""Population-based training's two decisions, as pure functions (no Ray, no Optuna): which
members a member at its perturbation interval compares with and whether it is replaced
(``quantiles``, Ray Tune's rule), and how a child perturbs its parent's settings (``explore``).

Settings are config values by field (``lambda_homeo: 0`` where the space's ``zero_or`` drew
"off"); ``as_params`` turns them into the Optuna parameters a trial is queued with.
"""

from __future__ import annotations

import math
import random
from typing import Any

from eqpop.population.definition.spec import Param, StudyConfig

#: how often ``explore`` draws again when its draw is not a valid training config
TRIES = 20


def quantiles(scores: dict[int, float], fraction: float) -> tuple[list[int], list[int]]:
    """The bottom and top members by their latest score (an error: lower is better), each
    ``ceil(n fraction)`` of the n members, at most half of them; none below two members."""
    ranked = sorted(scores, key=lambda m: (scores[m], m))
    k = min(math.ceil(len(ranked) * fraction), len(ranked) // 2)
    if k == 0:
        return [], []
    return ranked[-k:], ranked[:k]


def _draw(p: Param, rng: random.Random) -> Any:
    """A fresh value from the field's space (``zero_or``: 0 half of the time)."""
    if p.choices is not None:
        return rng.choice(p.choices)
    if p.zero_or and rng.random() < 0.5:
        return 0
    if p.integer:
        return rng.randint(int(p.low), int(p.high))
    if p.log:
        return math.exp(rng.uniform(math.log(p.low), math.log(p.high)))
    return rng.uniform(p.low, p.high)


def _perturb(p: Param, value: Any, rng: random.Random) -> Any:
    """A choice moved to a neighbouring one; a number times 0.8 or 1.2, kept in its bounds (a
    ``zero_or`` field that is off stays off)."""
    if p.choices is not None:
        i = p.choices.index(value) if value in p.choices else 0
        return p.choices[min(max(i + rng.choice((-1, 1)), 0), len(p.choices) - 1)]
    if p.zero_or and value == 0:
        return 0
    moved = min(max(value * rng.choice((0.8, 1.2)), p.low), p.high)
    return int(round(moved)) if p.integer else moved


def _holds(p: Param, values: dict[str, Any]) -> bool:
    return not p.when or all(values.get(k) in allowed for k, allowed in p.when.items())


def _mutate(spec: StudyConfig, settings: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = dict(settings)
    for name in spec.mutations():
        if name not in out:
            continue  # a conditional field its condition leaves out
        p = spec.space[name]
        resample = rng.random() < spec.pbt.resample_probability
        out[name] = _draw(p, rng) if resample else _perturb(p, out[name], rng)
    for name, p in spec.space.items():  # conditions the mutations changed
        if not _holds(p, out):
            out.pop(name, None)
        elif name not in out:
            out[name] = _draw(p, rng)
    return out


def explore(spec: StudyConfig, settings: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The parent's ``settings`` perturbed (module docstring): drawn again while the draw is not
    a valid training config; after ``TRIES`` invalid draws, the parent's own."""
    for _ in range(TRIES):
        child = _mutate(spec, settings, rng)
        try:
            spec.train_config(child)
        except ValueError:
            continue
        return child
    return dict(settings)


def as_params(spec: StudyConfig, settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as the Optuna parameters ``Param.suggest`` reads back: a ``zero_or`` field as
    its ``<name>_on`` flag and, when on, its value."""
    params: dict[str, Any] = {}
    for name, value in settings.items():
        if spec.space[name].zero_or:
            params[f"{name}_on"] = value != 0
            if value == 0:
                continue
        params[name] = value
    return params
