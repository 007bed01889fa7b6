"""What a call to a trial's actor comes back with, as types, and the one rule that decides the
trial's fate from it (``decide``): a pure function, tested without Ray or an Optuna study (the
fate is Optuna's own ``TrialState``; RUNNING: train another epoch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optuna.trial import TrialState

from eqpop.dynamics import Status
from eqpop.population.definition.spec import StudyConfig


@dataclass(frozen=True)
class Started:
    """A trial loaded on an actor; ``records``: the epochs its run folder's checkpoint holds
    already (a retried trial resumes there)."""

    pid: int
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class Trained:
    """One more epoch. ``status`` is the worst of its phases; ``record`` is None when the
    epoch diverged (``reason`` says how). ``free_residual`` is the last batch's free phase,
    None for a method without one."""

    record: dict[str, Any] | None
    comparisons: list[dict[str, Any]]
    busy: float  # seconds the actor worked on it
    status: Status
    free_residual: float | None
    reason: str = ""


@dataclass(frozen=True)
class Lost:
    """The actor died, or Ray restarted it blank under its trial."""

    why: str


@dataclass(frozen=True)
class Raised:
    """The trial raised an error (its first line)."""

    message: str


@dataclass(frozen=True)
class Unwritable:
    """The trial's results could not be written (a full disk, a read-only ``--out``): the
    study stops, and the trial runs again from its last checkpoint when the command is rerun."""

    message: str


@dataclass(frozen=True)
class BrokenData:
    """The trial's data set could not be read (a file missing or damaged on the actor's node):
    every trial would fail the same way, so the study stops, and the trial runs again once the
    data are fixed and the command is rerun."""

    message: str


Outcome = Started | Trained | Lost | Raised | Unwritable | BrokenData


def unwritable(why: object) -> str:
    """The line a study stops with when it cannot write (a full disk, a read-only folder)."""
    return f"{why}; make room (or make --out writable) and run the same command again"


@dataclass(frozen=True)
class Decision:
    state: TrialState  # RUNNING (another epoch), COMPLETE, PRUNED or FAIL
    reason: str = ""  # why it failed
    retry: bool = False  # its actor is gone: run it again elsewhere (retry policy)
    stop_study: str = ""  # nothing more can run until the user acts: the line saying so


@dataclass(frozen=True)
class Progress:
    """Where a trial stands once the outcome's epochs are reported."""

    epoch: int
    epochs: int
    should_prune: Callable[[], bool]  # asks the pruner (only after a trained epoch)


def decide(outcome: Outcome, trial: Progress, spec: StudyConfig) -> Decision:
    """A lost actor fails the trial and retries it, as do unwritable results and unreadable
    data, which also stop the study; an error, a non-finite epoch or a free
    phase left further than ``spec.max_residual`` from its fixed point fails it; then it is
    complete after its last epoch, pruned if the pruner says so, else it goes on."""
    if isinstance(outcome, Lost):
        return Decision(TrialState.FAIL, f"actor died ({outcome.why})", retry=True)
    if isinstance(outcome, Raised):
        return Decision(TrialState.FAIL, outcome.message)
    if isinstance(outcome, Unwritable):
        return Decision(
            TrialState.FAIL, outcome.message, retry=True, stop_study=unwritable(outcome.message)
        )
    if isinstance(outcome, BrokenData):
        why = f"{outcome.message}; fix the data (or --data-dir) and run the same command again"
        return Decision(TrialState.FAIL, outcome.message, retry=True, stop_study=why)
    if isinstance(outcome, Trained):
        if outcome.status == Status.NON_FINITE:
            return Decision(TrialState.FAIL, f"diverged: {outcome.reason}")
        residual = outcome.free_residual
        if residual is not None and residual > spec.max_residual:
            why = f"free phase did not converge (residual {residual:.3g} > {spec.max_residual})"
            return Decision(TrialState.FAIL, why)
    if trial.epoch >= trial.epochs:
        return Decision(TrialState.COMPLETE)
    if isinstance(outcome, Trained) and trial.should_prune():
        return Decision(TrialState.PRUNED)
    return Decision(TrialState.RUNNING)
