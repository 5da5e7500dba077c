"""What a resume announces and reads: the same answer as reading everything, from at most ``most`` events; and
events dropped from the journal between its two readings are never skipped without a word."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import cast

import pytest

from chat_protocol import ChatMessage, CloseCode, Resumed, Welcome, decode_server
from chat_tracker.core.events import JOIN, MESSAGE, Event
from chat_tracker.core.outbox import CloseRequest, Outbox
from chat_tracker.core.room import Member, Resuming, Room
from chat_tracker.journal import protocol as journal_module
from chat_tracker.journal.protocol import History, Journal
from chat_tracker.transport.replaying import PAGE, count, pages, replay
from support.roomkit import RoomKit


class PagedJournal:
    """Events 1..``last`` of which 1..``deleted`` are gone (retention); counts what it is asked to read."""

    def __init__(self, last: int, deleted: int = 0) -> None:
        self.last, self.deleted, self.read = last, deleted, 0

    async def read_after(self, seq: int, limit: int) -> History:
        return await journal_module.read_after(deque(), self.last, seq, limit, self._older)

    async def _older(self, seq: int, limit: int) -> list[Event]:
        first = max(seq + 1, self.deleted + 1)
        events = [_event(s) for s in range(first, min(self.last, first + limit - 1) + 1)]
        self.read += len(events)
        return events


def _event(seq: int) -> Event:
    return Event(seq, 0.0, JOIN if seq % 10 == 0 else MESSAGE, f"bot{seq % 3}", "" if seq % 10 == 0 else "hi")


async def _everything(journal: PagedJournal, after: int, until: int, most: int) -> tuple[list[Event], object]:
    """The old way, the reference: read all of (after, until], then keep the last ``most`` (the rest gone)."""
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
    if len(events) > most:
        cut = len(events) - most
        gone = (gone[0] if gone else after + 1, events[cut - 1].seq)
        events = events[cut:]
    return events, gone


@pytest.fixture
def member(tmp_path: Path) -> Member:
    kit = RoomKit.create(tmp_path, grace=60)
    return kit.join("alpha")


@pytest.mark.parametrize(
    ("after", "until", "most", "deleted"),
    [
        (2, 200_000, 10_000, 0),  # the case: 190,000 gone, 10,000 replayed
        (2, 9_000, 10_000, 0),  # fewer than ``most``: everything, nothing gone
        (2, 50_000, 10_000, 30_000),  # retention took more than the cut
        (2, 50_000, 10_000, 45_000),  # retention took some of the last ``most``
        (0, 12_345, 1_000, 0),
        (100, 100, 1_000, 0),  # nothing missed
        (7, 20_000, 0, 0),  # --history-size 0: everything gone
    ],
)
def test_the_answer_is_the_same_as_reading_everything(
    member: Member, after: int, until: int, most: int, deleted: int
) -> None:
    reference = PagedJournal(until, deleted)
    events, gone = asyncio.run(_everything(reference, after, until, most))
    paged = PagedJournal(until, deleted)
    resuming = Resuming(member, after=after, until=until)
    plan = asyncio.run(count(cast(Room, Room), cast(Journal, paged), member, resuming, most, lambda: False))
    assert plan.gone == gone
    assert plan.replayed == len(events) and plan.last == (events[-1].seq if events else after)
    assert plan.messages == sum(1 for e in events if e.kind is MESSAGE)
    assert paged.read <= most, "never more than the last ``most`` events are read"
    assert reference.read == until - max(after, deleted)  # what the old way read


def test_pages_stop_as_soon_as_the_session_is_gone() -> None:
    journal = PagedJournal(50_000)
    seen: list[int] = []

    async def read() -> None:
        async for page in pages(cast(Journal, journal), 0, 50_000, lambda: len(seen) >= 2):
            seen.append(len(page.events))

    asyncio.run(read())
    assert seen == [PAGE, PAGE] and journal.read == 2 * PAGE


class TrimmedBetweenReadings:
    """``inner``'s history, except that from its second reading on the seqs up to ``trimmed_through`` are gone: the
    archiver trimmed the Redis stream (or retention deleted a segment) between the replay's count and its sending."""

    def __init__(self, inner: Journal, trimmed_through: int) -> None:
        self.inner, self.trimmed_through, self.readings = inner, trimmed_through, 0

    async def read_after(self, seq: int, limit: int) -> History:
        self.readings += 1
        page = await self.inner.read_after(seq, limit)
        if self.readings == 1 or seq >= self.trimmed_through:
            return page
        return History(
            tuple(e for e in page.events if e.seq > self.trimmed_through), gone=(seq + 1, self.trimmed_through)
        )


async def _replayed(room: Room, journal: Journal, resuming: Resuming, outbox: Outbox) -> tuple[list[str], CloseRequest]:
    """Run the replay with a reader taking the outbox's frames as a socket would; every frame, and the close."""
    frames: list[str] = []
    closed: list[CloseRequest] = []

    async def socket() -> None:
        while True:
            await outbox.wait()
            texts, close = outbox.take_now()
            frames.extend(texts)
            if close is not None:
                closed.append(close)
                return

    reader = asyncio.create_task(socket())
    await replay(room, journal, 1000, resuming, outbox, None)
    await asyncio.sleep(0)  # the reader takes what the replay queued last
    reader.cancel()
    texts, close = outbox.take_now()
    assert close is not None or closed, f"the replay ended with the connection open: {frames + texts}"
    return frames + texts, closed[0] if closed else cast(CloseRequest, close)


def test_events_trimmed_between_the_count_and_the_sending_close_the_member_instead_of_skipping_them(
    tmp_path: Path,
) -> None:
    """resumed said nothing was missed: the member must not get later events past a gap; 1012 makes it resume
    after the last event it got, and that resume announces the gap (recovered: false, gone)."""
    kit = RoomKit.create(tmp_path, grace=60)
    alpha, beta = kit.join("alpha"), kit.join("beta")
    kit.flush()
    (welcome,) = [m for m in kit.received(alpha) if isinstance(m, Welcome)]
    kit.room.connection_lost(alpha, alpha.outbox, "lost", resumable=True)
    for number in range(10):
        kit.room.say(beta, f"while away {number}")
    kit.flush()
    outbox = Outbox(10_000)
    after = welcome.seq + 1  # it had seen beta's join
    resuming = kit.room.resume(welcome.token, welcome.epoch, after, outbox, "127.0.0.2")
    journal = TrimmedBetweenReadings(cast(Journal, kit.journal), trimmed_through=after + 5)
    frames, close = asyncio.run(_replayed(kit.room, cast(Journal, journal), resuming, outbox))
    received = [decode_server(frame) for frame in frames]
    assert isinstance(received[0], Resumed) and received[0].recovered, "the first reading found everything"
    assert not [m for m in received if isinstance(m, ChatMessage)], "events sent past a gap nobody announced"
    assert close.code == CloseCode.SERVICE_RESTART
