"""Which driver runs a study: a heartbeat kept in the study's own storage (a user attribute),
so that it works alike for a journal file, SQLite and PostgreSQL, on one machine or many.

A driver that finds another live driver's heartbeat refuses in one line naming it, and touches
nothing; only when the holder is really gone (its process has exited on this host, or its
heartbeat stopped for three beats) does it take the study over and recover the trials the
holder left running.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import optuna

from eqpop.errors import ConfigError

KEY = "eqpop_driver"
#: heartbeats a holder may miss before it counts as gone
MISSED = 3


class StudyBusy(ConfigError):
    """Another live driver runs the study."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    token: str
    started: float
    beat: float

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.started, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return f"pid {self.pid} on {self.host}, started {since}"

    def process_alive(self) -> bool | None:
        """Whether its process still runs, when it ran on this host (None: another host)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's live process
            return True
        return True


class Lease:
    """This driver's claim on one study, renewed every ``every`` seconds while it runs."""

    def __init__(
        self, study: optuna.Study, every: float, sleep: Callable[[float], None] = time.sleep
    ):
        self.study, self.every, self.sleep = study, every, sleep
        now = time.time()
        self.me = Holder(socket.gethostname(), os.getpid(), uuid.uuid4().hex, now, now)
        self.last = 0.0

    def holder(self) -> Holder | None:
        raw = self.study.user_attrs.get(KEY)
        return Holder(**raw) if raw else None

    def _alive(self, other: Holder) -> bool:
        here = other.process_alive()
        if here is not None:
            return here
        deadline = other.beat + MISSED * self.every
        while time.time() < deadline:  # another host: alive while its heartbeat moves
            self.sleep(min(self.every, deadline - time.time()) + 0.05)
            if self.holder() != other:
                return True
        return False

    def _busy(self, other: Holder) -> StudyBusy:
        age = time.time() - other.beat
        return StudyBusy(
            f"study {self.study.study_name!r} is run by another driver ({other.describe()}, "
            f"heartbeat {age:.0f} s ago); let it finish or stop it, then run this again"
        )

    def check(self) -> None:
        """Raise ``StudyBusy`` if another live driver holds the study (writes nothing)."""
        other = self.holder()
        if other is not None and other.token != self.me.token and self._alive(other):
            raise self._busy(other)

    def acquire(self) -> None:
        """Hold the study, or raise ``StudyBusy`` naming the live driver that does."""
        self.check()
        self.beat(force=True)
        self.sleep(min(1.0, self.every / 2))  # two drivers starting at once: the last write wins
        current = self.holder()
        if current is not None and current.token != self.me.token:
            raise self._busy(current)

    def beat(self, force: bool = False) -> None:
        """Renew the heartbeat when it is due (one storage write per ``every`` seconds)."""
        now = time.time()
        if force or now - self.last >= self.every:
            self.study.set_user_attr(KEY, asdict(Holder(**{**asdict(self.me), "beat": now})))
            self.last = now

    def release(self) -> None:
        """Clear the heartbeat on the way out, if it is still ours."""
        current = self.holder()
        if current is not None and current.token == self.me.token:
            self.study.set_user_attr(KEY, None)
