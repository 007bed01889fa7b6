"""Reading and showing results: loaders for pandas (``loader``), the papers' tables
(``tables``) and figures (``figures``), and a self-contained HTML report (``html``,
``eqpop report``). What is on disk is ``eqpop.records``'s.

``from eqpop.reports import load, Report`` is the entry point for analysis; it is resolved on
first use, so that importing a light module of this package (or ``eqpop.records``) does not
load pandas' readers."""

from __future__ import annotations

from typing import Any

__all__ = ["Report", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from eqpop.reports import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
