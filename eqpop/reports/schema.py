"""The Parquet schema of a study, in one place: the population writer and every reader use these
columns and types, and ``reports/README.md`` documents each of them.

A study folder ``reports/<study>/`` holds three Parquet datasets (folders of part files):
``trials/`` (one row per finished trial), ``metrics/`` (one row per trial and epoch) and
``comparisons/`` (one row per trial, probe epoch, estimate and layer).

Every Parquet file eqpop writes with pandas (a compare file, a run's ``metrics.parquet``) and
every ``study.json`` also carry the description of each estimator (``with_methods``): its label,
table order, whether it takes beta and N, and its settling cost, so that a report never needs
the code (or the plug-in) that made an estimate.

This module is the contract between the writers and the readers: it imports nothing from eqpop.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TRIALS, METRICS, COMPARISONS = "trials", "metrics", "comparisons"
DATASETS = (TRIALS, METRICS, COMPARISONS)


def part_files(folder: Path) -> list[Path]:
    """A dataset folder's parts, in name order (hidden temporary files are not parts)."""
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def unreadable(part: Path) -> str | None:
    """Why a part's footer cannot be read (cut short, overwritten, not Parquet), or None."""
    try:
        pq.read_metadata(part)
    except Exception as err:  # pyarrow's error kinds for damaged bytes vary
        text = str(err).strip().splitlines()
        return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
    return None


def damaged_parts(folder: Path) -> dict[Path, str]:
    """The parts of a dataset folder whose footer cannot be read, and why."""
    found = {part: unreadable(part) for part in part_files(folder)}
    return {part: why for part, why in found.items() if why is not None}


#: the measurement columns of one comparison row (``eqpop compare``, a study's comparisons)
MEASURES = [
    "method",
    "beta",
    "n_points",
    "layer",
    "cos_rbp",
    "cos_exact",
    "rel_err_exact",
    "grad_cos_rbp",
    "seconds",
    "residual",
    "imag_ratio",
]

#: the Trainer's per-epoch record, as float columns (integers such as ``epoch`` aside)
METRIC_FIELDS = [
    "train_loss",
    "train_error",
    "val_error",
    "val_top5_error",
    "homeo_loss",
    "residual",
    "lr",
    "symmetry_ratio",
    "homeo_probe",
    "val_error_forward",
    "init_distance",
    "seconds",
    "samples_per_s",
    "imag_ratio",
]


def _fields(names: list[str], kind: pa.DataType) -> list[pa.Field]:
    return [pa.field(n, kind) for n in names]


def trials_schema(params: dict[str, pa.DataType]) -> pa.Schema:
    """``param_<name>`` for every name the search space can suggest, typed as the space says
    (null where a conditional parameter was not drawn)."""
    return pa.schema(
        [
            pa.field("study", pa.string()),
            pa.field("trial", pa.int64()),
            pa.field("state", pa.string()),
            pa.field("value", pa.float64()),
            pa.field("epochs", pa.int64()),
            pa.field("duration_s", pa.float64()),
            pa.field("fail_reason", pa.string()),
            pa.field("retry_of", pa.int64()),
            pa.field("attempt", pa.int64()),
            pa.field("actor", pa.int64()),
            pa.field("started", pa.timestamp("us", tz="UTC")),
            pa.field("finished", pa.timestamp("us", tz="UTC")),
            *[pa.field(f"param_{p}", kind) for p, kind in params.items()],
        ]
    )


def metrics_schema(n_layers: int) -> pa.Schema:
    """Per-layer columns ``weight_angle_l<k>`` (k < n_layers - 1: one per feedback pair) and
    ``cos_rbp_l<k>`` (k < n_layers) for the study's deepest net."""
    per_layer = [f"weight_angle_l{k}" for k in range(n_layers - 1)]
    per_layer += [f"cos_rbp_l{k}" for k in range(n_layers)]
    return pa.schema(
        [
            pa.field("study", pa.string()),
            pa.field("trial", pa.int64()),
            pa.field("epoch", pa.int64()),
            pa.field("resumed", pa.bool_()),
            *_fields(METRIC_FIELDS, pa.float64()),
            *_fields(per_layer, pa.float64()),
        ]
    )


def comparisons_schema() -> pa.Schema:
    kinds = {
        "method": pa.string(),
        "beta": pa.float64(),
        "n_points": pa.int64(),
        "layer": pa.int64(),
    }
    return pa.schema(
        [
            pa.field("study", pa.string()),
            pa.field("trial", pa.int64()),
            pa.field("epoch", pa.int64()),
            pa.field("init_ep", pa.bool_()),
            *[pa.field(m, kinds.get(m, pa.float64())) for m in MEASURES],
        ]
    )


def with_methods(frame: pd.DataFrame, described: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """``frame`` with the estimators' descriptions in its attrs, which pandas stores in the
    Parquet file and restores on reading: ``frame.attrs["eqpop"]["methods"]``."""
    frame.attrs["eqpop"] = {"methods": described}
    return frame


def methods_of(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The descriptions a frame read from Parquet carries (empty when it carries none)."""
    return frame.attrs.get("eqpop", {}).get("methods", {})


#: what a method's settling cost may be written with: config field names, numbers, + - * / //
#: and parentheses (reports evaluate it on each trial's config, from files they are pointed at)
_COST = re.compile(r"(?:\s|[A-Za-z_]\w*|\d+(?:\.\d+)?|[-+*/()])+")


def check_cost(expr: str) -> str:
    """``expr`` if it is a plain arithmetic cost expression, else a ValueError."""
    if not _COST.fullmatch(expr):
        raise ValueError(f"cost {expr!r}: only config field names, numbers, + - * / and ()")
    return expr
