"""The papers' tables from any loaded output, as DataFrames (written as Markdown and CSV)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from eqpop.reports.methods import Methods


def beta_bins(betas: pd.Series) -> pd.Series:
    """|beta| as its own value when a study used a few (a grid), else log-spaced ranges."""
    values = betas.dropna().unique()
    if len(values) <= 6:
        return betas.map(lambda b: "" if pd.isna(b) else f"{b:.3g}")
    edges = [0.0, 0.03, 0.1, 0.3, 1.0, math.inf]
    names = ["< 0.03", "0.03-0.1", "0.1-0.3", "0.3-1", ">= 1"]
    return pd.cut(betas, edges, right=False, labels=names).astype("string").fillna("")


def latest(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (study, trial), the rows of its last epoch; rows without an epoch (a compare run
    measures once) are all kept."""
    if frame.empty or "epoch" not in frame:
        return frame
    single = frame.epoch.isna()
    keyed = frame[~single]
    last = keyed.groupby(["study", "trial"], observed=True).epoch.transform("max")
    return pd.concat([frame[single], keyed[keyed.epoch == last]])


def _mean_std(values: pd.Series, scale: float = 100.0, digits: int = 2) -> str:
    v = scale * values.dropna()
    if v.empty:
        return ""
    std = f" ± {v.std():.{digits}f}" if len(v) > 1 else ""
    return f"{v.mean():.{digits}f}{std} (n={len(v)})"


def trial_labels(trials: pd.DataFrame, methods: Methods | None = None) -> list[str]:
    """Each trial's training method as Table 1 names it."""
    none = pd.Series(pd.NA, index=trials.index)
    chosen, n = trials.get("param_method", none), trials.get("param_n_points", none)
    return (methods or Methods()).labels(chosen, n)


def _finished(trials: pd.DataFrame, methods: Methods | None) -> pd.DataFrame:
    if trials.empty or "param_method" not in trials:
        return trials.iloc[0:0]
    done = trials[trials.state == "COMPLETE"].copy()
    done["label"] = trial_labels(done, methods)
    return done


def table1(trials: pd.DataFrame, methods: Methods | None = None) -> pd.DataFrame:
    """Validation error (%) by training method (rows) and |beta| (columns), mean ± std over
    the complete trials (seeds, or the other searched parameters) in each cell; methods that
    take no beta in the column ``-``."""
    methods = methods or Methods()
    done = _finished(trials, methods)
    if done.empty:
        return pd.DataFrame()
    beta = done["param_beta"] if "param_beta" in done else pd.Series(np.nan, index=done.index)
    nudged = done.param_method.astype(object).map(methods.nudged).astype(bool)
    done["|beta|"] = beta_bins(beta.where(nudged))
    table = done.pivot_table(
        index="label", columns="|beta|", values="value", aggfunc=_mean_std, observed=True
    ).fillna("")
    table = table.reindex(methods.order(table.index)).rename(columns={"": "-"})
    table.index.name, table.columns.name = "method \\ |beta|", None
    return table


def table2(
    trials: pd.DataFrame, metrics: pd.DataFrame, methods: Methods | None = None
) -> pd.DataFrame:
    """Top-1 and top-5 validation error (%) by method, with and without homeostasis."""
    methods = methods or Methods()
    done = _finished(trials, methods)
    last = latest(metrics)
    if done.empty or last.empty:
        return pd.DataFrame()
    rows = last.merge(done[["study", "trial", "label"]], on=["study", "trial"])
    rows["homeostasis"] = np.where(rows.homeo_loss.notna(), "with", "without")
    out = rows.groupby(["label", "homeostasis"], observed=True).agg(
        top1=("val_error", _mean_std), top5=("val_top5_error", _mean_std)
    )
    out = out.unstack("homeostasis").fillna("")
    out.columns = [f"{k} {h} homeostasis" for k, h in out.columns]
    out = out.reindex(methods.order(out.index))
    out.index.name = "method"
    return out


#: a grid table's measurements of each cell's last epoch: column -> (record field, scale, digits)
CELL_MEASURES = {
    "val error %": ("val_error", 100.0, 2),
    "top-5 val error %": ("val_top5_error", 100.0, 2),
    "symmetry ratio": ("symmetry_ratio", 1.0, 3),
    "cos RBP, layer 0": ("cos_rbp_l0", 1.0, 3),
    "imag ratio": ("imag_ratio", 1.0, 2),
    "forward-pass val error %": ("val_error_forward", 100.0, 2),  # Init-EP's prediction
}


def _setting(value: object) -> str:
    """A setting as a table shows it: ``3`` for 3.0 (Parquet stores a column that mixes
    integers with missing values as floats), blank where missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def grid_cells(
    trials: pd.DataFrame, metrics: pd.DataFrame, grids: set[str], methods: Methods | None = None
) -> pd.DataFrame:
    """A grid study's cells (every searched setting but the seed; the method as Table 1
    names it), each with its complete trials' last-epoch measurements, mean ± std (n) over
    the seeds: the table of a paper's runs."""
    done = _finished(trials[trials.study.isin(grids)] if not trials.empty else trials, methods)
    last = latest(metrics)
    if done.empty or last.empty:
        return pd.DataFrame()
    rows = last.merge(done, on=["study", "trial"])
    drop = {"param_method", "param_n_points", "param_seed"}
    params = [c for c in done.columns if c.startswith("param_") and c not in drop]
    params = [c for c in params if rows[c].notna().any()]
    keys = ["study", "label", *params]
    rank = {label: k for k, label in enumerate((methods or Methods()).order(rows.label))}
    rows = rows.assign(rank=rows.label.map(rank)).sort_values(["study", "rank", *params])
    rows[params] = rows[params].map(_setting)
    found = {
        name: (field, scale, digits)
        for name, (field, scale, digits) in CELL_MEASURES.items()
        if field in rows and rows[field].notna().any()
    }
    out = rows.groupby(keys, observed=True, sort=False).agg(
        **{
            name: (field, lambda v, s=scale, d=digits: _mean_std(v, s, d))
            for name, (field, scale, digits) in found.items()
        }
    )
    return out.reset_index().rename(columns={"label": "method", **{p: p[6:] for p in params}})


def best_trials(trials: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """The k best complete trials with every parameter."""
    if trials.empty:
        return pd.DataFrame()
    done = trials[trials.state == "COMPLETE"].nsmallest(k, "value")
    params = [c for c in done.columns if c.startswith("param_")]
    out = done[["study", "trial", "value", "epochs", "duration_s", *params]].copy()
    out["value"] = 100 * out["value"]
    out = out.rename(columns={"value": "val error %", **{p: p[6:] for p in params}})
    return out.reset_index(drop=True)


def state_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials by state and how long they ran (pruned trials stop early)."""
    if trials.empty:
        return pd.DataFrame()
    return (
        trials.groupby(["study", "state"], observed=True)
        .agg(
            trials=("trial", "size"), mean_epochs=("epochs", "mean"), mean_s=("duration_s", "mean")
        )
        .reset_index()
    )


def to_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-style Markdown table (floats to ``digits`` significant digits)."""
    if frame.empty:
        return "(no rows)\n"
    flat = frame.reset_index() if frame.index.name else frame

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.{digits}g}"
        return "" if v is None or v is pd.NA else str(v).replace("|", "\\|")

    head = "| " + " | ".join(cell(str(c)) for c in flat.columns) + " |"
    rule = "|" + "---|" * len(flat.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in flat.itertuples(False)]
    return "\n".join([head, rule, *body]) + "\n"
