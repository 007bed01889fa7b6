"""One-line errors: whatever a user typed, a bad input is reported on one line."""

from __future__ import annotations

import re


def printable(text: str) -> str:
    """One line whatever a user typed: control characters shown escaped (``\\n``)."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], text)


class UserError(ValueError):
    """A mistake of the user's (a config value, missing or wrong data, a storage that is not
    there, a study another driver holds, a damaged file to repair): the command line reports it
    as one line and exit 2. Every other exception is a fault of eqpop or a library and keeps its
    traceback (exit 1). A ``ValueError`` for old callers that catch that."""

    def __init__(self, message: str):
        super().__init__(printable(message))


class WriteFailed(OSError):
    """A result could not be written (a full disk, a read-only folder): one line naming the
    path. Nothing half-written is left (``eqpop.io.atomic_write``), so the same command run
    again once the disk has room continues where it stopped."""

    def __init__(self, path: object, why: OSError | str):
        text = why if isinstance(why, str) else f"cannot write {path}: {why.strerror or why}"
        super().__init__(getattr(why, "errno", None), printable(text))
        self.path = path

    def __reduce__(self):  # crosses process boundaries (Ray) as itself
        return (WriteFailed, (self.path, str(self)))

    def __str__(self) -> str:
        return str(self.args[1])


class ConfigError(UserError):
    """A bad config value: the message is one line naming the field (whatever was typed)."""


class StorageLost(OSError):
    """The study's Optuna storage went away mid-study (a database stopped, a journal's mount
    gone) and did not come back within a few retries: one line naming it (password masked) and
    the way on. Everything written so far is consistent; the same command continues the study
    once the storage is back."""

    def __init__(self, message: str):
        super().__init__(None, printable(message))

    def __reduce__(self):
        return (StorageLost, (str(self),))

    def __str__(self) -> str:
        return str(self.args[1])


class Damaged(UserError):
    """A file of a study (a Parquet part, a journal record) cannot be read: one line naming it
    and the way out (``eqpop compact --repair``), before anything is written or started."""

    @classmethod
    def part(cls, path: object, why: str, study: object, also: str = "") -> Damaged:
        """A Parquet part of the study folder ``study`` whose footer does not read."""
        return cls(
            f"{path}: damaged Parquet part ({why}){also}; `eqpop compact --repair {study}` sets "
            "it aside, keeping every row that can still be read"
        )
