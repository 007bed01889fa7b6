"""Ctrl-C (SIGINT) and SIGTERM (``timeout``, a batch scheduler, a preempted node) as a request to
stop cleanly, and a second one as "stop now".

The first signal only takes note, so that it never lands between two writes that belong
together (a trial told to Optuna but not to the Parquet): the work checks the request at its
safe points (``check``) and lets the signal cut short only the waits it marks
(``interruptible``). The second signal raises at once, wherever the work is: every output is
written atomically, so even then nothing is half-written.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A stop asked by a signal. A ``BaseException``, as ``KeyboardInterrupt``: no
    ``except Exception`` on the way up takes it for an error of the work."""

    def __init__(self, signum: int, at_once: bool = False):
        super().__init__(signum, at_once)
        self.signum, self.at_once = signum, at_once

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class StopRequest:
    """Holds SIGINT and SIGTERM while entered (the handlers before are put back on exit)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._cut_short = False
        self._before: dict[int, Any] = {}

    def install(self) -> None:
        """Take both signals (again: ``ray.init`` sets a SIGTERM handler of its own)."""
        for signum in SIGNALS:
            before = signal.signal(signum, self._handle)
            self._before.setdefault(signum, before)

    def __enter__(self) -> StopRequest:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, before in self._before.items():
            signal.signal(signum, before)
        self._before.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise Interrupted(signum, at_once=True)
        self.signum = signum
        if self._cut_short:
            raise Interrupted(signum)

    def check(self) -> None:
        """Raise ``Interrupted`` if a stop was asked (a safe point of the work)."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A stretch of work (a blocking wait, a training epoch) that the first signal may cut
        short: nothing in it must be left half-done."""
        self._cut_short = True
        try:
            self.check()
            yield
        finally:
            self._cut_short = False
