"""What a resume announces and reads: the same answer as reading everything, from at most ``most`` events."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import cast

import pytest

from chat_tracker.core.events import JOIN, MESSAGE, Event
from chat_tracker.core.room import Member, Resuming, Room
from chat_tracker.journal import protocol as journal_module
from chat_tracker.journal.protocol import History, Journal
from chat_tracker.transport.replaying import PAGE, count, pages
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
