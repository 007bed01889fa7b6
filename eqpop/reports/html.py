"""``eqpop report``: the tables (Markdown and CSV), the figures (PNG) and one self-contained
``report.html`` (images embedded) for any set of outputs; every file written atomically.

Needs neither torch nor Ray nor Optuna: Optuna's parameter importances come in as a ready
table (``population.importance``, which the command line asks for).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from eqpop.io import atomic_write
from eqpop.reports import figures, lineage, tables
from eqpop.reports.loader import Report, load

STYLE = """body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
img{max-width:100%;border:1px solid #eee}p.note{color:#555;font-size:.9em}"""


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    fig.clf()
    return buf.getvalue()


#: file stem -> (title, what it shows, how to build it from a Report)
FIGURES: dict[str, tuple[str, str, Callable[[Report], Figure | None]]] = {
    "fig2ab_cosine_vs_beta": (
        "Fig. 2a-b: cosine with the exact derivative and with RBP against |beta|",
        "Each estimator's error vector on the probe batch, at the last probe of each trial.",
        lambda r: figures.cosine_vs_beta(r.comparisons, r.methods),
    ),
    "fig2cd_layer_cosines": (
        "Fig. 2c-d: distribution of layer-wise cosines with RBP",
        "Boxes over trials and |beta| (whiskers: 1.5 IQR).",
        lambda r: figures.layer_cosines(r.comparisons, r.methods),
    ),
    "fig3_asymmetry": (
        "Fig. 3: learning curves, weight angle and cosine over training, per initial asymmetry",
        "Mean over the trials that started with each asymmetry angle.",
        lambda r: figures.asymmetry_curves(r.metrics, r.trials, r.configs),
    ),
    "fig4_homeostasis": (
        "Fig. 4: validation error, symmetry ratio and cosine with and without homeostasis",
        "Mean over the trials with lambda_homeo > 0 and with lambda_homeo = 0.",
        lambda r: figures.homeostasis_curves(r.metrics),
    ),
    "pbt_lineages": (
        "Population-based training: the surviving lineages' schedules",
        "Each complete trial of a PBT study with the settings of the trials its network passed "
        "through, epoch by epoch, and its validation error.",
        lambda r: figures.lineages(r.schedule),
    ),
    "history": (
        "Optimisation history",
        "Every trial's objective; the best so far.",
        lambda r: figures.history(r.trials),
    ),
    "pareto": (
        "Validation error against compute",
        "Settling steps per training sample over the trial's epochs; pruned trials too.",
        lambda r: figures.pareto(r.trials, r.configs, r.methods),
    ),
}


#: figures of one kind of study only, left out of a report without one
ONLY_WHEN: dict[str, Callable[[Report], bool]] = {"pbt_lineages": lambda r: len(r.lineage) > 0}


TABLE_NOTES = {
    "table1": "Complete trials only; a cell is mean ± std over the trials in it (n). Studies "
    "draw |beta| continuously, so their columns are |beta| ranges.",
    "table2": "Final epoch of each complete trial; 'with homeostasis' means lambda_homeo > 0.",
    "cells": "Grid studies only (sampler: grid): one row per cell of settings (the seed "
    "aside), its complete trials' last epoch; n counts the seeds.",
    "best_lineage": "PBT studies only: the settings of each trial the best lineage's network "
    "passed through, the epochs each held, and the validation error at the end of each.",
    "importances": "Optuna's get_param_importances over the complete trials of each study: "
    "how much each parameter tells good trials from the rest. Few trials, or conditional "
    "parameters (N is drawn only for hep), make these rough.",
}


def build_tables(report: Report, importances: pd.DataFrame) -> dict[str, tuple[str, pd.DataFrame]]:
    """Every table of the report; a grid's cells only where a grid study is among the paths."""
    found = {
        "table1": (
            "Table 1: validation error (%) by method and |beta|, mean ± std",
            tables.table1(report.trials, report.methods),
        ),
        "table2": (
            "Table 2: top-1 / top-5 validation error (%), with and without homeostasis",
            tables.table2(report.trials, report.metrics, report.methods),
        ),
        "best_trials": ("Best trials", tables.best_trials(report.trials)),
        "states": ("Trials by state", tables.state_counts(report.trials)),
        "importances": (
            "Parameter importances (Optuna's default evaluator, PED-ANOVA)",
            importances,
        ),
    }
    if len(report.lineage):
        found["best_lineage"] = (
            "PBT: the best surviving lineage's schedule (one row per trial it passed through)",
            lineage.best_schedule(report.schedule),
        )
    if report.grids:
        found["cells"] = (
            "Grid cells: last-epoch measurements by setting, mean ± std over seeds",
            tables.grid_cells(report.trials, report.metrics, report.grids, report.methods),
        )
    return found


def _write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_report(
    paths: list[Path],
    out: Path,
    importances: pd.DataFrame | None = None,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Tables, figures and ``report.html`` into ``out``; returns the HTML's path.
    ``importances``: Optuna's parameter importances of the studies among ``paths``; ``warn``
    hears what was left out (a damaged part), which the page says too."""
    report = load(*paths)
    importances = pd.DataFrame() if importances is None else importances
    sections = [
        f"<h1>eqpop report</h1><p class=note>{html.escape(', '.join(map(str, paths)))}"
        f": {len(report.trials)} trials, {len(report.metrics)} epoch records, "
        f"{len(report.comparisons)} comparison rows.</p>"
    ]
    for warning in report.warnings:
        sections.append(f"<p class=note>Left out: {html.escape(warning)}</p>")
        if warn is not None:
            warn(warning)
    for stem, (title, frame) in build_tables(report, importances).items():
        md = f"## {title}\n\n{tables.to_markdown(frame)}"
        _write_bytes(out / f"{stem}.md", md.encode())
        _write_bytes(out / f"{stem}.csv", frame.to_csv().encode())
        flat = frame.reset_index() if frame.index.name else frame
        flat = flat.astype(object).where(flat.notna(), None)  # <NA> and NaN both as blanks
        body = "<p class=note>No data for this table in these outputs.</p>"
        if not frame.empty:
            body = flat.to_html(na_rep="", index=False, float_format=lambda v: f"{v:.3g}")
        note = f"<p class=note>{html.escape(TABLE_NOTES[stem])}</p>" if stem in TABLE_NOTES else ""
        sections.append(f"<h2 id={stem}>{html.escape(title)}</h2>{note}{body}")
    for stem, (title, note, make) in FIGURES.items():
        if stem in ONLY_WHEN and not ONLY_WHEN[stem](report):
            continue
        fig = make(report)
        if fig is None:
            missing = "<p class=note>No data for this figure in these outputs.</p>"
            sections.append(f"<h2 id={stem}>{html.escape(title)}</h2>{missing}")
            continue
        png = _png(fig)
        _write_bytes(out / f"{stem}.png", png)
        data = base64.b64encode(png).decode()
        sections.append(
            f"<h2 id={stem}>{html.escape(title)}</h2><p class=note>"
            f"{html.escape(note)}</p><img alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{data}'>"
        )
    page = (
        f"<!doctype html><html><head><meta charset=utf-8><title>eqpop report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )
    _write_bytes(out / "report.html", page.encode())
    return out / "report.html"
