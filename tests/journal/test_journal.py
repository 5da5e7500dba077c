"""The journal: seqs in order, chat.log written before any batch is handed on, failed writes kept, history read."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from chat_tracker.core.events import JOIN, LEAVE, MESSAGE, START, Event
from chat_tracker.errors import LogWriteError
from chat_tracker.journal import local as journal_module
from chat_tracker.journal.local import LocalJournal
from chat_tracker.journal.protocol import History
from chat_tracker.records import LogEntry
from chat_tracker.storage.chatlog import ChatLog, parse_line
from support.fakes import FakeClock

START_TIME = 1_795_485_040.0


class FlakyChatLog(ChatLog):
    """chat.log whose writes fail with ENOSPC while ``failing`` is set (the disk is full)."""

    failing = False

    def append(self, data: bytes) -> None:
        if self.failing:
            raise LogWriteError(28, "No space left on device")
        super().append(data)


class Recorder:
    """A subscriber that notes every batch, and what chat.log held when the batch arrived."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.batches: list[list[Event]] = []
        self.file_when_delivered: list[list[int]] = []

    def __call__(self, batch: Sequence[Event]) -> None:
        self.batches.append(list(batch))
        self.file_when_delivered.append([entry.seq for entry in _entries(self.path)])

    @property
    def seqs(self) -> list[int]:
        return [event.seq for batch in self.batches for event in batch]


