"""The papers' figures from any loaded output (matplotlib, PNG). Each function returns a Figure,
or None when the data it needs are not there (a compare run has no learning curves)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from eqpop.reports import lineage  # noqa: E402
from eqpop.reports.methods import Methods  # noqa: E402
from eqpop.reports.tables import latest, trial_labels  # noqa: E402

plt.rcParams.update(
    {
        "figure.dpi": 110,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.fontsize": 8,
        "axes.titlesize": 11,
    }
)


def _plain(ax, axes: str = "xy") -> None:
    """Log axes labelled 2, 5, 10, 20 ... rather than 2x10^0."""
    major = FuncFormatter(lambda v, _: f"{v:g}")
    minor = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
    for name in axes:
        axis = ax.xaxis if name == "x" else ax.yaxis
        axis.set_major_formatter(major)
        axis.set_minor_formatter(minor)


def _labelled(comparisons: pd.DataFrame, methods: Methods) -> pd.DataFrame:
    frame = comparisons.copy()
    frame["label"] = methods.labels(frame.method, frame.n_points)
    return frame


#: how a figure names each measurement (``measured``; rows written before it existed have none)
_MEASURED = {"converged": "converged (the paper's Fig. 2)", "as_trained": "as trained"}


def _measured(frame: pd.DataFrame) -> pd.Series:
    """Each row's measurement as a figure names it, blank where the rows do not say."""
    if "measured" not in frame:
        return pd.Series("", index=frame.index)
    return frame.measured.astype(object).map(_MEASURED).fillna("")


def cosine_vs_beta(comparisons: pd.DataFrame, methods: Methods) -> Figure | None:
    """Fig. 2a-b: cosine with the exact d_beta s* and with RBP's delta against |beta|, one row
    of panels per study or compare run (their nets differ) and measurement (converged; as
    trained, against the exact derivative through the same nudged steps), one line per method
    and N; the exact d_beta s*'s own cosine with RBP dashed."""
    if comparisons.empty:
        return None
    frame = _labelled(latest(comparisons), methods)
    measured = _measured(frame)
    frame["source"] = frame.study.astype(str) + measured.where(measured == "", ", " + measured)
    nudged = frame[frame.beta.notna()]
    sources = sorted(nudged.source.unique())
    labels = methods.order(nudged.label)
    exact = methods.truth("d_beta")
    exact_label = f"{methods.label(exact, None)} (no |beta|)"
    colours = {lab: f"C{i}" for i, lab in enumerate(labels)}
    fig, axes = plt.subplots(len(sources), 2, figsize=(11, 3.6 * len(sources)), squeeze=False)
    for row, source in zip(axes, sources):
        rows = nudged[nudged.source == source]
        for ax, col, what in zip(
            row, ["cos_exact", "cos_rbp"], ["the exact $d_\\beta s^*$", "RBP's $\\delta$"]
        ):
            for label, group in rows.groupby("label"):
                mean = group.groupby("beta")[col].mean()
                ax.plot(
                    mean.index, mean.values, marker="o", ms=4, color=colours[label], label=label
                )
            if col == "cos_rbp" and exact is not None:
                level = frame[(frame.source == source) & (frame.method == exact)].cos_rbp.mean()
                ax.axhline(level, color="k", ls="--", lw=1, label=exact_label)
            ax.set(
                xscale="log",
                xlabel="|beta| (teaching amplitude)",
                ylabel="cosine",
                title=f"{source}: vs {what}",
            )
            _plain(ax, "x")
    handles = [Line2D([], [], color=colours[lab], marker="o", ms=4, label=lab) for lab in labels]
    if exact is not None:
        handles.append(Line2D([], [], color="k", ls="--", lw=1, label=exact_label))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.suptitle(
        "Fig. 2a-b: each estimator's error vector against the exact derivative and "
        "RBP (mean over layers and trials)"
    )
    fig.tight_layout()
    return fig


def layer_cosines(comparisons: pd.DataFrame, methods: Methods) -> Figure | None:
    """Fig. 2c-d style: the distribution over trials and |beta| of the layer-wise cosine with
    RBP's delta, one panel per layer, one box per method (RBP's own left out); the converged
    measurement where the rows have one."""
    if comparisons.empty:
        return None
    frame = _labelled(latest(comparisons), methods)
    measured = _measured(frame)
    if (measured == _MEASURED["converged"]).any():
        frame = frame[measured == _MEASURED["converged"]]
    frame = frame[frame.method != methods.truth("delta")]
    layers = sorted(frame.layer.dropna().unique())
    fig, axes = plt.subplots(
        1, len(layers), figsize=(3.6 * len(layers), 4), sharey=True, squeeze=False
    )
    labels = methods.order(frame.label)
    for ax, layer in zip(axes[0], layers):
        data = [
            frame[(frame.layer == layer) & (frame.label == lab)].cos_rbp.dropna() for lab in labels
        ]
        ax.boxplot(data, tick_labels=labels, showfliers=False)
        ax.tick_params(axis="x", rotation=60, labelsize=8)
        ax.set(title=f"layer {layer}" + (" (output)" if layer == layers[-1] else ""))
    axes[0][0].set_ylabel("cosine with RBP's delta")
    fig.suptitle("Layer-wise cosine with RBP, over trials and |beta|")
    fig.tight_layout()
    return fig


