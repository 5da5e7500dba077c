"""The coalescing window (``--coalesce-ms``): one timer for every member's held frames.

A member's frames are held (``outbox.Outbox``) only while writes to it are recent; how
long a window lasts adapts to what holding buys. Two bounds:

- **shortest**: a tenth of ``--coalesce-ms``, at most ``SHORTEST``. A quiet room's rare
  second frame waits no longer than that, whatever the operator set.
- **ceiling**: how long the window may grow, by how many frames a second the tracker delivers
  (counted every ``RATE_SECONDS``; joins and leaves are not counted, so a crowd signing in at
  once leaves the window short). Below ``BUSY``, at most ``CALM``: a lively room of people pays no
  more than 10 ms for CPU nobody needs. From ``BUSY``, at most ``BUSY_WINDOW``: the writes are
  most of the tracker's CPU, and a longer window divides them. From ``SATURATED``, all of
  ``--coalesce-ms``: even gathered over 30 ms the writes would take a third of a core or more,
  and halving them again is worth a longer wait. ``--coalesce-ms`` bounds every one of them.

Joins and leaves count apart (``notice_frames``). While the tracker announces ``BUSY`` of them a second
or more, a member's notices alone are *parked* for ``NOTICES_WINDOW`` (a timer of their own, never
``--coalesce-ms``'s): at 10,000 members even a join every half second is that many, and with joins
further apart than a window each one was a write to every member. A message (or anything but a
notice) for a parked member takes its notices along at once, so no one's chat waits on them; so do
``outbox.PARKED_AT_MOST`` of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

# The shortest window, whatever ``--coalesce-ms`` is: what a quiet room's second frame may wait.
SHORTEST = 0.001
# The longest window while the tracker is not busy, whatever ``--coalesce-ms`` is.
CALM = 0.010
# Frames a second from which the tracker is busy: its writes then cost a tenth of a core or more
# (10-20 us each on a 2-core VM, two or three frames a write at the calm window). A room of 100 people
# at 50 messages a second, with a hundred more signing in at once, stays below it (some 4,600).
BUSY = 15_000
# The longest window while busy but not saturated, whatever a longer ``--coalesce-ms`` is.
BUSY_WINDOW = 0.030
# Frames a second from which the window may grow to ``--coalesce-ms``: a room of 100 at 500 messages a second,
# or of 1,000 at 50. On a 2-core VM, a room of 1,000 at 100 messages a second cost 4.4 us of CPU per delivery with
# a 30-ms window and 3.2 with a 60-ms one (p99 70 and 102 ms).
SATURATED = 50_000
# How often the rate is looked at: a room that turns busy gets the longer window within a second.
RATE_SECONDS = 0.25
# How long joins and leaves alone wait for a member while the tracker announces ``BUSY`` of them a second or more
# (a big room that people keep entering: at 10,000 members, two joins a second). Nobody waits for a join notice,
# and at one join per window each would be a write to every member.
NOTICES_WINDOW = 0.5


def replica_gather(coalescer: Coalescer | None) -> Callable[[], float]:
    """How long a replica gathers requests before a Redis call, and entries before a read (seconds), asked before
    each: a quarter of the window's ceiling now, at most of the busy one (``Coalescer.gather``). No window: none."""
    return coalescer.gather if coalescer is not None else _no_gathering


def _no_gathering() -> float:
    return 0.0


class Held(Protocol):
    """An outbox whose frames wait for the window's end (``outbox.Outbox``)."""

    def flush(self) -> int: ...


class Parked(Protocol):
    """An outbox whose joins and leaves wait for the notices' window (``outbox.Outbox``)."""

    def release(self) -> None: ...


class StayedOn(Protocol):
    """A ride whose riders stay on from window to window (``core/ride.py``'s ``Ride``)."""

    stayed: int  # its riders that stayed on at this window's end
    waker: Callable[[], bool] | None  # asked as a batch is added to it: do its riders wait for the window?

    def settle(self) -> None: ...


