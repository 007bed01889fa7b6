"""A study's Optuna storage as the driver uses it: every call guarded against the storage going
away mid-study.

A database connection that drops (the server restarted, a network blip) is retried a few times
with growing pauses; a storage still gone after that, or a journal file that is no longer the
one the study opened (its folder or mount vanished: Optuna would quietly start a new, empty
journal in its place), raises ``StorageLost``: one line naming the storage and the way on, and
every later call fails at once, so that the driver stops without waiting again. Journal writes
are never retried: a retried append could glue a record onto a half-written one.
"""

from __future__ import annotations

import abc
import errno
import inspect
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from optuna.storages import BaseStorage

from eqpop.errors import StorageLost

#: pauses (seconds) between attempts at a call whose database connection failed
PAUSES = (0.5, 1.0, 2.0, 4.0)
#: errors of a full or read-only disk: the driver's "make room" line, not a lost storage
_UNWRITABLE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _connection_error(err: BaseException) -> BaseException | None:
    """The database connection error behind ``err`` (Optuna wraps SQLAlchemy's), if any."""
    from sqlalchemy import exc

    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, exc.OperationalError | exc.InterfaceError | exc.DisconnectionError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class _NoFallbackNote(logging.Filter):
    """Drops Optuna's "Caught an error from sqlalchemy ... Falling back" warning: on a lost
    connection it prints the driver's error over several lines and blames a query-size limit,
    before the retry below either succeeds or says what happened in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Caught an error from sqlalchemy")


_QUIET = _NoFallbackNote()


def _first_line(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err  # SQLAlchemy's wrapper holds the driver's error
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0]}" if text else type(orig).__name__


class GuardedStorage(BaseStorage):
    """Delegates every storage call to ``inner``; see the module docstring."""

    def __init__(
        self,
        inner: BaseStorage,
        shown: str,
        journal: Path | None = None,
        pauses: Sequence[float] = PAUSES,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.inner, self.shown, self.journal = inner, shown, journal
        self.pauses, self.sleep = tuple(pauses), sleep
        self.identity = self._identity() if journal is not None else None
        self.lost: StorageLost | None = None
        if journal is None:
            logging.getLogger("optuna.storages._rdb.storage").addFilter(_QUIET)  # once: a set

    def _identity(self) -> tuple[int, int]:
        stat = os.stat(self.journal)
        return stat.st_dev, stat.st_ino

    def _lose(self, why: str) -> StorageLost:
        self.lost = StorageLost(
            f"storage {self.shown}: {why}; once it is reachable again, run the same command "
            "again (the study continues where it stopped)"
        )
        return self.lost

    def _check_journal(self) -> None:
        try:
            same = self._identity() == self.identity
        except OSError as err:
            raise self._lose(f"the journal file is gone ({err.strerror or err})") from None
        if not same:
            raise self._lose("the journal file was replaced by another one")

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.lost is not None:
            raise self.lost
        if self.journal is not None:
            self._check_journal()
            try:
                return getattr(self.inner, name)(*args, **kwargs)
            except OSError as err:
                if err.errno in _UNWRITABLE:
                    raise
                raise self._lose(f"cannot reach the journal ({err.strerror or err})") from None
        for pause in (*self.pauses, None):
            try:
                return getattr(self.inner, name)(*args, **kwargs)
            except Exception as err:
                lost = _connection_error(err)
                if lost is None:
                    raise
                if pause is None:
                    tries = len(self.pauses) + 1
                    why = f"lost the connection ({_first_line(lost)}; {tries} tries)"
                    raise self._lose(why) from None
                self.sleep(pause)
        raise AssertionError("unreachable")


def _delegate(name: str) -> Callable[..., Any]:
    def method(self: GuardedStorage, *args: Any, **kwargs: Any) -> Any:
        return self.call(name, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


for _name, _ in inspect.getmembers(BaseStorage, inspect.isfunction):
    if not _name.startswith("_"):
        setattr(GuardedStorage, _name, _delegate(_name))
abc.update_abstractmethods(GuardedStorage)
