"""Reading and showing results: the Parquet schema (``schema``), loaders for pandas (``load``),
the papers' tables (``tables``) and figures (``figures``), and a self-contained HTML report
(``html``, ``eqpop report``)."""

from eqpop.reports.load import Report, load

__all__ = ["Report", "load"]
