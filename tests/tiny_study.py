"""A tiny digits study for the population tests, and what they check a study's storage and
Parquet with."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

from eqpop.population.definition.spec import StudyConfig, build_study
from eqpop.population.storage.store import open_storage
from eqpop.records import part_files


def tiny_study(tmp_path, **kw) -> StudyConfig:
    """Seconds per trial: a 16-unit MLP, few steps, 3 epochs, probes at epochs 2 and 3."""
    values = dict(
        name="tiny",
        preset="digits-mlp",
        base=dict(
            hidden=[16],
            epochs=3,
            t_free=10,
            t_nudge=5,
            batch_size=64,
            probe_batch=16,
            periods=1,
            steps_per_point=4,
        ),
        space={
            "lr": {"low": 0.02, "high": 0.2, "log": True},
            "method": {"choices": ["classic", "hep"]},
        },
        trials=4,
        actors=2,
        out=tmp_path / "study",
        flush_seconds=0.5,
        probe={"every": 2, "batch": 8, "betas": [0.5], "n_points": [2]},
    )
    return build_study(**{**values, **kw})


def study_command(path, out, address) -> list[str]:
    """``eqpop study`` on a study file, as a separate driver process joining ``address``."""
    cli = [sys.executable, "-m", "eqpop.cli", "study", str(path), "--out", str(out)]
    return [*cli, "--address", address, "--quiet"]


def load(spec):
    study = optuna.load_study(study_name=spec.name, storage=open_storage(spec.storage_url))
    frames = {d: pd.read_parquet(spec.out / d) for d in ("trials", "metrics", "comparisons")}
    return study, frames


def assert_parquet_agrees(study, frames):
    """One trial row per finished trial with the storage's state and value; per trial, metrics
    rows for epochs 1..n without duplicates, n the last epoch the storage heard of."""
    trials = study.get_trials(deepcopy=False)
    rows = frames["trials"].set_index("trial")
    assert rows.index.is_unique
    assert set(rows.index) == {t.number for t in trials if t.state.is_finished()}
    for t in trials:
        if not t.state.is_finished():
            continue
        assert rows.loc[t.number, "state"] == t.state.name
        if t.value is not None:
            assert rows.loc[t.number, "value"] == t.value
        epochs = frames["metrics"].query("trial == @t.number").epoch.tolist()
        assert sorted(epochs) == list(range(1, len(epochs) + 1))
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            assert len(epochs) == t.last_step
            assert dict(t.intermediate_values) == dict(
                frames["metrics"].query("trial == @t.number")[["epoch", "val_error"]].values
            )
    assert not frames["metrics"].duplicated(["trial", "epoch"]).any()


def finished_rows(spec) -> int:
    return len(pd.read_parquet(spec.out / "trials")) if part_files(spec.out / "trials") else 0


def stored_trials(spec) -> list[optuna.trial.FrozenTrial]:
    """The trials as the storage has them now (none before the study exists)."""
    if not Path(spec.storage_url).exists():
        return []
    storage = open_storage(spec.storage_url)
    if spec.name not in optuna.get_all_study_names(storage):
        return []
    return optuna.load_study(study_name=spec.name, storage=storage).trials


def stored_states(spec) -> list[TrialState]:
    return [t.state for t in stored_trials(spec)]


def finished_count(spec) -> int:
    """Trials the storage has heard end (their Parquet rows follow within flush_seconds)."""
    return sum(state.is_finished() for state in stored_states(spec))
