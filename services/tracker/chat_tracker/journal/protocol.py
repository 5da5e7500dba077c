"""The journal: the one place where a request becomes a logged event, in one order for everyone.

``append`` hands the journal what happened (kind, name, text, origin); the journal
gives it the next seq and the time, makes the batch durable and only then hands it,
in seq order, to its subscriber (the room, which delivers it to the members). It
keeps the recent events in a bounded ring and answers "events after seq S" from
there or from chat.log and its rotated segments, or says which are gone.

``Journal`` is the interface the room, the ``/ws`` adapter and the runtime use; ``LocalJournal`` is the
in-process implementation on chat.log, the default. A journal in Redis (one stream
for every replica) implements the same interface: ``append`` queues and returns at
once (the hot path never awaits), and everything that waits is ``async``. What only
a journal shared by replicas does is ``Replication``, an interface of its own: the
service of a replica gets it from the code that builds the journal, and nothing asks
a journal what it is.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chat_protocol import parse_ts
from chat_tracker.core.events import Event, EventKind, kind_of
from chat_tracker.errors import LogWriteError
from chat_tracker.records import LogEntry

Deliver = Callable[[Sequence[Event]], None]
OnTrouble = Callable[[LogWriteError | None], None]
OnControl = Callable[[dict[str, Any]], None]
OnRefused = Callable[[Event], None]
OnDuplicate = Callable[[Event], None]  # a resent message, as it was logged first (its seq and time)
OnSkipped = Callable[[int, int], None]

LOG_RETRY_SECONDS = 1.0
LOG_WRITE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, float("inf"))


@dataclass(frozen=True)
class History:
    """The answer to "events after seq S": the events kept, and the range that is gone, if any.

    ``gone`` is ``(first, last)``, the seqs after S that can no longer be read
    (older than the ring, in a segment that retention deleted or logrotate took
    away); ``events`` then starts at ``last + 1``. ``beyond_end`` is True when S is past the journal's last seq.
    """

    events: tuple[Event, ...]
    gone: tuple[int, int] | None = None
    beyond_end: bool = False

    @property
    def complete(self) -> bool:
        return self.gone is None and not self.beyond_end


@dataclass
class JournalStats:
    """chat.log write counters read by /metrics; plain numbers, free on the hot path."""

    log_write_errors: int = 0
    log_writes: int = 0
    log_write_seconds: float = 0.0
    log_write_buckets: list[int] = field(default_factory=lambda: [0] * len(LOG_WRITE_BUCKETS))

    def observe_log_write(self, seconds: float) -> None:
        self.log_writes += 1
        self.log_write_seconds += seconds
        for index, bound in enumerate(LOG_WRITE_BUCKETS):
            if seconds <= bound:
                self.log_write_buckets[index] += 1
                break


class EventLog(Protocol):
    """Where ``LocalJournal`` keeps its events: ``ChatLog`` (one file, ``storage/chatlog.py``) or ``RotatingLog``
    (chat.log and its segments, ``storage/rotation.py``).

    ``append`` runs on the event loop; ``tail`` and ``read_after`` run in worker
    threads and may read while ``append`` writes (they stop at whole lines).
    """

    def append(self, data: bytes) -> None: ...

    def tail(self, count: int) -> list[LogEntry]: ...

    def read_after(self, seq: int, limit: int) -> list[LogEntry]: ...

    def close(self) -> None: ...


class Journal(Protocol):
    """What the room, the ``/ws`` adapter and the runtime need of a journal, wherever it keeps its events."""

    stats: JournalStats
    on_trouble: OnTrouble | None

    @property
    def last_seq(self) -> int:
        """The seq of the newest durable event (0 for an empty journal)."""

    @property
    def writable(self) -> bool:
        """False while events cannot be made durable (then requests are refused)."""

    @property
    def epoch(self) -> str:
        """The identity of this sequence of events: new whenever chat.log starts anew (seqs are reused)."""

    @property
    def recent(self) -> Sequence[Event]:
        """The newest durable events kept in memory (``--history-size``), consecutive seqs, oldest first."""

    def subscribe(self, deliver: Deliver) -> None:
        """Register the function that receives every durable batch, in seq order."""

    def append(
        self,
        kind: EventKind,
        name: str = ...,
        text: str = ...,
        origin: int | None = ...,
        members: tuple[str, ...] = ...,
        msg_id: str | None = ...,
    ) -> None:
        """Queue an event; it gets its seq here and reaches the subscriber once durable. Never waits."""

    async def sync(self) -> None:
        """Wait until everything appended so far is durable and handed on (or has failed to be)."""

    async def read_after(self, seq: int, limit: int) -> History:
        """Up to ``limit`` durable events after ``seq``, oldest first, and what is gone."""

    async def tail(self, count: int) -> list[LogEntry]:
        """The last ``count`` durable events as chat.log entries, oldest first."""

    async def close(self) -> None:
        """Write what is pending and release the journal; nothing is handed on afterwards."""


class Replication(Protocol):
    """What a journal shared by replicas does beyond ``Journal``: the replica's side of sharing the room.

    Each replica tells the others, by control entries between the events, whom it now
    serves (``take_over``) and who lost its connection here (``went_away``), and hears
    theirs (``on_control``); an event the shared room refuses (a name another replica
    holds) comes back to ``on_refused``. The replica's link (``replicas/replica.py``)
    reports what it notices: Redis silent, a new epoch, a new replica number. A replica
    that fell so far behind that the stream was trimmed past it hears the seqs it skipped
    (``on_skipped(first, last)``) before any event after them is handed on. A message whose id its
    member used already, on any replica, is not logged again: ``on_duplicate`` gets the first one.
    """

    on_control: OnControl | None
    on_refused: OnRefused | None
    on_duplicate: OnDuplicate | None
    on_skipped: OnSkipped | None

    def start(self) -> None:
        """Start writing and reading the shared stream (needs the running event loop)."""

    def take_over(self, name: str, member_id: int, resumes: int) -> None:
        """``member_id`` resumed here (its ``resumes``-th resume): the replica that served it lets it go."""

    def went_away(self, member_id: int) -> None:
        """``member_id`` lost its connection here: every replica shows it away."""

    def unreachable(self, why: str) -> None:
        """Redis does not answer the link: refuse requests until a read or a write succeeds."""

    def restart_at(self, epoch: str, seq: int) -> None:
        """Redis lost the room: read the new ``epoch`` from its start, ``seq``."""

    def renumber(self, replica: int) -> None:
        """This replica registered again under the number ``replica``."""


async def read_after(
    ring: Sequence[Event], last_seq: int, seq: int, limit: int, older: Callable[[int, int], Awaitable[list[Event]]]
) -> History:
    """``Journal.read_after`` for any journal: from its ``ring`` of recent events, else ``older(seq, limit)``.

    Whatever ``older`` no longer has between ``seq`` and the first event it returns is ``gone``.
    """
    if seq > last_seq:
        return History((), beyond_end=True)
    seq = max(seq, 0)  # seqs start at 1: nothing before 0 ever existed, so nothing of it is gone
    if limit <= 0:
        return History(())  # no room for events: nothing to read, and nothing known to be gone
    if ring and seq + 1 >= ring[0].seq:
        start = seq + 1 - ring[0].seq
        return History(tuple(itertools.islice(ring, start, start + limit)))
    events = tuple(await older(seq, min(limit, last_seq - seq)))
    first_kept = events[0].seq if events else last_seq + 1
    gone = (seq + 1, first_kept - 1) if first_kept > seq + 1 else None
    return History(events, gone=gone)


def from_entry(entry: LogEntry) -> Event:
    """An event read back from chat.log (its origin and welcome list are not logged)."""
    event = Event(entry.seq, parse_ts(entry.ts).timestamp(), kind_of(entry.kind), entry.name, entry.text)
    event._ts = entry.ts  # exactly as logged
    return event