def _curves(ax, metrics: pd.DataFrame, groups: pd.Series, col: str, ylabel: str) -> None:
    for name in sorted(groups.dropna().unique(), key=str):
        rows = metrics[groups == name]
        if col not in rows or rows[col].isna().all():
            continue
        mean = rows.groupby("epoch")[col].mean()
        ax.plot(mean.index, mean.values, marker=".", label=str(name))
    ax.set(xlabel="epoch", ylabel=ylabel)


def _layer_mean(metrics: pd.DataFrame, prefix: str) -> pd.Series:
    cols = [c for c in metrics.columns if c.startswith(prefix)]
    return metrics[cols].mean(axis=1) if cols else pd.Series(np.nan, index=metrics.index)


def config_value(frame: pd.DataFrame, trials: pd.DataFrame, configs: dict, name: str) -> pd.Series:
    """Per row of ``frame`` (keyed by study and trial), its trial's value of a config field:
    the searched one where the trial drew it, else the study's base config."""
    keys = frame[["study", "trial"]].astype({"study": "string"})
    value = pd.Series(None, index=frame.index, dtype=object)
    if f"param_{name}" in trials:
        drawn = trials[["study", "trial", f"param_{name}"]].astype({"study": "string"})
        merged = keys.merge(drawn, on=["study", "trial"], how="left")[f"param_{name}"]
        value = pd.Series(merged.to_numpy(dtype=object), index=frame.index)
    base = keys.study.map(lambda st: configs.get(str(st), {}).get(name))
    return value.where(value.notna(), base)


