"""A resume's replay, run by the ``/ws`` adapter's driver: ``resumed``, what was missed, then live.

The room holds the member's live events back from the moment it accepted the
resume, so the journal's history up to ``until`` and the held events meet with no
gap and no overlap. Frames go out in chunks the outbox can hold, each once the one
before has left it (and the socket has drained), so a long replay never overflows.

What a resume costs is bounded by ``--history-size``, however long the member was
away: only the last ``history_size`` missed seqs are read (seqs are consecutive, so
where they start is known without reading the older ones, which are announced as
``gone`` exactly as if they had been read and dropped), a page at a time, twice:
once to count what ``resumed`` announces, once to send it. Between pages the replay
stops as soon as its session is replaced or closed. Should the second reading find
gone what the first one read (trimmed meanwhile), the member is closed with 1012, to
resume told so, rather than sent on past a gap ``resumed`` did not announce.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from chat_protocol import CloseCode, Resumed, encode
from chat_tracker.core.events import MESSAGE
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room import Member, Resuming, Room
from chat_tracker.journal.protocol import History, Journal

log = logging.getLogger("chat_tracker")

# Wait until the socket's buffer is below its low-water mark (None: nothing to wait for).
WaitReady = Callable[[], Awaitable[None]] | None
Stopped = Callable[[], bool]

PAGE = 1000  # events read from the journal at a time: what one resume holds in memory at once


@dataclass
class Plan:
    """What a replay announces in ``resumed`` before sending anything: counted from one read of the pages."""

    start: int  # the replay reads the seqs after this one (``after``, or later when more were missed)
    last: int  # the seq of the last event replayed (``after`` if none)
    replayed: int = 0
    messages: int = 0
    gone: tuple[int, int] | None = None
    own_leave: bool = False  # its own leave was read (a shared room): nothing after it is replayed


async def replay(
    room: Room, journal: Journal, history_size: int, resuming: Resuming, outbox: Outbox, wait_ready: WaitReady
) -> None:
    """Send ``resumed``, the events in (after, until], then the ones held back meanwhile."""
    member = resuming.member

    def stopped() -> bool:
        return outbox.closing or member.outbox is not outbox or member.replay is None

    plan = await count(room, journal, member, resuming, history_size, stopped)
    if stopped():
        room.stats.replays_stopped += 1
        return
    outbox.push(encode(_resumed(room, member, plan, resuming.until)))
    log.info("%s resumed after seq %d (%d events replayed)", member.name, resuming.after, plan.replayed)
    chunk = max(1, outbox.limit // 2)
    async for page in pages(journal, plan.start, plan.last, stopped):
        if _gone_since_counted(page.gone, plan):
            _interrupt(member, outbox, page.gone)
            break
        frames, _ = room.replay_frames(member, [e for e in page.events if e.seq <= plan.last], resuming.after)
        await _push_paced(outbox, frames, chunk, wait_ready)
    if stopped():
        room.stats.replays_stopped += 1
    while member.replay is not None and not outbox.closing:
        # The last step and the switch to live delivery happen with no await in between.
        last_step = len(member.replay) < chunk
        held, _ = room.replay_frames(member, room.catch_up(member, last=last_step), resuming.until)
        if last_step:
            outbox.push_texts(held)
        else:
            await _push_paced(outbox, held, chunk, wait_ready)


def _gone_since_counted(gone: tuple[int, int] | None, plan: Plan) -> bool:
    """Does the second reading find seqs gone that ``resumed`` did not announce?

    Between the two readings the journal may drop what the first one read: the archiver trims the
    Redis stream every second (to ``--keep-in-redis``), retention deletes a segment. Sent on as if
    nothing happened, the member would miss those events with ``recovered`` saying it missed none.
    """
    return gone is not None and gone[1] > (plan.gone[1] if plan.gone else plan.start)


def _interrupt(member: Member, outbox: Outbox, gone: tuple[int, int] | None) -> None:
    """Close with 1012 instead: the member resumes after the last event it got, and is told what is gone."""
    log.warning("%s: seqs %s were dropped from the journal during its replay: closed to resume", member.name, gone)
    outbox.close(CloseCode.SERVICE_RESTART, "replay interrupted")


def _resumed(room: Room, member: Member, plan: Plan, until: int) -> Resumed:
    return Resumed(
        seq=plan.last if plan.replayed else until,
        name=member.name,
        epoch=room.tokens.epoch if room.tokens else "",
        token=room.token_for(member),
        recovered=plan.gone is None,
        replayed=plan.replayed,
        messages=plan.messages,
        members=room.names(),
        limits=room.limits,
        resume_grace=room.grace,
        gone=list(plan.gone) if plan.gone else None,
    )


async def _push_paced(outbox: Outbox, frames: list[str], chunk: int, wait_ready: WaitReady) -> None:
    """Queue ``frames`` a chunk at a time, each once the one before is on its way: no overflow."""
    for start in range(0, len(frames), chunk):
        if outbox.closing:
            return
        outbox.push_texts(frames[start : start + chunk])
        await outbox.emptied()
        if wait_ready is not None:
            await wait_ready()


async def count(room: Room, journal: Journal, member: Member, resuming: Resuming, most: int, stopped: Stopped) -> Plan:
    """Read the replay's pages once, keeping only counts: what ``resumed`` says, and where the reading starts.

    Of more than ``most`` missed seqs only the last ``most`` are read; the older ones
    are gone from the replay, together with whatever the journal no longer has.
    """
    after, until = resuming.after, resuming.until
    start = max(after, until - max(most, 0))
    plan = Plan(start, after, gone=(after + 1, start) if start > after else None)
    async for page in pages(journal, start, until, stopped):
        if page.gone is not None:
            plan.gone = (plan.gone[0] if plan.gone else page.gone[0], page.gone[1])
        events = [event for event in page.events if event.seq <= until]
        plan.messages += sum(1 for event in events if event.kind is MESSAGE)
        if plan.own_leave:
            continue
        kept, plan.own_leave = room.replayable(member, events, after)
        plan.replayed += len(kept)
        plan.last = kept[-1].seq if kept else plan.last
    return plan


async def pages(journal: Journal, after: int, until: int, stopped: Stopped) -> AsyncIterator[History]:
    """The journal's events in (``after``, ``until``], ``PAGE`` at a time; none once ``stopped()``."""
    cursor = after
    while cursor < until and not stopped():
        page = await journal.read_after(cursor, min(until - cursor, PAGE))
        yield page
        if page.gone is not None:
            cursor = max(cursor, page.gone[1])
        if not page.events:
            return
        cursor = page.events[-1].seq
