"""A resume's replay, shared by both ``/ws`` adapters: ``resumed``, what was missed, then live.

The room holds the member's live events back from the moment it accepted the
resume, so the journal's history up to ``until`` and the held events meet with no
gap and no overlap. Frames go out in chunks the outbox can hold, each once the one
before has left it (and the socket has drained), so a long replay never overflows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from chat_protocol import Resumed, encode

from .events import MESSAGE, Event
from .journal import Journal
from .outbox import Outbox
from .room import Resuming, Room

log = logging.getLogger("chat_tracker")

# Wait until the socket's buffer is below its low-water mark (None: nothing to wait for).
WaitReady = Callable[[], Awaitable[None]] | None


async def replay(
    room: Room, journal: Journal, history_size: int, resuming: Resuming, outbox: Outbox, wait_ready: WaitReady
) -> None:
    """Send ``resumed``, the events in (after, until], then the ones held back meanwhile."""
    member = resuming.member
    events, gone = await history(journal, resuming.after, resuming.until, history_size)
    frames, last = room.replay_frames(member, events, resuming.after)
    resumed = Resumed(
        seq=last if frames else resuming.until,
        name=member.name,
        epoch=room.tokens.epoch if room.tokens else "",
        token=room.token_for(member),
        recovered=gone is None,
        replayed=len(frames),
        messages=sum(1 for event in events if event.kind is MESSAGE and event.seq > resuming.after),
        members=room.names(),
        limits=room.limits,
        resume_grace=room.grace,
        gone=list(gone) if gone else None,
    )
    log.info("%s resumed after seq %d (%d events replayed)", member.name, resuming.after, len(frames))
    outbox.push(encode(resumed))
    chunk = max(1, outbox.limit // 2)
    await _push_paced(outbox, frames, chunk, wait_ready)
    while member.replay is not None and not outbox.closing:
        # The last step and the switch to live delivery happen with no await in between.
        last_step = len(member.replay) < chunk
        held, _ = room.replay_frames(member, room.catch_up(member, last=last_step), resuming.until)
        if last_step:
            outbox.push_texts(held)
        else:
            await _push_paced(outbox, held, chunk, wait_ready)


async def _push_paced(outbox: Outbox, frames: list[str], chunk: int, wait_ready: WaitReady) -> None:
    """Queue ``frames`` a chunk at a time, each once the one before is on its way: no overflow."""
    for start in range(0, len(frames), chunk):
        if outbox.closing:
            return
        outbox.push_texts(frames[start : start + chunk])
        await outbox.emptied()
        if wait_ready is not None:
            await wait_ready()


async def history(journal: Journal, after: int, until: int, most: int) -> tuple[list[Event], tuple[int, int] | None]:
    """The events in (``after``, ``until``] the journal still has, at most ``most``; and the range gone, if any."""
    events: list[Event] = []
    gone: tuple[int, int] | None = None
    cursor = after
    while cursor < until:
        page = await journal.read_after(cursor, min(until - cursor, 1000))
        if page.gone is not None:
            gone = (gone[0] if gone else page.gone[0], page.gone[1])
            cursor = max(cursor, page.gone[1])
        if not page.events:
            break
        events.extend(event for event in page.events if event.seq <= until)
        cursor = page.events[-1].seq
    if len(events) > most:  # more than a replay carries: the oldest are reported as gone
        cut = len(events) - most
        gone = (gone[0] if gone else after + 1, events[cut - 1].seq)
        events = events[cut:]
    return events, gone