def asymmetry_curves(metrics: pd.DataFrame, trials: pd.DataFrame, configs: dict) -> Figure | None:
    """Fig. 3: learning curves, weight angle and layer-wise cosine with RBP over training, one
    line per initial asymmetry (mean over the trials that started with it)."""
    if metrics.empty:
        return None
    angle = config_value(metrics, trials, configs, "asymmetry_angle")
    groups = angle.map(lambda a: "independent" if pd.isna(a) else f"{float(a):g} deg")
    m = metrics.assign(
        angle_mean=_layer_mean(metrics, "weight_angle_l"),
        cos_first=metrics.get("cos_rbp_l0"),
        cos_mean=_layer_mean(metrics, "cos_rbp_l"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    _curves(axes[0], m, groups, "val_error", "validation error")
    _curves(axes[1], m, groups, "angle_mean", "weight angle (deg, mean over layers)")
    _curves(axes[2], m, groups, "cos_mean", "cosine with RBP (mean over layers)")
    axes[0].legend(title="initial asymmetry")
    fig.suptitle(
        "Training with asymmetric feedback (Fig. 3): mean over the trials still "
        "training at each epoch"
    )
    fig.tight_layout()
    return fig


def homeostasis_curves(metrics: pd.DataFrame) -> Figure | None:
    """Fig. 4b-d: validation error, symmetry ratio and, one panel per layer, the cosine between
    the estimator's error vector and RBP's over training, with and without the homeostatic loss
    (runs with a homeostatic loss record it each epoch)."""
    if metrics.empty:
        return None
    groups = pd.Series(
        np.where(metrics.homeo_loss.notna(), "with homeostasis", "without"), index=metrics.index
    )
    layers = sorted(
        (c for c in metrics.columns if c.startswith("cos_rbp_l")), key=lambda c: int(c[9:])
    )
    fig, axes = plt.subplots(1, 2 + len(layers), figsize=(4 * (2 + len(layers)), 3.6))
    _curves(axes[0], metrics, groups, "val_error", "validation error")
    _curves(axes[1], metrics, groups, "symmetry_ratio", "symmetry ratio ||S||/(||S||+||A||)")
    for ax, col in zip(axes[2:], layers):
        _curves(ax, metrics, groups, col, f"cosine with RBP, layer {col[9:]}")
    axes[0].legend()
    fig.suptitle("Jacobian homeostasis (Fig. 4): mean over the runs still training at each epoch")
    fig.tight_layout()
    return fig


def lineages(schedule: pd.DataFrame) -> Figure | None:
    """PBT: each surviving lineage's settings and validation error over epochs
    (``lineage.schedules``), one panel per searched setting it drew."""
    if schedule.empty:
        return None
    fields = [f for f in lineage.DRAWN if f in schedule and schedule[f].notna().any()]
    cols = min(3, 1 + len(fields))
    rows_ = -(-(1 + len(fields)) // cols)
    fig, grid = plt.subplots(rows_, cols, figsize=(4.5 * cols, 3.4 * rows_), squeeze=False)
    axes = list(grid.flat)
    for ax in axes[1 + len(fields) :]:
        ax.set_visible(False)
    for (study, last), rows in schedule.groupby(["study", "lineage"]):
        rows = rows.sort_values("epoch")
        label = f"{study}: trial {last}"
        axes[0].step(rows.epoch, 100 * rows.val_error, where="post", label=label)
        for ax, name in zip(axes[1:], fields):
            values = rows[name].astype(str) if name == "method" else pd.to_numeric(rows[name])
            ax.step(rows.epoch, values, where="post")
    axes[0].set(xlabel="epoch", ylabel="validation error (%)", yscale="log")
    for ax, name in zip(axes[1:], fields):
        ax.set(xlabel="epoch", ylabel=name)
        if name in ("beta", "lr", "lambda_homeo"):
            ax.set_yscale("symlog" if name == "lambda_homeo" else "log")
    axes[0].legend(fontsize="small")
    fig.suptitle("Population-based training: each surviving lineage's schedule")
    fig.tight_layout()
    return fig


def history(trials: pd.DataFrame) -> Figure | None:
    """Optuna's optimisation history: every trial's value, the best so far."""
    if trials.empty or "state" not in trials or trials.value.isna().all():
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for study, rows in trials.groupby("study", observed=True):
        rows = rows.sort_values("trial")
        for state, marker in [("COMPLETE", "o"), ("PRUNED", "x"), ("FAIL", "v")]:
            r = rows[(rows.state == state) & rows.value.notna()]
            if len(r):
                ax.scatter(r.trial, 100 * r.value, marker=marker, label=f"{study}: {state.lower()}")
        best = (100 * rows.value.where(rows.state == "COMPLETE")).cummin().ffill()
        ax.step(rows.trial, best, where="post", label=f"{study}: best complete so far")
    ax.set(
        xlabel="trial number",
        ylabel="validation error (%)",
        yscale="log",
        title="Optimisation history (pruned: value when pruned)",
    )
    _plain(ax, "y")
    ax.legend()
    fig.tight_layout()
    return fig


def settling_steps(trials: pd.DataFrame, configs: dict, methods: Methods) -> pd.Series:
    """Settling steps per training sample a trial spent: its epochs times its method's cost
    per batch (the method's ``cost`` evaluated on the trial's config); NaN where unknown."""
    method = config_value(trials, trials, configs, "method")
    per = pd.Series(np.nan, index=trials.index)
    for name in method.dropna().unique():
        cost = methods.cost(name)
        if cost is None:
            continue
        expr, fields = cost
        rows = method == name
        values = {f: config_value(trials[rows], trials, configs, f) for f in fields}
        frame = pd.DataFrame({f: pd.to_numeric(v, errors="coerce") for f, v in values.items()})
        per[rows] = frame.eval(expr, engine="python")
    epochs = pd.to_numeric(trials.epochs, errors="coerce").fillna(0).astype(float)
    return epochs * per


def pareto(trials: pd.DataFrame, configs: dict, methods: Methods) -> Figure | None:
    """Validation error against compute (settling steps per sample) across trials, with the
    Pareto front: what each error costs (trials whose method's cost is unknown left out)."""
    done = trials[trials.state.isin(["COMPLETE", "PRUNED"])] if not trials.empty else trials
    if done.empty:
        return None
    steps = settling_steps(done, configs, methods)
    frame = pd.DataFrame(
        {"steps": steps, "err": 100 * done.value, "label": trial_labels(done, methods)}
    ).dropna(subset=["steps"])
    if frame.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for label in methods.order(frame.label):
        r = frame[frame.label == label]
        ax.scatter(r.steps, r.err, label=label, alpha=0.8)
    front = frame.sort_values("steps")
    front = front[front.err <= front.err.cummin()]
    ax.step(front.steps, front.err, where="post", color="k", lw=1, label="Pareto front")
    ax.set(
        xlabel="settling steps per training sample (free + nudged, all epochs)",
        ylabel="validation error (%)",
        xscale="log",
        yscale="log",
        title="Error against compute across trials",
    )
    _plain(ax)
    ax.legend()
    fig.tight_layout()
    return fig
