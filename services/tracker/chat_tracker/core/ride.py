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
"""

from __future__ import annotations

from typing import Any, Protocol


class Seats(Protocol):
    """Who the ride's room visits with each batch: a member on the ride is left out until it gets off."""

    def boarded(self, member: Any) -> None: ...

    def alighted(self, member: Any) -> None: ...


class Ride:
    """The frames added since the oldest rider got on, how many riders there are, and (with seats) which."""

    __slots__ = ("_joined", "aboard", "chunks", "frames", "riders", "seats")

    def __init__(self, seats: Seats | None = None) -> None:
        self.chunks: list[bytes] = []  # one per batch: its frames for this ride's dialect, joined
        self.frames = 0  # frames in ``chunks``
        self.riders = 0
        self.seats = seats
        # Each rider's outbox -> the room's member it rides for (only with seats; None while nobody is on).
        self.aboard: dict[object, Any] | None = None
        # The chunks from one boarding point to the end, joined (from, chunks then, bytes): at a window's end
        # most riders got on at the same batch and get off with the same bytes, joined once.
        self._joined: tuple[int, int, bytes] | None = None

    def add(self, chunk: bytes, frames: int) -> None:
        """A batch for every rider (the room calls it once riders it skipped must have it)."""
        self.chunks.append(chunk)
        self.frames += frames

    def board(self, outbox: object, member: Any = None) -> tuple[int, int]:
        """``outbox`` gets on (for the room's ``member``, whom the room then leaves out until it gets off, if the
        ride has seats): where it got on (the next chunk, the frames before it)."""
        self.riders += 1
        seats = self.seats
        if seats is not None and member is not None:
            aboard = self.aboard
            if aboard is None:
                aboard = self.aboard = {}
            aboard[outbox] = member
            seats.boarded(member)
        return len(self.chunks), self.frames

    def alight(self, outbox: object, boarded: tuple[int, int]) -> tuple[list[bytes], int]:
        """``outbox`` gets off: the chunks added since it got on, and their frames."""
        chunk, frames = boarded
        taken = self.chunks[chunk:], self.frames - frames
        self._one_fewer(outbox)
        return taken

    def take(self, outbox: object, boarded: tuple[int, int]) -> tuple[bytes, int]:
        """``outbox`` gets off with the frames added since it got on, joined, and how many."""
        chunk, frames = boarded
        chunks = self.chunks
        joined = self._joined
        if joined is not None and joined[0] == chunk and joined[1] == len(chunks):
            data = joined[2]
        else:
            data = b"".join(chunks[chunk:])
            self._joined = (chunk, len(chunks), data)
        count = self.frames - frames
        self._one_fewer(outbox)
        return data, count

    def drop(self, outbox: object) -> None:
        """``outbox`` gets off with nothing (it overflowed)."""
        self._one_fewer(outbox)

    def waiting(self, boarded: tuple[int, int]) -> int:
        """Frames a rider that got on at ``boarded`` has waiting on the ride."""
        return self.frames - boarded[1]

    def _one_fewer(self, outbox: object) -> None:
        self.riders -= 1
        aboard, seats = self.aboard, self.seats
        if aboard is not None and seats is not None:
            member = aboard.pop(outbox, None)
            if member is not None:
                seats.alighted(member)
        if not self.riders:  # nobody left to read them: start empty
            self.chunks = []
            self.frames = 0
            self.aboard = None
            self._joined = None