class Coalescer:
    """One window for every member's held frames: a single timer flushes them all at its end.

    A timer per member would cost a timer handle and a callback per member per window,
    which is what coalescing saves on writes; one shared timer costs one callback per
    window for the whole tracker. Windows are numbered (``current``): an outbox that
    wrote directly in the current window holds its next frames for its end.

    The window's length adapts between ``shortest`` and ``ceiling``: when at least half the
    members written to in a window got more frames in it (held), or the window opened less
    than a ceiling after the last one ended (frames keep coming close together), the next
    window is a step longer (a tenth of the ceiling, at least ``shortest``), since holding pays;
    otherwise it halves, since frames that do get held then wait for little.
    """

    __slots__ = (
        "_clock",
        "_close_behind",
        "_counted_since",
        "_ended",
        "_frames",
        "_handle",
        "_held",
        "_opened",
        "_park_handle",
        "_parked",
        "_settle",
        "_soon",
        "ceiling",
        "current",
        "longest",
        "notice_frames",
        "notices_busy",
        "shortest",
        "window",
    )

    def __init__(self, window: float, clock: Callable[[], float] | None = None) -> None:
        if not window > 0:
            raise ValueError(f"a coalescing window must be positive, not {window}")
        self.longest = window
        self.shortest = min(window / 10, SHORTEST)
        self.ceiling = min(window, CALM)  # how long the window may grow now: ``longest`` when saturated
        self.window = self.shortest  # the length of the next window to open
        self.current = 0  # the number of the window now open (or the next one to open)
        # An outbox flushed early (``Outbox.write_off``) stays listed and may be held again in the same window: a dict
        # lists it once (a second flush in one window would take a rider that stayed on off its ride with nothing).
        self._held: dict[Held, None] = {}
        self._opened = 0  # members written to directly in the current window
        self._clock = clock  # None: the event loop's
        self._ended = float("-inf")  # when the last window ended
        self._soon = False  # the current window opened less than ``ceiling`` after the last one ended
        self._close_behind = False  # ... less than its own length after it: steady traffic, keep gathering
        self._handle: asyncio.TimerHandle | None = None
        self._settle: list[StayedOn] = []  # rides whose riders stayed on at this window's end (``rehold``)
        self._frames = 0  # frames written through the coalescer since ``_counted_since``
        self._counted_since = float("-inf")
        self.notice_frames = 0  # joins and leaves held or parked since ``_counted_since`` (counted by the outboxes)
        self.notices_busy = False  # ``BUSY`` of them a second or more: they wait for the notices' window
        self._parked: list[Parked] = []
        self._park_handle: asyncio.TimerHandle | None = None

    def open(self, frames: int = 1) -> int:
        """A member was just written to directly (``frames`` of them): make sure a window is open; its number."""
        self._opened += 1
        self._frames += frames
        if self._handle is None:
            self._start()
        return self.current

    def _start(self) -> None:
        """Open the window: its timer, and how soon after the last one it opened."""
        gap = self._now() - self._ended
        self._soon, self._close_behind = gap < self.ceiling, gap < self._gathers_within()
        self._handle = asyncio.get_running_loop().call_later(self.window, self.flush)

    def gather(self) -> float:
        """A replica's gathering before a Redis call (``replica_gather``): a quarter of the ceiling, so 2.5 ms while
        calm (a quiet replica room waits no longer for a longer ``--coalesce-ms``) and a quarter of the busy
        ceiling while busy, where fewer script calls and reads per message pay most. Not more when saturated:
        the gathering adds to the round trip, and the window already waits longer."""
        return min(self.ceiling, BUSY_WINDOW) / 4

    def steady(self) -> bool:
        """Frames keep coming less than a window apart (as of the window now open, else of now)."""
        if self._handle is None:
            return self._now() - self._ended < self._gathers_within()
        return self._close_behind

    def _gathers_within(self) -> float:
        """How close together frames count as steady: within a window, or a ceiling when busy (a busy room's
        batches come irregularly, some more than a window apart, and each would otherwise cost a write)."""
        return self.ceiling if self.ceiling > CALM else self.window

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def hold(self, outbox: Held) -> None:
        """Flush ``outbox`` at the end of the current window (one is opened if none is)."""
        self._held[outbox] = None
        self._opened += 1  # ``open(0)``, spelled out: this runs per member per window
        if self._handle is None:
            self._start()

    def rehold(self, outbox: Held, ride: StayedOn) -> None:
        """A rider that stays on ``ride`` (``Ride.take`` with ``stay``), from inside ``flush``: held for the next
        window, which opens when the ride's next batch comes (``wake``), not now: a room gone quiet opens none."""
        self._held[outbox] = None
        if ride.stayed == 1:  # the first of its riders to stay on at this window's end
            self._settle.append(ride)
            ride.waker = self.wake

    def wake(self) -> bool:
        """Frames for members held only by staying on a ride: whether they wait for the window's end. They do while
        frames keep coming (a window is open, or opens now); after a pause they go out now (False), as a quiet
        member's frame goes out at once (``Ride.add`` and ``Outbox.write_off``)."""
        if not self.steady():
            return False
        if self._handle is None:
            self._start()
        return True

    def park(self, outbox: Parked) -> None:
        """Release ``outbox``'s joins and leaves at the end of the notices' window (opened if none is)."""
        self._parked.append(outbox)
        if self._park_handle is None:
            self._park_handle = asyncio.get_running_loop().call_later(NOTICES_WINDOW, self.release_parked)

    def release_parked(self) -> None:
        """The notices' window is over: every parked outbox writes its joins and leaves."""
        if self._park_handle is not None:
            self._park_handle.cancel()
            self._park_handle = None
        parked, self._parked = self._parked, []
        self._rate(self._now())
        for outbox in parked:
            outbox.release()

    def flush(self) -> None:
        """Write every held outbox now (the window's end; also usable to flush early)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.current += 1  # whoever was written to in the window just ended is quiet again
        held, self._held = self._held, {}
        # Holding pays when half the members written to got more frames, or when frames keep coming
        # within a ceiling of each other (a longer window would gather them).
        paid = 2 * len(held) >= self._opened or self._soon
        self._ended = now = self._now()
        self._rate(now)
        # Up by a step (a tenth of the ceiling, at least ``shortest``), down by half: a lone burst in a quiet
        # room lengthens it by a step only.
        grown = min(self.ceiling, self.window + max(self.shortest, self.ceiling / 10))
        self.window = grown if paid else max(self.shortest, min(self.ceiling, self.window / 2))
        self._opened = 0
        for outbox in held:
            self._frames += outbox.flush()
        if self._settle:
            settle, self._settle = self._settle, []
            for ride in settle:
                ride.settle()

    def _rate(self, now: float) -> None:
        """Every ``RATE_SECONDS`` or so: calm, busy or saturated, by the frames written since the last look."""
        elapsed = now - self._counted_since
        if elapsed < RATE_SECONDS:
            return
        rate = self._frames / elapsed
        tier = self.longest if rate >= SATURATED else BUSY_WINDOW if rate >= BUSY else CALM
        self.ceiling = min(self.longest, tier)
        self.notices_busy = self.notice_frames / elapsed >= BUSY
        self._frames, self.notice_frames, self._counted_since = 0, 0, now