def _entries(path: Path) -> list[LogEntry]:
    return [parse_line(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _open(
    data_dir: Path, history_size: int = 100, log_class: type[ChatLog] = ChatLog
) -> tuple[LocalJournal, ChatLog, FakeClock]:
    log, report = log_class.open(data_dir)
    clock = FakeClock(START_TIME)
    journal = LocalJournal(log, last_seq=report.last_seq, history_size=history_size, clock=clock, auto_flush=False)
    return journal, log, clock


def _messages(journal: LocalJournal, clock: FakeClock, count: int, first: int = 1) -> None:
    for index in range(first, first + count):
        clock.advance(0.25)
        journal.append(MESSAGE, "alpha", f"message {index}", origin=1)


def _value(event: Event) -> tuple[int, str, str, str, str]:
    return (event.seq, event.ts, event.kind.value, event.name, event.text)


def test_seqs_are_assigned_in_order_and_logged_with_the_clock(tmp_path: Path) -> None:
    """Appends get 1, 2, 3... in call order; chat.log gets them with the journal clock's time."""
    journal, _, clock = _open(tmp_path)
    recorder = Recorder(tmp_path / "chat.log")
    journal.subscribe(recorder)
    journal.append(START, text="tracker started")
    clock.advance(1.5)
    journal.append(JOIN, "alpha", origin=1, members=("alpha",))
    journal.append(MESSAGE, "alpha", "hi\nthere", origin=1)
    assert journal.last_seq == 0  # nothing is durable yet
    journal.commit()
    assert journal.last_seq == 3
    assert recorder.seqs == [1, 2, 3]
    assert [(e.seq, e.ts, e.kind, e.name, e.text) for e in _entries(tmp_path / "chat.log")] == [
        (1, "2026-11-24T01:50:40.000Z", "start", "-", "tracker started"),
        (2, "2026-11-24T01:50:41.500Z", "join", "alpha", ""),
        (3, "2026-11-24T01:50:41.500Z", "msg", "alpha", "hi\nthere"),
    ]
    joined = recorder.batches[0][1]
    assert (joined.origin, joined.members) == (1, ("alpha",))
    journal.append(LEAVE, "alpha", "exit", origin=1)
    journal.commit()
    assert recorder.seqs == [1, 2, 3, 4] and len(recorder.batches) == 2
    assert journal.stats.log_writes == 2


def test_nothing_is_handed_on_before_chat_log_has_it(tmp_path: Path) -> None:
    """Appends alone deliver and write nothing; the subscriber gets a batch only once its lines are in the file."""
    journal, _, clock = _open(tmp_path)
    recorder = Recorder(tmp_path / "chat.log")
    journal.subscribe(recorder)
    _messages(journal, clock, 3)
    assert recorder.batches == [] and (tmp_path / "chat.log").read_bytes() == b""
    journal.commit()
    _messages(journal, clock, 2, first=4)
    assert recorder.seqs == [1, 2, 3]
    journal.commit()
    journal.commit()  # nothing pending: no empty batch
    assert [[e.seq for e in batch] for batch in recorder.batches] == [[1, 2, 3], [4, 5]]
    assert recorder.file_when_delivered == [[1, 2, 3], [1, 2, 3, 4, 5]]


def test_a_failed_write_keeps_the_batch_reports_once_and_recovers(tmp_path: Path) -> None:
    """While chat.log fails nothing is handed on and trouble is reported once; the next good write delivers all."""
    journal, log, clock = _open(tmp_path, log_class=FlakyChatLog)
    assert isinstance(log, FlakyChatLog)
    recorder = Recorder(tmp_path / "chat.log")
    journal.subscribe(recorder)
    trouble: list[LogWriteError | None] = []
    journal.on_trouble = trouble.append
    _messages(journal, clock, 1)
    journal.commit()
    log.failing = True
    _messages(journal, clock, 2, first=2)
    journal.commit()
    journal.commit()
    _messages(journal, clock, 1, first=4)  # appended during the outage: queued behind the failed batch
    journal.commit()
    assert len(trouble) == 1 and isinstance(trouble[0], LogWriteError)
    assert not journal.writable
    assert journal.last_seq == 1 and recorder.seqs == [1]
    assert journal.stats.log_write_errors == 3
    assert [e.seq for e in _entries(tmp_path / "chat.log")] == [1]

    log.failing = False
    journal.commit()
    assert trouble[1:] == [None] and journal.writable
    assert [[e.seq for e in batch] for batch in recorder.batches] == [[1], [2, 3, 4]]
    assert [(e.seq, e.text) for e in _entries(tmp_path / "chat.log")] == [
        (1, "message 1"),
        (2, "message 2"),
        (3, "message 3"),
        (4, "message 4"),
    ]
    assert journal.last_seq == 4
    log.failing = True  # a second outage is reported again
    _messages(journal, clock, 1, first=5)
    journal.commit()
    assert len(trouble) == 3 and isinstance(trouble[2], LogWriteError)


@pytest.mark.anyio
async def test_read_after_uses_the_ring_then_chat_log(tmp_path: Path) -> None:
    """Recent events come from memory as they were handed on; older ones are read back from chat.log, equal in value."""
    journal, _, clock = _open(tmp_path, history_size=5)
    recorder = Recorder(tmp_path / "chat.log")
    journal.subscribe(recorder)
    for batch in range(4):
        _messages(journal, clock, 3, first=3 * batch + 1)
        journal.commit()
    handed_on = {event.seq: event for batch in recorder.batches for event in batch}
    assert journal.last_seq == 12

    recent = await journal.read_after(7, 100)  # 8..12: the whole ring
    assert recent.complete
    assert [e.seq for e in recent.events] == [8, 9, 10, 11, 12]
    assert all(event is handed_on[event.seq] for event in recent.events)
    assert (await journal.read_after(9, 2)).events == (handed_on[10], handed_on[11])

    older = await journal.read_after(2, 4)  # 3..6: no longer in memory
    assert older.complete
    assert [_value(e) for e in older.events] == [_value(handed_on[seq]) for seq in (3, 4, 5, 6)]
    assert all(e.origin is None for e in older.events)  # not logged, so not read back

    everything = await journal.read_after(0, 100)
    assert [_value(e) for e in everything.events] == [_value(handed_on[seq]) for seq in range(1, 13)]


@pytest.mark.anyio
async def test_read_after_the_end(tmp_path: Path) -> None:
    """Past the last durable seq is ``beyond_end``; at it, nothing and complete; pending events are not readable."""
    journal, _, clock = _open(tmp_path, history_size=5)
    _messages(journal, clock, 3)
    journal.commit()
    _messages(journal, clock, 1, first=4)  # not yet committed
    assert await journal.read_after(3, 10) == History(())
    assert (await journal.read_after(3, 10)).complete
    beyond = await journal.read_after(4, 10)
    assert beyond == History((), beyond_end=True) and not beyond.complete
    assert (await journal.read_after(10**9, 10)).beyond_end


@pytest.mark.anyio
async def test_read_after_reports_what_chat_log_no_longer_has(tmp_path: Path) -> None:
    """A chat.log that starts at seq 100: asking from seq 10 says 11-99 are gone and returns 100 onwards."""
    lines = [Event(seq, START_TIME + seq, MESSAGE, "alpha", f"old {seq}") for seq in range(100, 111)]
    (tmp_path / "chat.log").write_bytes(b"".join(event.log_line() for event in lines))
    journal, _, _ = _open(tmp_path, history_size=5)
    assert journal.last_seq == 110

    history = await journal.read_after(10, 3)
    assert history.gone == (11, 99) and not history.complete
    assert [_value(e) for e in history.events] == [_value(e) for e in lines[:3]]

    kept = await journal.read_after(99, 100)
    assert kept.complete and [e.seq for e in kept.events] == list(range(100, 111))
    assert (await journal.read_after(105, 2)).events[0].text == "old 106"
    assert (await journal.read_after(110, 2)) == History(())


@pytest.mark.anyio
async def test_tail_gives_the_last_lines_as_logged(tmp_path: Path) -> None:
    """tail(n) is the last n durable chat.log entries, oldest first; pending events are not in it."""
    journal, _, clock = _open(tmp_path)
    _messages(journal, clock, 5)
    journal.commit()
    _messages(journal, clock, 1, first=6)
    tail = await journal.tail(3)
    assert [(e.seq, e.kind, e.name, e.text) for e in tail] == [
        (3, "msg", "alpha", "message 3"),
        (4, "msg", "alpha", "message 4"),
        (5, "msg", "alpha", "message 5"),
    ]
    assert [e.seq for e in await journal.tail(100)] == [1, 2, 3, 4, 5]


@pytest.mark.anyio
async def test_a_restarted_journal_continues_the_seq(tmp_path: Path) -> None:
    """A journal opened on an existing chat.log numbers on from its last line; close writes what was pending."""
    first, _, clock = _open(tmp_path)
    _messages(first, clock, 2)
    first.commit()
    _messages(first, clock, 1, first=3)
    await first.close()  # writes seq 3
    second, _, clock = _open(tmp_path)
    assert second.last_seq == 3
    recorder = Recorder(tmp_path / "chat.log")
    second.subscribe(recorder)
    _messages(second, clock, 2, first=4)
    second.commit()
    assert recorder.seqs == [4, 5]
    assert [e.seq for e in _entries(tmp_path / "chat.log")] == [1, 2, 3, 4, 5]
    before_restart = await second.read_after(0, 3)  # the new journal's ring is empty: read from chat.log
    assert [(e.seq, e.text) for e in before_restart.events] == [(1, "message 1"), (2, "message 2"), (3, "message 3")]
    await second.close()


@pytest.mark.anyio
async def test_auto_flush_writes_one_batch_per_loop_turn_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the tracker, what is appended in one turn is written with one write; a failed write is retried by itself."""
    monkeypatch.setattr(journal_module, "LOG_RETRY_SECONDS", 0.0)
    log, _ = FlakyChatLog.open(tmp_path)
    assert isinstance(log, FlakyChatLog)
    journal = LocalJournal(log, last_seq=0, history_size=10, clock=FakeClock(START_TIME))
    recorder = Recorder(tmp_path / "chat.log")
    journal.subscribe(recorder)
    for index in range(3):
        journal.append(MESSAGE, "alpha", f"message {index}")
    assert recorder.batches == []
    await asyncio.sleep(0)
    assert recorder.seqs == [1, 2, 3] and journal.stats.log_writes == 1
    log.failing = True
    journal.append(MESSAGE, "alpha", "during the outage")
    await asyncio.sleep(0)
    assert not journal.writable and recorder.seqs == [1, 2, 3]
    log.failing = False
    for _ in range(5):  # the retry is due at once (LOG_RETRY_SECONDS patched to 0)
        await asyncio.sleep(0)
    assert journal.writable and recorder.seqs == [1, 2, 3, 4]
    await journal.close()


@pytest.mark.anyio
async def test_read_after_with_no_room_for_events_reports_nothing_gone(tmp_path: Path) -> None:
    """Asking for 0 events after a seq chat.log still holds: no events and nothing gone, from ring or file alike."""
    journal, _, clock = _open(tmp_path, history_size=5)
    _messages(journal, clock, 12)
    journal.commit()
    assert await journal.read_after(9, 0) == History(())  # from the ring: holds
    assert await journal.read_after(2, 0) == History(())  # from chat.log: gone=(3, 12) today
