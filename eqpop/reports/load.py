"""Read any eqpop output into three pandas DataFrames with proper dtypes: a study folder, an
``eqpop train`` run folder, an ``eqpop compare`` Parquet file, or a folder holding several of
them (``reports/``), one or many at once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from eqpop.reports.schema import COMPARISONS, METRICS, TRIALS

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
    """Everything loaded: one row per trial, per (trial, epoch), per comparison row; and the
    training config each study's trials started from (``study.json``)."""

    trials: pd.DataFrame
    metrics: pd.DataFrame
    comparisons: pd.DataFrame
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for col in frame.columns:
        if col in CATEGORIES:
            frame[col] = frame[col].astype("string").astype("category")
        elif col in INTEGERS:
            frame[col] = pd.to_numeric(frame[col]).astype("Int64")
    return frame


def _has_parts(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("part-*.parquet"))


def _study(root: Path, out: dict[str, list[pd.DataFrame]], configs: dict) -> None:
    for name in (TRIALS, METRICS, COMPARISONS):
        if _has_parts(root / name):
            out[name].append(pd.read_parquet(root / name))
    if (root / "study.json").is_file():
        described = json.loads((root / "study.json").read_text())
        configs[described["name"]] = described.get("train_config", {})


def _train_run(root: Path, out: dict[str, list[pd.DataFrame]], configs: dict) -> None:
    """A run folder as a one-trial study named ``train:<folder>``."""
    cfg = json.loads((root / "config.json").read_text())
    metrics = pd.read_parquet(root / "metrics.parquet")
    name = f"train:{root.name}"
    configs[name] = cfg
    metrics.insert(0, "study", name)
    metrics.insert(1, "trial", 0)
    out[METRICS].append(metrics)
    keys = ("method", "beta", "n_points", "lambda_homeo", "asymmetry_angle", "init_ep", "seed")
    out[TRIALS].append(
        pd.DataFrame(
            [
                {
                    "study": name,
                    "trial": 0,
                    "state": "COMPLETE" if len(metrics) == cfg["epochs"] else "RUNNING",
                    "value": metrics.val_error.iloc[-1] if len(metrics) else None,
                    "epochs": len(metrics),
                    **{f"param_{k}": cfg.get(k) for k in keys},
                }
            ]
        )
    )


def _compare(path: Path, out: dict[str, list[pd.DataFrame]]) -> None:
    frame = pd.read_parquet(path).assign(study=f"compare:{path.parent.name}", init_ep=False)
    out[COMPARISONS].append(frame)


def _collect(path: Path, out: dict, configs: dict, depth: int = 0) -> bool:
    """Add what ``path`` holds; True if it held anything eqpop writes."""
    if path.is_file() and path.suffix == ".parquet":
        _compare(path, out)
        return True
    if not path.is_dir():
        return False
    if any(_has_parts(path / n) for n in (TRIALS, METRICS, COMPARISONS)):
        _study(path, out, configs)
        return True
    if (path / "metrics.parquet").is_file() and (path / "config.json").is_file():
        _train_run(path, out, configs)
        return True
    if (path / "compare.parquet").is_file():
        _compare(path / "compare.parquet", out)
        return True
    found = False
    if depth < 2:
        for child in sorted(path.iterdir()):
            if child.is_dir() or child.suffix == ".parquet":
                found |= _collect(child, out, configs, depth + 1)
    return found


def load(*paths: Path | str) -> Report:
    """Load one or several outputs; a path holding nothing eqpop wrote is an error."""
    out: dict[str, list[pd.DataFrame]] = {TRIALS: [], METRICS: [], COMPARISONS: []}
    configs: dict[str, dict[str, Any]] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise ValueError(f"path: {p} does not exist")
        if not _collect(p, out, configs):
            raise ValueError(f"path: {p} holds no study, train run or compare output")
    frames = {
        k: _typed(pd.concat(v, ignore_index=True)) if v else pd.DataFrame() for k, v in out.items()
    }
    return Report(frames[TRIALS], frames[METRICS], frames[COMPARISONS], configs)
