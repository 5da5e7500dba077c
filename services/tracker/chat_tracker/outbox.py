"""A member's outgoing queue: bounded, so one slow reader never holds up the room.

The room appends frames without awaiting anything; the member's own writer task
drains them onto its socket. A member that falls more than ``limit`` frames behind
overflows: its queue is dropped and the ``on_overflow`` callback decides its fate
(the tracker disconnects it with close code 4007).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CloseRequest:
    """Close the connection with ``code`` once the frames before it are sent."""

    code: int
    reason: str = ""


class Outbox:
    """Frames waiting to be written to one member, oldest first."""

    __slots__ = ("limit", "_frames", "_waiter", "_close", "overflowed", "on_overflow")

    def __init__(self, limit: int, on_overflow: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self._frames: deque[str] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._close: CloseRequest | None = None
        self.overflowed = False
        self.on_overflow = on_overflow

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def closing(self) -> bool:
        return self._close is not None or self.overflowed

    def push(self, frame: str) -> None:
        """Queue one frame; ignored once closing."""
        if self.closing:
            return
        self._frames.append(frame)
        self._after_push()

    def push_many(self, frames: list[str]) -> None:
        """Queue several frames with a single wake-up of the writer."""
        if self.closing or not frames:
            return
        self._frames.extend(frames)
        self._after_push()

    def _after_push(self) -> None:
        if len(self._frames) > self.limit:
            self._overflow()
        else:
            self._wake()

    def _overflow(self) -> None:
        self.overflowed = True
        self._frames.clear()
        self._wake()
        if self.on_overflow is not None:
            self.on_overflow()

    def close(self, code: int, reason: str = "", final_frames: tuple[str, ...] = ()) -> None:
        """Send ``final_frames`` after what is queued, then close with ``code``. First call wins."""
        if self.closing:
            return
        self._frames.extend(final_frames)
        self._close = CloseRequest(code, reason)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self) -> tuple[list[str], CloseRequest | None]:
        """Wait for frames; return all queued ones, and the close request once they are the last.

        After an overflow this returns ``([], None)`` forever: the owner must stop.
        """
        while not self._frames and self._close is None and not self.overflowed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        frames = list(self._frames)
        self._frames.clear()
        return frames, self._close
