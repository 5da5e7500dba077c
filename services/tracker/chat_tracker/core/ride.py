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
"""

from __future__ import annotations


class Ride:
    """The frames added since the oldest rider got on, and how many riders there are."""

    __slots__ = ("chunks", "frames", "riders")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []  # one per batch: its frames for this ride's dialect, joined
        self.frames = 0  # frames in ``chunks``
        self.riders = 0

    def add(self, chunk: bytes, frames: int) -> None:
        """A batch for every rider (the room calls it once riders it skipped must have it)."""
        self.chunks.append(chunk)
        self.frames += frames

    def board(self) -> tuple[int, int]:
        """One more rider: where it got on (the next chunk, the frames before it)."""
        self.riders += 1
        return len(self.chunks), self.frames

    def alight(self, boarded: tuple[int, int]) -> tuple[list[bytes], int]:
        """A rider gets off: the chunks added since it got on, and their frames."""
        chunk, frames = boarded
        taken = self.chunks[chunk:], self.frames - frames
        self._one_fewer()
        return taken

    def drop(self) -> None:
        """A rider gets off with nothing (its outbox overflowed)."""
        self._one_fewer()

    def waiting(self, boarded: tuple[int, int]) -> int:
        """Frames a rider that got on at ``boarded`` has waiting on the ride."""
        return self.frames - boarded[1]

    def _one_fewer(self) -> None:
        self.riders -= 1
        if not self.riders:  # nobody left to read them: start empty
            self.chunks = []
            self.frames = 0
