"""A journal's memory of its newest events (``--history-size`` of them): a list while short, a ring once full.

Most rooms are small and quiet: a room of five holds a handful of events, and a
``deque`` would give each of them a 64-slot block (about 600 bytes) from the start.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from chat_tracker.core.events import Event


class RecentEvents:
    """The newest ``size`` events, consecutive seqs, oldest first (``events``: what ``Journal.recent`` shows)."""

    __slots__ = ("events", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.events: list[Event] | deque[Event] = []

    def extend(self, events: Iterable[Event]) -> None:
        kept = self.events
        kept.extend(events)
        if type(kept) is list and len(kept) > self.size:
            self.events = deque(kept, maxlen=self.size)  # full: from now on the oldest drops out as one comes in

    def clear(self) -> None:
        self.events = []
