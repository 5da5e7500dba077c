"""A member's outgoing queue: bounded, so one slow reader never holds up the room.

The room hands frames over without awaiting anything. With a ``Wire`` (our uvicorn
protocol) frames are pre-built bytes: when nothing is queued and the socket is
keeping up they are written at once, with no task switch; otherwise they wait here
and the member's writer task drains them when the socket is ready again. Without a
wire they are text for ASGI ``send`` and always go through the writer task.

A member that falls more than ``limit`` frames behind (beyond what its socket
buffer already holds) overflows: its queue is dropped and ``on_overflow`` decides
its fate (the tracker disconnects it with close code 4007).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .wire import text_frame


class WireLike(Protocol):
    """What the outbox needs of a direct socket (``wire.Wire``; fakes in tests)."""

    def ready(self) -> bool: ...

    def write(self, frames: bytes) -> None: ...


@dataclass(frozen=True)
class CloseRequest:
    """Close the connection with ``code`` once the frames before it are sent."""

    code: int
    reason: str = ""


class Outbox:
    """Frames waiting to be written to one member, oldest first.

    Wired, it queues complete WebSocket frames (bytes); otherwise texts for ASGI.
    Each kind has its own queue and its own ``take``, so no frame is ever of the
    wrong kind.
    """

    __slots__ = (
        "_close",
        "_count",
        "_emptied",
        "_texts",
        "_waiter",
        "_wire_frames",
        "limit",
        "on_overflow",
        "overflowed",
        "wire",
    )

    def __init__(self, limit: int, on_overflow: Callable[[], None] | None = None, wire: WireLike | None = None) -> None:
        self.limit = limit
        self.wire = wire
        self._texts: deque[str] = deque()  # not wired: texts for ASGI send
        self._wire_frames: deque[bytes] = deque()  # wired: pre-built frames, possibly several joined
        self._count = 0  # frames queued (a wired item may hold several joined frames)
        self._waiter: asyncio.Future[None] | None = None
        self._emptied: asyncio.Future[None] | None = None
        self._close: CloseRequest | None = None
        self.overflowed = False
        self.on_overflow = on_overflow

    def __len__(self) -> int:
        return self._count

    @property
    def wired(self) -> bool:
        """True when frames must be pre-built bytes (``wire.text_frame``)."""
        return self.wire is not None

    @property
    def closing(self) -> bool:
        return self._close is not None or self.overflowed

    def push(self, text: str) -> None:
        """Queue one text addressed to this member alone (a prompt, an error, an answer)."""
        self.push_texts([text])

    def push_texts(self, texts: Sequence[str]) -> None:
        """Queue texts, framing them here when wired; ignored once closing."""
        if self.closing or not texts:
            return
        if self.wire is not None:
            self.push_wire(b"".join([text_frame(text) for text in texts]), len(texts))
            return
        self._texts.extend(texts)
        self._count += len(texts)
        self._after_queueing()

    push_many = push_texts

    def push_wire(self, data: bytes, count: int) -> None:
        """Queue ``count`` pre-built frames already joined into ``data`` (wired outboxes only)."""
        if self.closing:
            return
        wire = self.wire
        if wire is not None and not self._wire_frames and wire.ready():
            wire.write(data)
            return
        self._wire_frames.append(data)
        self._count += count
        self._after_queueing()

    def _after_queueing(self) -> None:
        if self._count > self.limit:
            self._overflow()
        else:
            self._wake()

    def _overflow(self) -> None:
        self.overflowed = True
        self._texts.clear()
        self._wire_frames.clear()
        self._count = 0
        self._wake()
        if self.on_overflow is not None:
            self.on_overflow()

    def close(self, code: int, reason: str = "", final_frames: Sequence[str] = ()) -> None:
        """Send ``final_frames`` after what is queued, then close with ``code``. First call wins."""
        if self.closing:
            return
        if self.wire is not None:
            self._wire_frames.extend(text_frame(text) for text in final_frames)
        else:
            self._texts.extend(final_frames)
        self._count += len(final_frames)
        self._close = CloseRequest(code, reason)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.closing:
            self._taken()

    def _taken(self) -> None:
        emptied = self._emptied
        if emptied is not None and not emptied.done():
            emptied.set_result(None)

    async def emptied(self) -> None:
        """Wait until the writer has taken every queued frame, or the outbox is closing."""
        while self._count and not self.closing:
            self._emptied = asyncio.get_running_loop().create_future()
            try:
                await self._emptied
            finally:
                self._emptied = None

    async def wait(self) -> None:
        """Wait until there are frames, a close request, or an overflow."""
        while not self._texts and not self._wire_frames and self._close is None and not self.overflowed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def take_now(self) -> tuple[list[str], CloseRequest | None]:
        """All queued texts (not wired), and the close request once they are the last. Never waits.

        After an overflow this returns ``([], None)``: the owner must stop.
        """
        texts = list(self._texts)
        self._texts.clear()
        self._count = 0
        self._taken()
        return texts, self._close

    def take_wire_now(self) -> tuple[bytes, CloseRequest | None]:
        """All queued frames joined (wired), and the close request once they are the last. Never waits."""
        data = b"".join(self._wire_frames)
        self._wire_frames.clear()
        self._count = 0
        self._taken()
        return data, self._close

    async def take(self) -> tuple[list[str], CloseRequest | None]:
        """``wait`` then ``take_now``."""
        await self.wait()
        return self.take_now()
