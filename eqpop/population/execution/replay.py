"""``eqpop train --replay <study folder> --trial K``: the schedule a PBT lineage found, trained
again from scratch on one network, as Ray Tune's PBT replay does. Each trial the lineage passed
through trains its epochs with its settings; the next takes over the same network at the epoch
where, in the study, its trial copied it (``Trainer.inherit``, the study's own path). Training
is deterministic on one device, so the replay retraces the lineage's own curve.

The run folder's ``metrics.parquet`` adds, per epoch, the ``segment`` (the trial whose settings
trained it) and those settings (``param_<field>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from eqpop.config import TrainConfig, build_config
from eqpop.data import load_dataset
from eqpop.errors import ConfigError
from eqpop.io import write_parquet_atomic
from eqpop.records import CHECKPOINT, RUN_METRICS
from eqpop.reports import lineage
from eqpop.reports.loader import load
from eqpop.train import Trainer


@dataclass(frozen=True)
class Segment:
    trial: int
    first_epoch: int
    settings: dict[str, Any]
    cfg: TrainConfig


def segments(folder: Path, trial: int) -> list[Segment]:
    """The lineage ending in ``trial`` of the study in ``folder``, root first (one line when the
    folder holds no study or the study no such complete trial)."""
    report = load(folder)
    studies = list(report.configs)
    if len(studies) != 1 or report.trials.empty:
        raise ConfigError(f"--replay: {folder} is not one study's folder")
    trials = report.trials
    complete = sorted(trials.trial[trials.state == "COMPLETE"].astype(int))
    if trial not in complete:
        raise ConfigError(
            f"--trial: study {studies[0]!r} has no complete trial {trial} (a lineage ends in "
            f"one; complete: {', '.join(map(str, complete)) or 'none'})"
        )
    values = lineage.settings(trials).set_index("trial").drop(columns="study")
    base = report.configs[studies[0]]
    found = []
    for number, first in lineage.chain(trials, report.lineage, trial):
        settings = {k: _plain(v) for k, v in values.loc[number].items() if not pd.isna(v)}
        found.append(Segment(number, first, settings, build_config(**{**base, **settings})))
    return found


def _plain(value: Any) -> Any:
    """A Parquet value as the config field takes it (numpy scalars, integral floats)."""
    value = value.item() if hasattr(value, "item") else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


def replay(folder: Path, trial: int, out: Path, progress: bool = True) -> pd.DataFrame:
    """Train the lineage's schedule in ``out`` (module docstring); returns its metrics."""
    chain = segments(folder, trial)
    if (out / CHECKPOINT).exists():
        raise ConfigError(f"out: {out} already holds a run; choose another --out")
    first = chain[0].cfg
    data = load_dataset(first.dataset, first.data_dir)
    trainer: Trainer | None = None
    for i, segment in enumerate(chain):
        until = chain[i + 1].first_epoch - 1 if i + 1 < len(chain) else segment.cfg.epochs
        trainer = Trainer(segment.cfg, out, data)
        if i:
            trainer.inherit(out / CHECKPOINT)
        while trainer.epoch < until:
            trainer.run_epoch(progress)
    frame = trainer.metrics()
    starts = [s.first_epoch for s in chain]
    owner = [chain[max(k for k, s in enumerate(starts) if s <= e)] for e in frame.epoch]
    frame["segment"] = [s.trial for s in owner]
    for name in chain[-1].settings | {k: None for s in chain for k in s.settings}:
        frame[f"param_{name}"] = [s.settings.get(name) for s in owner]
    write_parquet_atomic(frame, out / RUN_METRICS)
    return frame
