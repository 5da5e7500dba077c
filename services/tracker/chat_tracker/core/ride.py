"""A room's shared frames held for a coalescing window, kept once for every member that rides it.

In a busy room nearly every member is held for the window (``outbox.Coalescer``) and gets
exactly the same frames: each message's bytes, built once per dialect. Appending those
bytes to every member's own queue cost a chain of Python calls per member per message,
more than the write that later carries them. Instead a member whose outbox is held gets
on the room's ride for its dialect (``Outbox.push_wire`` with ``ride``), noting where it
got on; the room then adds each batch to the ride once, after handing it to everyone
(``SharedFrames.finish``), and skips the riders while it hands out the next batches. A
rider gets off - taking the ride's frames from where it got on into its own queue - when
its window ends, or as soon as anything else is queued for it (its own echo, a prompt,
another room's batch), so its frames stay in order.

Skipping a rider still cost the room a visit per member per message: in a saturated room of
1,000 that loop took about a quarter of the tracker's CPU. So a ride also tells its room who is on
it (``Seats``, the room's ``core/room/roster.py``): the room leaves its riders out of the next
batches altogether, and takes each back among the members it visits when it gets off.

Getting on and off every window still cost each rider a visit, a boarding and a getting off per
window. So a rider that got frames in a window *stays on* for the next (``take`` with ``stay``): it
is held again without a visit, and the ride wakes the coalescer (``waker``) when its next batch comes.
A rider gets off at the end of a window that brought it nothing. Positions on the ride are counted
from its start (``_base``: the chunks every rider has taken are let go at the window's end, ``settle``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Seats(Protocol):
    """Who the ride's room visits with each batch: a member on the ride is left out until it gets off."""

    def boarded(self, member: Any) -> None: ...

    def alighted(self, member: Any) -> None: ...


class Rider(Protocol):
    """A rider's outbox (``core/outbox.py``): let off the ride when frames no longer keep coming."""

    def write_off(self) -> None: ...


class Ride:
    """The frames added since the oldest rider got on, how many riders there are, and (with seats) which."""

    __slots__ = ("_base", "_joined", "aboard", "chunks", "frames", "riders", "seats", "stayed", "waker")

    def __init__(self, seats: Seats | None = None) -> None:
        self.chunks: list[bytes] = []  # one per batch: its frames for this ride's dialect, joined
        self._base = 0  # batches added before ``chunks[0]`` (taken by every rider, and let go)
        self.frames = 0  # frames added since the ride started
        self.stayed = 0  # riders that took everything and stayed on at this window's end
        # Called as a batch is added, while riders that stayed on wait for it (``Coalescer.wake``).
        self.waker: Callable[[], bool] | None = None
        self.riders = 0
        self.seats = seats
        # Each rider's outbox -> the room's member it rides for (or None); the dict is None while nobody is on.
        self.aboard: dict[Rider, Any] | None = None
        # The chunks from one boarding point to the end, joined (from, chunks then, bytes): at a window's end
        # most riders got on at the same batch and get off with the same bytes, joined once.
        self._joined: tuple[int, int, bytes] | None = None

    def add(self, chunk: bytes, frames: int) -> None:
        """A batch for every rider (the room calls it once riders it skipped must have it)."""
        self.chunks.append(chunk)
        self.frames += frames
        waker = self.waker
        if waker is not None and not waker():  # riders stayed on, and frames no longer keep coming
            for rider in list(self.aboard or ()):
                rider.write_off()  # off, with what they rode: written now

    def board(self, outbox: Rider, member: Any = None) -> tuple[int, int]:
        """``outbox`` gets on (for the room's ``member``, whom the room then leaves out until it gets off, if the
        ride has seats): where it got on (the next chunk, the frames before it)."""
        self.riders += 1
        aboard = self.aboard
        if aboard is None:
            aboard = self.aboard = {}
        aboard[outbox] = member
        seats = self.seats
        if seats is not None and member is not None:
            seats.boarded(member)
        return self.end()

    def end(self) -> tuple[int, int]:
        """Where a rider that has taken everything stands: as if it got on now."""
        return self._base + len(self.chunks), self.frames

    def alight(self, outbox: Rider, boarded: tuple[int, int]) -> tuple[list[bytes], int]:
        """``outbox`` gets off: the chunks added since it got on, and their frames."""
        chunk, frames = boarded
        taken = self.chunks[chunk - self._base :], self.frames - frames
        self._one_fewer(outbox)
        return taken

    def take(self, outbox: Rider, boarded: tuple[int, int], stay: bool = False) -> tuple[bytes, int]:
        """``outbox`` takes the frames added since it got on, joined, and how many: it gets off, or with ``stay``
        stays on for the next window (standing at ``end()``; ``settle`` lets go of what everyone took)."""
        chunk, frames = boarded
        chunks = self.chunks
        joined = self._joined
        end = self._base + len(chunks)
        if joined is not None and joined[0] == chunk and joined[1] == end:
            data = joined[2]
        else:
            data = b"".join(chunks[chunk - self._base :])
            self._joined = (chunk, end, data)
        count = self.frames - frames
        if stay:
            self.stayed += 1
        else:
            self._one_fewer(outbox)
        return data, count

    def settle(self) -> None:
        """The window's end is over (``Coalescer.flush``): if every rider took everything and stayed on, the
        chunks are nobody's any more."""
        if self.stayed == self.riders and self.chunks:
            self._base += len(self.chunks)
            self.chunks = []
            self._joined = None
        self.stayed = 0

    def drop(self, outbox: Rider) -> None:
        """``outbox`` gets off with nothing (it overflowed)."""
        self._one_fewer(outbox)

    def waiting(self, boarded: tuple[int, int]) -> int:
        """Frames a rider that got on at ``boarded`` has waiting on the ride."""
        return self.frames - boarded[1]

    def _one_fewer(self, outbox: Rider) -> None:
        self.riders -= 1
        aboard, seats = self.aboard, self.seats
        if aboard is not None:
            member = aboard.pop(outbox, None)
            if member is not None and seats is not None:
                seats.alighted(member)
        if not self.riders:  # nobody left to read them: start empty
            self.chunks = []
            self._base = self.frames = self.stayed = 0
            self.aboard = None
            self._joined = None
            self.waker = None
