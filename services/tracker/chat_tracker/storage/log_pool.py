"""A few descriptors for many logs: the rooms' and conversations' chat.log files, open only while written."""

from __future__ import annotations

from typing import Protocol


class Restable(Protocol):
    def rest(self) -> None:
        """Close the file until the next write opens it again."""


class LogPool:
    """At most ``size`` logs hold an open descriptor; writing to another closes the one written longest ago.

    A tracker may have thousands of rooms and conversations, each its own chat.log, and
    every open file is a descriptor taken from the sockets' budget. Most rooms are quiet
    at any moment: only the ``size`` written most recently stay open (``RotatingLog.rest``
    closes the others, and their next write opens them again).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._open: dict[int, Restable] = {}  # id -> log, oldest write first

    def writing(self, chat_log: Restable) -> None:
        key = id(chat_log)
        if self._open.pop(key, None) is None:
            while len(self._open) >= self.size:
                oldest = next(iter(self._open))
                self._open.pop(oldest).rest()
        self._open[key] = chat_log

    def forget(self, chat_log: Restable) -> None:
        self._open.pop(id(chat_log), None)
