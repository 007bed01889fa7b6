"""The driver's trial table: every trial in flight on this driver (by the actor call it waits
for), every actor's slot (free, busy with a trial, or coming back after a restart), the failures
in a row and why the study must stop. ``move`` is the one function that changes a trial's state
here, as Ray Tune's controller does with its trial statuses; the driver tells Optuna's storage
the same transition beside it, so that both agree."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import optuna
import ray
from optuna.trial import TrialState

from eqpop.config import TrainConfig


@dataclass
class Running:
    """A trial in flight on one actor."""

    trial: optuna.Trial
    actor: int
    cfg: TrainConfig
    params: dict[str, Any] = field(default_factory=dict)  # its settings, by config field
    epoch: int = 0
    last_value: float = math.nan


@dataclass
class Failures:
    """Failed trials in a row and why, so that a study whose trials keep failing stops."""

    limit: int
    in_row: list[str] = field(default_factory=list)
    total: int = 0

    def add(self, state: TrialState, reason: str) -> None:
        if state == TrialState.FAIL:
            self.in_row.append(reason)
            self.total += 1
        else:
            self.in_row.clear()

    @property
    def exceeded(self) -> bool:
        return len(self.in_row) >= self.limit

    def why(self) -> str:
        """The most frequent kind of reason among the failures in a row (a kind is what a
        reason says before its details), with its latest example."""
        kinds = Counter(_kind(r) for r in self.in_row)
        kind, count = kinds.most_common(1)[0]
        example = next(r for r in reversed(self.in_row) if _kind(r) == kind)
        return f"most frequent reason ({count} of {len(self.in_row)}): {example}"


def _kind(reason: str) -> str:
    return reason.split(" (")[0].split(":")[0]


class TrialTable:
    def __init__(self, actors: int, max_failures_in_row: int):
        self.calls: dict[ray.ObjectRef, Running] = {}  # each running trial by its actor's call
        self.free: list[int] = list(range(actors))  # actors with no trial, ready for one
        self.reviving: dict[ray.ObjectRef, int] = {}  # actors pinged while Ray restarts them
        self.failures = Failures(max_failures_in_row)
        self.halt: str | None = None  # why the study must stop now: start nothing more

    def move(
        self,
        run: Running,
        to: TrialState,
        *,
        call: ray.ObjectRef | None = None,
        ping: ray.ObjectRef | None = None,
        reason: str = "",
    ) -> None:
        """Move ``run`` to the state ``to``. RUNNING: ``call`` is its actor's call in flight
        (the start, or one more epoch), and the actor is no longer free. COMPLETE, PRUNED or
        FAIL: the trial leaves the table, its actor is free again or, when its process died,
        waits for ``ping`` to answer; a FAIL adds ``reason`` to the failures in a row, any
        other end closes that row."""
        if to == TrialState.RUNNING:
            if call is None:
                raise ValueError("a running trial needs its actor's call")
            if run.actor in self.free:
                self.free.remove(run.actor)
            self.calls[call] = run
            return
        self.failures.add(to, reason)
        if ping is None:
            self.free.append(run.actor)
        else:
            self.reviving[ping] = run.actor

    def arrived(self, call: ray.ObjectRef) -> Running:
        """The trial whose call has come back, until ``move`` says where it goes next."""
        return self.calls.pop(call)

    def answered(self, ping: ray.ObjectRef, again: ray.ObjectRef | None) -> None:
        """A revived actor's ping came back: it is free, or still restarting (``again``: the
        next ping)."""
        actor = self.reviving.pop(ping)
        if again is None:
            self.free.append(actor)
        else:
            self.reviving[again] = actor

    def pending(self) -> list[ray.ObjectRef]:
        """Every call and ping the driver waits for."""
        return [*self.calls, *self.reviving]
