"""A member's outgoing queue: bounded, so one slow reader never holds up the room.

The room hands frames over without awaiting anything. With a ``Wire`` (``transport/wire.py``)
frames are pre-built bytes, written at once when nothing is queued and the socket keeps up, else
drained by the adapter once it is ready again. Without one (per-message deflate) they are texts,
handed to the adapter through ``on_wake``.

With a ``Coalescer`` (``--coalesce-ms``) coalescing is adaptive: a frame for a quiet member goes out
at once and opens a window (one timer for the whole tracker); the frames that follow within it are
held - on the room's ride (``core/ride.py``) when they are its shared frames, where a rider that got
frames stays on for the next window while frames keep coming - and written together in one
``write(2)`` at its end. The window is as long as holding pays (``core/coalescer.py``). Order is
untouched: held frames are the head of the same queue the adapter drains.

A member that falls more than ``limit`` frames behind (beyond what its socket buffer holds)
overflows: its queue is dropped and ``overflowed`` says so, data the room reads once the batch it
was delivering is out (or at the member's next request) and then drops the member as too slow;
``on_overflow`` tells the adapter, which closes the connection with 4007. Nothing here calls back
into the room in the middle of its delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from chat_tracker.core.coalescer import Coalescer
from chat_tracker.core.frames import text_frame
from chat_tracker.core.ride import Ride

# Joins and leaves parked for the notices' window (``Coalescer.park``) are written at once from this many:
# a write then carries enough of them, and a member's parked frames stay few however fast people arrive.
PARKED_AT_MOST = 64


class WireLike(Protocol):
    """What the outbox needs of a direct socket (the ``/ws`` adapter in ``transport/``; fakes in tests)."""

    def ready(self) -> bool: ...

    def write(self, frames: bytes) -> None: ...


@dataclass(frozen=True)
class CloseRequest:
    """Close the connection with ``code`` once the frames before it are sent."""

    code: int
    reason: str = ""


class Outbox:
    """Frames waiting to be written to one member, oldest first: WebSocket frames (bytes) when wired, else texts,
    each kind with its own queue and its own ``take``, so no frame is ever of the wrong kind."""

    __slots__ = (
        "_boarded",
        "_close",
        "_coalescer",
        "_count",
        "_emptied",
        "_held",
        "_notices",
        "_parked",
        "_stayed",
        "_texts",
        "_waiter",
        "_window",
        "_wire_frames",
        "limit",
        "on_overflow",
        "on_wake",
        "overflowed",
        "ride",
        "wire",
    )

    def __init__(
        self,
        limit: int,
        on_overflow: Callable[[], None] | None = None,
        wire: WireLike | None = None,
        coalescer: Coalescer | None = None,
    ) -> None:
        self.limit = limit
        self.wire = wire
        self._coalescer = coalescer if wire is not None else None
        self._held = False  # frames wait in _wire_frames for the coalescer's flush
        self._notices = 0  # of the held frames, joins and leaves: not counted as the tracker's traffic
        self._parked = False  # joins and leaves alone wait in _wire_frames for the notices' window
        self._stayed = False  # held only by staying on its ride: nothing of its own came in this window yet
        self._window = -1  # the coalescer's window in which it was last written to
        # Lists, not deques: only appended to and emptied whole (an empty deque is 600 B, a list 56).
        self._texts: list[str] = []  # not wired: texts, framed (and compressed) by the adapter
        self._wire_frames: list[bytes] = []  # wired: pre-built frames, possibly several joined
        self._count = 0  # frames queued (a wired item may hold several joined frames)
        self.ride: Ride | None = None  # held, it may ride its room's shared frames (core/ride.py), not keep a copy
        self._boarded = (0, 0)  # where it got on the ride
        self._waiter: asyncio.Future[None] | None = None
        self._emptied: asyncio.Future[None] | None = None
        self._close: CloseRequest | None = None
        self.overflowed = False
        self.on_overflow = on_overflow
        # Called whenever there is something for the writer (frames to drain, a close, an overflow).
        self.on_wake: Callable[[], None] | None = None

    def __len__(self) -> int:
        ride = self.ride
        return self._count if ride is None else self._count + ride.waiting(self._boarded)

    @property
    def wired(self) -> bool:
        """True when frames must be pre-built bytes (``frames.text_frame``)."""
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

    def push_wire(
        self, data: bytes, count: int, notices: bool = False, ride: Ride | None = None, rider: object = None
    ) -> None:
        """Queue ``count`` pre-built frames already joined into ``data`` (wired outboxes only).

        ``notices``: only joins and leaves, which nobody waits for: held for the window even when the
        socket was quiet, so a storm of joins (a thousand members arriving) goes out a window at a time.
        ``ride``: the room's ride for this member's dialect, to which the caller adds ``data`` once it has
        handed it to every member: if held, this outbox gets on it instead of keeping a copy of its own
        (for ``rider``, the room's member, whom the room then leaves out until it gets off).
        """
        if self._close is not None or self.overflowed:  # closing, spelled out: this runs per delivery
            return
        if self._held:
            # A window is open (for a rider that stayed on: opens now, or after a pause all goes out at once, in
            # ``_keep``): these join it. Held frames are not "behind" while the socket keeps up; the limit applies
            # at the flush if the socket turns out full, as it does to frames queued behind a full socket.
            self._keep(data, count, ride, notices, rider)
            return
        if self._parked and self._after_parked(data, count, notices):
            return
        wire, frames = self.wire, self._wire_frames
        if wire is not None and not frames and wire.ready():
            coalescer = self._coalescer
            if coalescer is None or not (notices or self._gathering(coalescer)):  # quiet: at once, a window opens
                wire.write(data)
                if coalescer is not None:
                    self._window = coalescer.open(0 if notices else count)
                return
            if notices and coalescer.notices_busy:
                self._park(coalescer, data, count)
                return
            self._held = True  # written to in this window already: held for its end, no writer woken
            coalescer.hold(self)
            self._keep(data, count, ride, notices, rider)
            return
        frames.append(data)
        self._count += count
        self._after_queueing()

    def _park(self, coalescer: Coalescer, data: bytes, count: int) -> None:
        """Joins and leaves alone, while the tracker announces many: they wait for the notices' window."""
        self._parked = True
        coalescer.park(self)
        self._queue_notices(data, count)

    def _after_parked(self, data: bytes, count: int, notices: bool) -> bool:
        """Frames for a parked outbox: more notices wait with the others (True); anything else takes the parked
        notices along, ahead of it, at once if the socket keeps up (True), else behind it as usual (False)."""
        wire = self.wire
        if notices:
            self._queue_notices(data, count)
            if self._count >= PARKED_AT_MOST:
                self.release()
            return True
        self._parked = False
        if wire is None or not wire.ready():
            return False
        self._wire_frames.append(data)
        self._count += count
        joined, _ = self.take_wire_now()  # not closing: push_wire returned before
        wire.write(joined)
        if self._coalescer is not None:
            self._window = self._coalescer.open(count)
        return True

    def release(self) -> None:
        """The notices' window is over: write the parked joins and leaves (or leave them to the writer)."""
        if not self._parked:
            return
        self._parked = False
        wire = self.wire
        if self.closing or not self._wire_frames or wire is None:
            return
        if wire.ready():
            data, _ = self.take_wire_now()
            wire.write(data)
        else:
            self._after_queueing()

    def _keep(self, data: bytes, count: int, ride: Ride | None, notices: bool, rider: object = None) -> None:
        """Hold frames for the window's end: on ``ride`` (which the room adds ``data`` to), else in this queue.
        Held only by staying on a ride, its first frames of its own wait only while frames keep coming."""
        if self.ride is not None:
            self.alight()  # what it rode so far comes before these
        at_once = self._stayed and self._coalescer is not None and not self._coalescer.wake()
        self._stayed = False
        if ride is not None and not at_once:
            self.ride, self._boarded = ride, ride.board(self, rider)
        elif notices:
            self._queue_notices(data, count)
        else:
            self._wire_frames.append(data)
            self._count += count
        if at_once:
            self.write_off()

    def write_off(self) -> None:
        """Held by staying on a ride, when frames no longer keep coming (``Coalescer.wake``): off the ride, and what
        it has goes out now, as a quiet member's frame goes out at once."""
        count = self.flush(stay=False)
        if self._coalescer is not None:
            self._window = self._coalescer.open(count)

    def _queue_notices(self, data: bytes, count: int) -> None:
        """Joins and leaves into this queue, counted apart: not the tracker's traffic, but the notices' own rate."""
        self._wire_frames.append(data)
        self._count += count
        self._notices += count
        if self._coalescer is not None:
            self._coalescer.notice_frames += count

    def alight(self) -> None:
        """Off the ride (if on one): its frames since this outbox got on move into this queue."""
        ride = self.ride
        if ride is not None:
            self.ride = None
            chunks, count = ride.alight(self, self._boarded)
            self._wire_frames.extend(chunks)
            self._count += count

    def _gathering(self, coalescer: Coalescer) -> bool:
        """Whether this frame waits for the window's end: written to in this window, or in the last one while
        frames keep coming less than a window apart (steady traffic: writing the first of each window at
        once would only double the writes)."""
        window = self._window
        return window == coalescer.current or (window == coalescer.current - 1 and coalescer.steady())

    def flush(self, stay: bool = True) -> int:
        """The coalescer's window is over: write the held frames (how many), or leave them to the writer (0).
        A rider that rode frames in it stays on for the next (``Ride.take``), unless ``stay`` is False."""
        if not self._held:
            return 0
        self._held = self._stayed = False
        if self._coalescer is not None:
            self._window = self._coalescer.current - 1  # written at the end of the window just closed
        ride, wire = self.ride, self.wire
        # A busy room's rider with nothing of its own queued, the common case: off the ride, onto the socket.
        riding_only = ride is not None and not self._wire_frames and self._close is None and not self.overflowed
        if riding_only and wire is not None and wire.ready():
            assert ride is not None
            # It rode frames in this window: it stays on, held for the next, and the room leaves it out meanwhile.
            stay = stay and self._coalescer is not None and ride.waiting(self._boarded) > 0
            data, count = ride.take(self, self._boarded, stay)
            if stay and self._coalescer is not None:
                self._held = self._stayed = True
                self._boarded = ride.end()
                self._coalescer.rehold(self, ride)
            else:
                self.ride = None
            if data:
                wire.write(data)
            self._taken()
            return count
        self.alight()
        frames, wire, count = self._wire_frames, self.wire, self._count - self._notices
        if self._close is not None or self.overflowed or not frames or wire is None:
            return 0
        if wire.ready():
            data, _ = self.take_wire_now()  # no close request: that would have made it closing
            wire.write(data)
            return count
        if count > self.limit:
            self._overflow()
        else:
            self._wake()  # the socket filled meanwhile: the writer drains them once it is ready
        return 0

    def _after_queueing(self) -> None:
        if self._count > self.limit:
            self._overflow()
        else:
            self._wake()

    def _overflow(self) -> None:
        self.overflowed = True
        self._notices = 0
        if self.ride is not None:
            self.ride.drop(self)
            self.ride = None
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
        self.alight()
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
        if self.on_wake is not None:
            self.on_wake()
        if self.closing:
            self._taken()

    def _taken(self) -> None:
        emptied = self._emptied
        if emptied is not None and not emptied.done():
            emptied.set_result(None)

    async def emptied(self) -> None:
        """Wait until the writer has taken every queued frame, or the outbox is closing."""
        while len(self) and not self.closing:
            self._emptied = asyncio.get_running_loop().create_future()
            try:
                await self._emptied
            finally:
                self._emptied = None

    async def wait(self) -> None:
        """Wait until there are frames, a close request, or an overflow."""
        while (
            not self._texts
            and not self._wire_frames
            and self.ride is None
            and self._close is None
            and not self.overflowed
        ):
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
        self.alight()
        data = b"".join(self._wire_frames)
        self._wire_frames.clear()
        self._notices = 0
        self._count = 0
        self._taken()
        return data, self._close

    async def take(self) -> tuple[list[str], CloseRequest | None]:
        """``wait`` then ``take_now``."""
        await self.wait()
        return self.take_now()
