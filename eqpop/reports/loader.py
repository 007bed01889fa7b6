"""Read any eqpop output into pandas DataFrames with proper dtypes (trials, metrics,
comparisons, and PBT's lineage): a study folder, an ``eqpop train`` run folder, an
``eqpop compare`` Parquet file, or a folder holding several of them (``reports/``), one or
many at once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from eqpop.errors import Damaged, UserError
from eqpop.records import (
    COMPARE,
    COMPARISONS,
    DATASETS,
    LINEAGE,
    METRICS,
    RUN_CONFIG,
    RUN_METRICS,
    TRIALS,
    damaged_parts,
    is_run,
    methods_of,
    part_files,
    read_study,
)
from eqpop.reports import lineage
from eqpop.reports.methods import Methods

CATEGORIES = ["study", "state", "method", "param_method"]
INTEGERS = [
    "trial",
    "epoch",
    "n_points",
    "layer",
    "epochs",
    "retry_of",
    "attempt",
    "actor",
    "param_n_points",
]


@dataclass
class Report:
    """Everything loaded: one row per trial, per (trial, epoch), per comparison row; the
    training config each study's trials started from (``study.json``); and the description of
    every estimator the outputs name."""

    trials: pd.DataFrame
    metrics: pd.DataFrame
    comparisons: pd.DataFrame
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    methods: Methods = field(default_factory=Methods)
    #: what was left out and why (a damaged Parquet part)
    warnings: list[str] = field(default_factory=list)
    #: the studies that ran a grid (``sampler: grid``): their cells are a table
    grids: set[str] = field(default_factory=set)
    #: one row per PBT exploit (``lineage`` dataset); empty without PBT studies
    lineage: pd.DataFrame = field(default_factory=pd.DataFrame)

    @cached_property
    def schedule(self) -> pd.DataFrame:
        """Every surviving PBT lineage epoch by epoch (``lineage.schedules``), made once for
        the figure and the table that show it."""
        return lineage.schedules(self.trials, self.lineage, self.metrics)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for col in frame.columns:
        if col in CATEGORIES:
            frame[col] = frame[col].astype("string").astype("category")
        elif col in INTEGERS:
            frame[col] = pd.to_numeric(frame[col]).astype("Int64")
    return frame


@dataclass
class _Found:
    """What the outputs read so far hold, before the frames are joined."""

    frames: dict[str, list[pd.DataFrame]] = field(
        default_factory=lambda: {TRIALS: [], METRICS: [], COMPARISONS: [], LINEAGE: []}
    )
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    methods: Methods = field(default_factory=Methods)
    warnings: list[str] = field(default_factory=list)
    grids: set[str] = field(default_factory=set)

    def add(self, dataset: str, frame: pd.DataFrame) -> None:
        self.methods.described.update(methods_of(frame))
        self.frames[dataset].append(frame)


def _study(root: Path, found: _Found) -> None:
    for name in DATASETS:
        damaged = damaged_parts(root / name)
        for part, why in damaged.items():
            found.warnings.append(str(Damaged.part(part, why, root, ", left out of the report")))
        parts = [str(p) for p in part_files(root / name) if p not in damaged]
        if parts:
            found.add(name, pd.read_parquet(root / name if not damaged else parts))
    described = read_study(root)
    if described is not None:
        found.configs[described["name"]] = described.get("train_config", {})
        if described.get("sampler") == "grid":
            found.grids.add(described["name"])
        found.methods.described.update(described.get("methods", {}))


def _train_run(root: Path, found: _Found) -> None:
    """A run folder as a one-trial study named ``train:<folder>``."""
    cfg = json.loads((root / RUN_CONFIG).read_text())
    metrics = pd.read_parquet(root / RUN_METRICS)
    name = f"train:{root.name}"
    found.configs[name] = cfg
    metrics.insert(0, "study", name)
    metrics.insert(1, "trial", 0)
    found.add(METRICS, metrics)
    keys = ("method", "beta", "n_points", "lambda_homeo", "asymmetry_angle", "init_ep", "seed")
    trial = {
        "study": name,
        "trial": 0,
        "state": "COMPLETE" if len(metrics) == cfg["epochs"] else "RUNNING",
        "value": metrics.val_error.iloc[-1] if len(metrics) else None,
        "epochs": len(metrics),
        "duration_s": metrics.seconds.sum() if len(metrics) else None,
        **{f"param_{k}": cfg.get(k) for k in keys},
    }
    found.add(TRIALS, pd.DataFrame([trial]))


def _compare(path: Path, found: _Found) -> None:
    frame = pd.read_parquet(path).assign(study=f"compare:{path.parent.name}", init_ep=False)
    found.add(COMPARISONS, frame)


def _collect(path: Path, found: _Found, depth: int = 0) -> bool:
    """Add what ``path`` holds; True if it held anything eqpop writes."""
    if path.is_file() and path.suffix == ".parquet":
        _compare(path, found)
        return True
    if not path.is_dir():
        return False
    if any(part_files(path / n) for n in DATASETS):
        _study(path, found)
        return True
    if is_run(path):
        _train_run(path, found)
        return True
    if (path / COMPARE).is_file():
        _compare(path / COMPARE, found)
        return True
    held = False
    if depth < 2:
        for child in sorted(path.iterdir()):
            if child.is_dir() or child.suffix == ".parquet":
                held |= _collect(child, found, depth + 1)
    return held


def _grid_settings(trials: pd.DataFrame, found: _Found) -> pd.DataFrame:
    """A grid trial's ``param_<field>`` where its cell did not set the field: the value it
    trained with, its study's base (a homeostasis cell trained the base's method, say). The
    method is always there, as the tables label a trial by it, also for a grid that does not
    search it (Fig. 4's: homeostasis strength by seed)."""
    grid = trials.study.isin(found.grids)
    if "param_method" not in trials:
        trials = trials.assign(param_method=None)
    for col in (c for c in trials.columns if c.startswith("param_")):
        base = trials.study.map(lambda s, f=col[6:]: found.configs.get(s, {}).get(f))
        trials[col] = trials[col].astype(object).where(~grid | trials[col].notna(), base)
    return trials


def load(*paths: Path | str) -> Report:
    """Load one or several outputs; a path holding nothing eqpop wrote is an error."""
    found = _Found()
    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"path: {p} does not exist")
        if not _collect(p, found):
            raise UserError(f"path: {p} holds no study, train run or compare output")
    frames = {
        k: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for k, v in found.frames.items()
    }
    if found.grids:
        frames[TRIALS] = _grid_settings(frames[TRIALS], found)
    frames = {k: _typed(v) if len(v.columns) else v for k, v in frames.items()}
    return Report(
        frames[TRIALS],
        frames[METRICS],
        frames[COMPARISONS],
        found.configs,
        found.methods,
        found.warnings,
        found.grids,
        frames[LINEAGE],
    )
