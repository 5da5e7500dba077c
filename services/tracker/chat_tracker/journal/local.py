"""The in-process journal, the default: seqs given here, batches made durable in chat.log, then delivered.

It implements ``journal/protocol.py``'s ``Journal`` on any ``EventLog`` (chat.log and its
segments, ``storage/``), so it does no I/O of its own: the log it is given does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from chat_tracker.core.events import Event, EventKind
from chat_tracker.errors import LogWriteError
from chat_tracker.journal.protocol import (
    LOG_RETRY_SECONDS,
    Deliver,
    EventLog,
    History,
    JournalStats,
    OnTrouble,
    from_entry,
    read_after,
)
from chat_tracker.journal.recent import RecentEvents
from chat_tracker.records import LogEntry


class LocalJournal:
    """The in-process journal: one ``write(2)`` of each loop turn's batch to chat.log, then delivery.

    Events appended during one turn of the event loop are written together when the
    loop next runs its callbacks (``auto_flush``), or when ``commit`` is called (tests).
    A failed write keeps the batch and retries every ``LOG_RETRY_SECONDS``.
    """

    # One per room and conversation: no __dict__ (about 100 B a room).
    __slots__ = (
        "_auto_flush",
        "_clock",
        "_closed",
        "_deliver",
        "_durable_seq",
        "_epoch",
        "_error",
        "_flush_scheduled",
        "_history",
        "_log",
        "_next_seq",
        "_pending",
        "on_trouble",
        "stats",
    )

    def __init__(
        self,
        log: EventLog,
        *,
        last_seq: int,
        history_size: int,
        epoch: str = "",
        clock: Callable[[], float] = time.time,
        auto_flush: bool = True,
        stats: JournalStats | None = None,
    ) -> None:
        self.stats = JournalStats() if stats is None else stats  # rooms' journals share one: its counts add up
        self._epoch = epoch
        self.on_trouble: OnTrouble | None = None
        self._log = log
        self._clock = clock
        self._auto_flush = auto_flush
        self._next_seq = last_seq + 1
        self._durable_seq = last_seq
        self._pending: list[Event] = []
        self._history = RecentEvents(history_size)
        self._deliver: Deliver | None = None
        self._flush_scheduled = False
        self._error: LogWriteError | None = None
        self._closed = False

    @property
    def recent(self) -> Sequence[Event]:
        return self._history.events

    @property
    def last_seq(self) -> int:
        return self._durable_seq

    @property
    def writable(self) -> bool:
        return self._error is None

    @property
    def epoch(self) -> str:
        return self._epoch

    def subscribe(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def append(
        self,
        kind: EventKind,
        name: str = "-",
        text: str = "",
        origin: int | None = None,
        members: tuple[str, ...] = (),
        msg_id: str | None = None,
    ) -> None:
        seq = self._next_seq
        self._next_seq = seq + 1
        self._pending.append(Event(seq, self._clock(), kind, name, text, origin, members, msg_id))
        if self._auto_flush and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.commit)

    def commit(self) -> None:
        """Write every pending event to chat.log, then hand the batch on. Retries later on failure."""
        self._flush_scheduled = False
        batch = self._pending
        if not batch:
            return
        data = b"".join([event.log_line() for event in batch])
        started = time.perf_counter()
        try:
            self._log.append(data)
        except LogWriteError as error:
            self._failed(error)
            return
        self.stats.observe_log_write(time.perf_counter() - started)
        self._pending = []
        self._durable_seq = batch[-1].seq
        self._history.extend(batch)
        if self._error is not None:
            self._error = None
            if self.on_trouble is not None:
                self.on_trouble(None)
        if self._deliver is not None and not self._closed:
            self._deliver(batch)

    def _failed(self, error: LogWriteError) -> None:
        self.stats.log_write_errors += 1
        first_failure = self._error is None
        self._error = error
        if first_failure and self.on_trouble is not None:
            self.on_trouble(error)
        if self._auto_flush and not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(LOG_RETRY_SECONDS, self.commit)

    def preload(self, entries: Sequence[LogEntry]) -> None:
        """Fill the ring with chat.log's last events at start, so resumes after a restart are read from memory."""
        self._history.extend(from_entry(entry) for entry in entries if entry.seq <= self._durable_seq)

    async def sync(self) -> None:
        self.commit()

    async def read_after(self, seq: int, limit: int) -> History:
        return await read_after(self._history.events, self._durable_seq, seq, limit, self._read_log)

    async def _read_log(self, seq: int, limit: int) -> list[Event]:
        entries = await asyncio.to_thread(self._log.read_after, seq, limit)
        return [from_entry(entry) for entry in entries]

    async def tail(self, count: int) -> list[LogEntry]:
        return await asyncio.to_thread(self._log.tail, count)

    async def close(self) -> None:
        self.commit()
        self._closed = True
        self._log.close()
