"""Fan-out backends: how a logged batch of events reaches the members of this process.

The room hands every batch, already written to chat.log, to ``publish``; the
backend calls the ``deliver`` function it was attached to with each batch, in
order. The in-memory backend does so at once. A shared backplane (Redis, Postgres
NOTIFY, ...) for several tracker replicas would implement the same three methods
without the WebSocket adapter changing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from .events import Event

Deliver = Callable[[Sequence[Event]], None]


class FanoutBackend(Protocol):
    """What the room needs from a fan-out backend."""

    def attach(self, deliver: Deliver) -> None:
        """Register the function that hands batches to this process's members."""

    def publish(self, batch: Sequence[Event]) -> None:
        """Send a logged batch to every subscriber, this process included, in order."""

    async def close(self) -> None:
        """Release connections; no batch is delivered afterwards."""


class InMemoryBackend:
    """A single tracker process: publishing is delivering."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    def attach(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def publish(self, batch: Sequence[Event]) -> None:
        if self._deliver is not None:
            self._deliver(batch)

    async def close(self) -> None:
        self._deliver = None
