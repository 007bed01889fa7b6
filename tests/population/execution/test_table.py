"""The driver's trial table: one transition function, checked on every move a study makes.
Calls and pings are the keys Ray would give; the table only keeps them apart."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState

from eqpop.population.execution.table import Running, TrialTable


def run_on(actor: int) -> Running:
    return Running(trial=None, actor=actor, cfg=None)  # the table never reads them


def test_a_trial_runs_epoch_by_epoch_and_frees_its_actor_when_it_ends():
    table = TrialTable(actors=2, max_failures_in_row=3)
    run = run_on(0)
    table.move(run, TrialState.RUNNING, call="start")
    assert table.free == [1] and table.pending() == ["start"]
    assert table.arrived("start") is run and not table.calls
    table.move(run, TrialState.RUNNING, call="epoch 1")  # its actor stays busy
    assert table.free == [1] and table.calls == {"epoch 1": run}
    table.move(table.arrived("epoch 1"), TrialState.COMPLETE)
    assert sorted(table.free) == [0, 1] and not table.pending()


def test_an_actor_that_died_waits_for_its_ping_before_it_takes_a_trial():
    table = TrialTable(actors=1, max_failures_in_row=3)
    table.move(run_on(0), TrialState.RUNNING, call="start")
    table.move(table.arrived("start"), TrialState.FAIL, ping="ping 1", reason="actor died")
    assert not table.free and table.pending() == ["ping 1"]
    table.answered("ping 1", again="ping 2")  # still restarting
    assert not table.free and table.reviving == {"ping 2": 0}
    table.answered("ping 2", again=None)
    assert table.free == [0] and not table.pending()


def test_failures_in_a_row_count_until_a_trial_ends_otherwise():
    table = TrialTable(actors=1, max_failures_in_row=2)
    for reason in ("diverged: epoch 1", "diverged: epoch 2"):
        table.move(run_on(0), TrialState.RUNNING, call=reason)
        table.move(table.arrived(reason), TrialState.FAIL, reason=reason)
    assert table.failures.exceeded and table.failures.total == 2
    assert table.failures.why() == "most frequent reason (2 of 2): diverged: epoch 2"
    table.move(run_on(0), TrialState.RUNNING, call="c")
    table.move(table.arrived("c"), TrialState.PRUNED)
    assert not table.failures.exceeded and table.failures.total == 2


def test_a_running_trial_needs_the_call_it_waits_for():
    with pytest.raises(ValueError, match="call"):
        TrialTable(actors=1, max_failures_in_row=1).move(run_on(0), TrialState.RUNNING)
