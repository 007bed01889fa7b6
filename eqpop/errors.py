"""One-line errors: whatever a user typed, a bad input is reported on one line."""

from __future__ import annotations

import re


def printable(text: str) -> str:
    """One line whatever a user typed: control characters shown escaped (``\\n``)."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], text)


class ConfigError(ValueError):
    """A bad config value: the message is one line naming the field (whatever was typed)."""

    def __init__(self, message: str):
        super().__init__(printable(message))
