"""The rule that decides a trial's fate, on typed outcomes, without Ray or an Optuna study."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState
from tiny_study import tiny_study

from eqpop.dynamics import Status
from eqpop.population.execution.outcome import (
    BrokenData,
    Lost,
    Progress,
    Raised,
    Started,
    Trained,
    Unwritable,
    decide,
)


def trained(status=Status.OK, free_residual: float | None = 1e-3, reason="") -> Trained:
    record = None if status == Status.NON_FINITE else {"epoch": 1, "val_error": 0.5}
    return Trained(record, [], 1.0, status, free_residual, reason)


def progress(epoch=1, epochs=3, prune=False) -> Progress:
    return Progress(epoch, epochs, lambda: prune)


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return tiny_study(tmp_path_factory.mktemp("s"), max_residual=0.5)


@pytest.mark.parametrize("outcome, trial, state, reason, retry", [
    (trained(), progress(), TrialState.RUNNING, "", False),
    (trained(), progress(epoch=3), TrialState.COMPLETE, "", False),
    (trained(), progress(prune=True), TrialState.PRUNED, "", False),
    (trained(), progress(epoch=3, prune=True), TrialState.COMPLETE, "", False),
    # no free phase (hep_continuous): nothing to compare with max_residual, the trial goes on
    (trained(free_residual=None), progress(), TrialState.RUNNING, "", False),
    (trained(Status.MAX_STEPS), progress(), TrialState.RUNNING, "", False),
    (trained(Status.GREW), progress(), TrialState.RUNNING, "", False),
    (trained(free_residual=0.7), progress(), TrialState.FAIL, "free phase did not converge", False),
    (trained(Status.NON_FINITE, None, "epoch 1: non-finite gradient"), progress(),
     TrialState.FAIL, "diverged: epoch 1: non-finite gradient", False),
    (Lost("RayActorError"), progress(), TrialState.FAIL, "actor died (RayActorError)", True),
    (Raised("RuntimeError: boom"), progress(), TrialState.FAIL, "RuntimeError: boom", False),
    # a started trial is never pruned (no new epoch); resumed at its end it is complete
    (Started(1, []), progress(epoch=0, prune=True), TrialState.RUNNING, "", False),
    (Started(1, [{}, {}, {}]), progress(epoch=3), TrialState.COMPLETE, "", False),
])  # fmt: skip
def test_decide(spec, outcome, trial, state, reason, retry):
    decision = decide(outcome, trial, spec)
    assert decision.state is state and decision.reason.startswith(reason)
    assert decision.retry is retry and not decision.stop_study


def test_a_trial_that_cannot_write_stops_the_study_and_is_retried_later(spec):
    decision = decide(Unwritable("cannot write x: No space left"), progress(), spec)
    assert decision.state is TrialState.FAIL and decision.reason == "cannot write x: No space left"
    assert decision.retry and decision.stop_study


def test_data_an_actor_cannot_read_stop_the_study_and_the_trial_is_retried_later(spec):
    """Every trial would fail the same way (before: the driver crashed with a traceback)."""
    decision = decide(BrokenData("/data/train_data_batch_1.npz: missing"), progress(), spec)
    assert decision.state is TrialState.FAIL and decision.retry
    assert decision.stop_study.startswith("/data/train_data_batch_1.npz: missing; fix the data")
