"""The study's storage before a driver touches it: a torn journal record is dropped and kept
aside, a damaged earlier one (unparsable, or parsing but not replaying) refused with the
command that repairs it, and a search space the stored study cannot continue with refused
naming the parameter."""

from __future__ import annotations

import optuna
import pytest
from tiny_study import tiny_study

from eqpop.errors import ConfigError, Damaged
from eqpop.population.execution.preflight import preflight
from eqpop.population.storage.store import TrialStore, damaged_record, open_storage, repair_journal


def _journal(tmp_path, trials: int = 3):
    path = tmp_path / "optuna.journal"
    study = optuna.create_study(study_name="x", storage=open_storage(str(path)))
    study.optimize(lambda t: t.suggest_float("a", 0, 1), n_trials=trials)
    return path


def test_a_torn_last_record_is_dropped_kept_aside_and_the_study_continues(tmp_path):
    path = _journal(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-25])  # the last write cut short, as a power loss leaves it
    note = repair_journal(path)
    assert note and str(path) in note and "torn" in note
    last_newline = whole[:-25].rfind(b"\n") + 1
    assert path.read_bytes() == whole[:last_newline]
    assert (tmp_path / "optuna.journal.torn").read_bytes() == whole[last_newline:-25] + b"\n"
    study = optuna.load_study(study_name="x", storage=open_storage(str(path)))
    study.optimize(lambda t: t.suggest_float("a", 0, 1), n_trials=2)  # appends cleanly
    again = optuna.load_study(study_name="x", storage=open_storage(str(path)))
    assert len(again.trials) == len(study.trials)
    assert repair_journal(path) is None  # a sound journal is left alone


def test_a_damaged_record_before_the_last_is_refused_with_the_repair_command(tmp_path):
    path = _journal(tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:15]  # a torn record a later run appended after
    path.write_bytes(b"\n".join(lines))
    before = path.read_bytes()
    with pytest.raises(Damaged, match=rf"record 3 of \d+ is damaged.*compact --repair {tmp_path}`"):
        repair_journal(path)
    assert path.read_bytes() == before


def test_a_record_that_parses_but_does_not_replay_is_named_too(tmp_path):
    """A key overwritten in place: the journal still parses, Optuna's replay does not."""
    path = _journal(tmp_path)
    lines = path.read_bytes().split(b"\n")
    number = next(k for k, line in enumerate(lines, 1) if b'"trial_id"' in line)
    lines[number - 1] = lines[number - 1].replace(b'"trial_id"', b'"trial_ix"')
    path.write_bytes(b"\n".join(lines))
    assert repair_journal(path) is None  # every record is JSON
    with pytest.raises(Damaged, match=rf"{path}: record {number} of \d+ is damaged \(KeyError"):
        open_storage(str(path))
    assert damaged_record(path)[0] == number


def test_a_changed_space_is_refused_before_anything_is_written(tmp_path):
    spec = tiny_study(tmp_path)
    store = TrialStore(spec, 3)
    trial = store.ask(0)
    spec.draw(trial)
    store.tell(trial.number, optuna.trial.TrialState.PRUNED)
    journal = spec.out / "optuna.journal"
    before = journal.read_bytes()
    space = {**spec.space, "method": {"choices": ["classic", "hep", "rbp"]}}
    changed = tiny_study(tmp_path, space={k: dict(v) for k, v in space.items()})
    with pytest.raises(ConfigError) as err:
        preflight(changed)
    message = str(err.value)
    assert message.startswith("space.method: study 'tiny' was searched over choices")
    assert "['classic', 'hep']" in message and "'rbp'" in message and "--name" in message
    assert journal.read_bytes() == before
    wider = tiny_study(
        tmp_path,
        space={
            **space,
            "method": {"choices": ["classic", "hep"]},
            "lr": {"low": 0.01, "high": 0.5, "log": True},
        },
    )
    assert preflight(wider) == []  # a changed range Optuna continues with
