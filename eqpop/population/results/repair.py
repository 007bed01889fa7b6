"""``eqpop compact [--repair]``: a study folder made readable and consistent again, then
compacted. Nothing is deleted: what cannot be kept goes to ``<study>/quarantine/<time>/``.

The repair, in order:

1. A journal record Optuna cannot read or replay: the records before it are kept, it and those
   after it go to ``<journal>.damaged`` (the trials they started are gone from the storage).
2. A Parquet part whose footer or row groups do not read: the row groups that still read stay
   (as a new part), the part itself goes aside; how many rows were lost is said.
3. What the dropped records had written: the Parquet rows of trials the storage no longer has
   (and trial rows whose state it no longer agrees with) and their run folders go aside, so that
   a trial number Optuna hands out again never lands on an old trial's rows or checkpoint.
4. The trial rows the storage has and the Parquet lacks are written again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pyarrow as pa
import pyarrow.parquet as pq

from eqpop.io import atomic_write
from eqpop.population.definition.spec import StudyConfig
from eqpop.population.execution.preflight import disagreements
from eqpop.population.results.dataset import Dataset
from eqpop.population.results.sink import Sink
from eqpop.population.storage.store import DONE, damaged_record, drop_records, repair_journal
from eqpop.records import COMPARISONS, DATASETS, METRICS, RUNS, TRIALS, part_files, unreadable

QUARANTINE = "quarantine"


class Aside:
    """The quarantine folder of one repair, made on first use."""

    def __init__(self, folder: Path):
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.root = folder / QUARANTINE / stamp

    def move(self, path: Path, *where: str) -> Path:
        dest = self.root.joinpath(*where, path.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
        return dest


def repair_journal_of(url: str) -> list[str]:
    """Step 1 (a journal storage only), then a torn last record dropped as at every start."""
    if "://" in url:
        return []
    path, said = Path(url), []
    found = damaged_record(path) if path.is_file() else None
    if found is not None:
        record, total, why = found
        dropped = drop_records(path, record)
        said.append(
            f"{path}: record {record} of {total} was damaged ({why}): kept the {record - 1} "
            f"before it, set {dropped} aside in {path}.damaged"
        )
    note = repair_journal(path)
    return [*said, note] if note else said


def salvage(part: Path) -> tuple[pa.Table | None, int | None]:
    """The row groups of a damaged part that still read, and how many rows it held (None, None
    when its footer is gone: nothing can be located in it)."""
    try:
        reader = pq.ParquetFile(part)
    except Exception:  # the footer does not read
        return None, None
    groups = []
    for k in range(reader.num_row_groups):
        try:
            groups.append(reader.read_row_group(k))
        except Exception:  # a damaged page: this group is lost
            continue
    table = pa.concat_tables(groups) if groups else None
    return table, reader.metadata.num_rows


def _damage(part: Path) -> str | None:
    """Why a part does not read whole (its footer, or a page: a start's check reads only the
    footer), or None."""
    why = unreadable(part)
    if why is not None:
        return why
    try:
        pq.read_table(part)
    except Exception as err:  # a damaged page
        return f"{type(err).__name__}: {err}".splitlines()[0]
    return None


def _set_aside_parts(folder: Path, aside: Aside) -> Iterator[str]:
    """Step 2."""
    for dataset in DATASETS:
        damaged = {part: _damage(part) for part in part_files(folder / dataset)}
        for part, why in damaged.items():
            if why is None:
                continue
            table, total = salvage(part)
            kept = table.num_rows if table is not None else 0
            if table is not None and kept:
                live = Dataset(folder, dataset).folder() / f"{part.stem}-salvaged.parquet"
                atomic_write(live, lambda tmp, t=table: pq.write_table(t, tmp))
            dest = aside.move(part, dataset)
            lost = (
                "its footer is gone: none of its rows could be read"
                if total is None
                else f"kept {kept} of its {total} rows"
            )
            again = "; the storage's trial rows are written again" if dataset == TRIALS else ""
            yield f"{part}: damaged ({why}); set aside in {dest}; {lost}{again}"


def _set_aside_runs(folder: Path, study: optuna.Study, aside: Aside) -> Iterator[str]:
    """Step 3's run folders: those no trial in the storage resumes from."""
    runs = folder / RUNS
    if not runs.is_dir():
        return
    used = {int(t.user_attrs.get("run", t.number)) for t in study.get_trials(deepcopy=False)}
    for run in sorted(runs.iterdir()):
        if run.name.isdigit() and int(run.name) not in used:
            dest = aside.move(run, RUNS)
            yield f"{run}: no trial of the storage runs in it; set aside in {dest}"


def _spec(folder: Path, described: dict[str, Any], study: optuna.Study) -> StudyConfig:
    """The study as its ``study.json`` describes it, writing to ``folder``."""
    fields = {k: v for k, v in described.items() if k in StudyConfig.model_fields}
    return StudyConfig(**{**fields, "out": folder, "storage": None, "name": study.study_name})


def compact_study(
    folder: Path,
    study: optuna.Study,
    described: dict[str, Any],
    repair: bool,
    beat: Callable[[], None],
) -> list[str]:
    """Steps 2-4 under ``repair``, then every dataset compacted; what was done, a line each."""
    said: list[str] = []
    drop: dict[str, set[int]] = {}
    if repair:
        aside = Aside(folder)
        said += _set_aside_parts(folder, aside)
        unknown, other = disagreements(folder, study)
        drop = {TRIALS: unknown | other, METRICS: unknown, COMPARISONS: unknown}
        said += _set_aside_runs(folder, study, aside)
        for dataset, trials in drop.items():
            dropped = Dataset(folder, dataset).drop_trials(trials, aside.root / dataset)
            if dropped:
                listed = ", ".join(map(str, sorted(trials)))
                said.append(
                    f"{folder / dataset}: {dropped} rows of trials {listed} set aside in "
                    f"{aside.root / dataset}"
                )
        spec = _spec(folder, described, study)
        Sink(spec, spec.train_config({}), spec.param_types()).missing_trials(
            study.get_trials(deepcopy=False, states=DONE)
        )
    for dataset in DATASETS:
        before, after = Dataset(folder, dataset).compact()
        said.append(f"{folder / dataset}: {before} files -> {after}")
        beat()
    return said
