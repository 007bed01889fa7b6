"""What a study run checks before Ray starts, writing nothing (a torn last journal record
excepted, which is dropped and kept aside): the storage opens and replays, no other live driver
runs the study, the search space is one the stored study can go on with, every Parquet part's
footer reads, the Parquet holds no trial the storage does not, and the data every trial will
train on load and pass their checks. Each failure is one line naming what and the way out.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from pathlib import Path

import optuna
import pyarrow.parquet as pq

from eqpop.data import load_dataset
from eqpop.errors import Damaged
from eqpop.population.definition.spec import StudyConfig
from eqpop.population.storage.lease import Lease
from eqpop.population.storage.store import check_space, stored_study
from eqpop.records import DATASETS, TRIALS, damaged_parts, mask_password, part_files

Say = Callable[[str], None]


def preflight(spec: StudyConfig, say: Say | None = None) -> list[str]:
    """Run every check; returns what was repaired (a torn record dropped)."""
    study, notes = stored_study(spec.storage_url, spec.name)
    if study is not None:
        Lease(study, spec.heartbeat_seconds).check()  # before Ray starts for nothing
        check_space(study, spec)
    out = Path(spec.out)
    check_parts(out)
    if study is not None:
        check_agreement(out, study, mask_password(spec.storage_url))
    check_data(spec, say)
    return notes


def check_parts(folder: Path) -> None:
    """Every part of the study's datasets has a footer that reads."""
    for dataset in DATASETS:
        damaged = damaged_parts(folder / dataset)
        if damaged:
            (part, why), more = next(iter(damaged.items())), len(damaged) - 1
            raise Damaged.part(part, why, folder, f" (and {more} more)" if more else "")


def _column(folder: Path, column: str) -> list:
    parts = part_files(folder)
    return pq.read_table(parts, columns=[column]).column(column).to_pylist() if parts else []


def disagreements(folder: Path, study: optuna.Study) -> tuple[set[int], set[int]]:
    """Trials the Parquet holds that the storage does not (a journal cut back to its sound
    records), and trials whose row says another state than the storage (one such cut left
    running): what ``eqpop compact --repair`` sets aside."""
    stored = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    written = {n for dataset in DATASETS for n in _column(folder / dataset, "trial")}
    rows = zip(_column(folder / TRIALS, "trial"), _column(folder / TRIALS, "state"))
    return written - set(stored), {n for n, state in rows if stored.get(n, state) != state}


def check_agreement(folder: Path, study: optuna.Study, shown: str) -> None:
    unknown, other = disagreements(folder, study)
    if unknown or other:
        listed = ", ".join(map(str, sorted(unknown | other)[:8]))
        raise Damaged(
            f"{folder}: the Parquet holds trials that {shown} does not (trials {listed}); "
            f"`eqpop compact --repair {folder}` sets their rows and run folders aside"
        )


def check_data(spec: StudyConfig, say: Say | None = None) -> None:
    """Load every data set the study's trials can train on, with the checks (and one-line
    errors) of ``eqpop train``, then let it go: the actors load their own copy."""
    base = spec.train_config({})
    names = spec.space["dataset"].choices if "dataset" in spec.space else [base.dataset]
    dirs = spec.space["data_dir"].choices if "data_dir" in spec.space else [base.data_dir]
    for name, where in product(names, dirs):
        if say is not None and where is not None:
            say(f"checking the {name} data in {where}")
        load_dataset(str(name), where).prepared(base.inputs, base.train_subset)
