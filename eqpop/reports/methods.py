"""What a report knows about each estimator: the descriptions its writers stored beside the data
(``records.with_methods``, from the method registry), so that a report needs neither torch nor
the plug-in that made an estimate.

A method without a description (output of an older eqpop, a hand-made frame) gets plain
defaults: its name as label, N shown where a row has one, placed after the described methods
in name order, no ground-truth role, no known settling cost.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from eqpop.records import check_cost

_NAME = re.compile(r"[A-Za-z_]\w*")


@dataclass
class Methods:
    """Descriptions by method name, as ``registry.describe`` wrote them."""

    described: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _info(self, method: object) -> dict[str, Any]:
        return self.described.get(str(method), {})

    def label(self, method: object, n_points: object) -> str:
        """``hep N=4`` for the N-point methods, the label alone for the others."""
        info = self._info(method)
        label = info.get("label", str(method))
        if info.get("points", True) and not pd.isna(n_points):
            return f"{label} N={int(n_points)}"
        return label

    def labels(self, methods: Iterable[object], n_points: Iterable[object]) -> list[str]:
        return [self.label(m, n) for m, n in zip(methods, n_points)]

    def order(self, labels: Iterable[str]) -> list[str]:
        """Distinct labels in table order: described methods by their order and then N, the
        others after them by name."""
        rank = {info["label"]: info["order"] for info in self.described.values()}

        def key(label: str) -> tuple:
            base, _, n = label.partition(" N=")
            if base in rank:
                return (0, rank[base], int(n) if n.isdigit() else -1, label)
            return (1, 0, 0, label)

        return sorted(set(labels), key=key)

    def nudged(self, method: object) -> bool:
        """Whether the method takes beta (a trial's |beta| means nothing otherwise)."""
        return bool(self._info(method).get("nudged", True))

    def truth(self, kind: str) -> str | None:
        """The method that is the ground truth of that kind ("delta", "d_beta"), if known."""
        return next((m for m, info in self.described.items() if info.get("truth") == kind), None)

    def cost(self, method: object) -> tuple[str, list[str]] | None:
        """Settling steps per training sample and batch: the expression and the config fields
        it reads; None when unknown."""
        expr = self._info(method).get("cost")
        if expr is None:
            return None
        check_cost(expr)
        return expr, sorted(set(_NAME.findall(expr)))
