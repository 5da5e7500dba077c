"""The journal in Redis: one stream for every replica, read back in seq order by one reader per replica.

``append`` queues and returns at once, as ``LocalJournal``'s does. A writer task sends the queued requests in one
``APPEND`` script call (redis_scripts.py), which gives each event its seq and adds it as the stream entry
``<seq>-0``. Nothing is delivered from the write's answer: the reader task reads the stream (``XREAD``) and hands
every event, this replica's and the others', to the room in seq order. So every replica delivers the same events in
the same order, and a member sees an event only after Redis has it: with ``appendfsync always`` Redis writes and
fsyncs the append-only file before it answers anyone, the blocked readers included.

When Redis cannot be reached the journal is not ``writable`` (the room refuses new requests with
``log_unavailable``) and both tasks retry with a backoff; the reader carries on from the last entry it delivered, so
nothing is skipped, once it has checked that the room is still the same epoch. A batch whose answer was lost on the
way is never applied twice: each carries this replica's batch number and the script ignores one it has already
applied. A message whose id Redis holds for its member (logged by any replica) is not logged again: its first seq
and time go to ``on_duplicate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from chat_tracker.core.events import Event, EventKind
from chat_tracker.errors import LogWriteError, RedisUnavailable
from chat_tracker.journal import redis_scripts as scripts
from chat_tracker.journal.protocol import (
    Deliver,
    History,
    JournalStats,
    OnControl,
    OnDuplicate,
    OnRefused,
    OnSkipped,
    OnTrouble,
    read_after,
)
from chat_tracker.journal.recent import RecentEvents
from chat_tracker.journal.redis_client import JOURNAL, REDIS_ERRORS, async_client
from chat_tracker.journal.redis_keys import Keys, control_of, entries_of, event_of
from chat_tracker.journal.redis_reader import LeanScript, PageReader, ScriptCall, blocked_reader, lean_script
from chat_tracker.journal.redis_reads import delivered_range
from chat_tracker.records import LogEntry

log = logging.getLogger("chat_tracker")

MAX_BATCH = 500  # requests per script call: one call stays short even in a burst
RETRY_FIRST, RETRY_MOST = 0.1, 2.0
SYNC_TIMEOUT = 3.0


class RedisJournal:
    """``Journal`` on a Redis stream shared by every replica, and its ``Replication``."""

    _JOIN_OP = "J"  # how a join claims its name (``redis_scripts.event_request``)

    def __init__(
        self,
        url: str,
        keys: Keys,
        *,
        replica: int,
        epoch: str,
        last_seq: int,
        history_size: int,
        gather: Callable[[], float],
        password: str | None,
        read_after: str = "",  # the stream entry to read after (default: ``last_seq``'s event)
    ) -> None:
        self.stats = JournalStats()
        self.on_trouble: OnTrouble | None = None
        self.on_control: OnControl | None = None
        self.on_refused: OnRefused | None = None
        self.on_duplicate: OnDuplicate | None = None
        self.on_skipped: OnSkipped | None = None
        self._keys, self._replica, self._url = keys, replica, url
        self._password = password  # never logged (redis_auth.py)
        # Seconds to gather requests before each script call, and entries before each read (asked each time)
        self._gather = gather
        self._epoch, self._delivered_seq = epoch, last_seq
        self._last_id = read_after or (f"{last_seq}-0" if last_seq else "0-0")
        self._history = RecentEvents(history_size)
        self._pending: list[scripts.Request] = []
        self._deliver: Deliver | None = None
        self._batches = itertools.count(1)
        self._written_seq = last_seq  # the highest seq an APPEND of ours was given
        self._wake, self._delivered = asyncio.Event(), asyncio.Event()  # requests queued; events delivered
        self._error: LogWriteError | None = None
        self._client: aioredis.Redis | None = None  # reads on a member's behalf (XRANGE), and the TLS writer's
        self._reader: PageReader | None = None  # the reader's, blocked in XREAD
        self._appender: LeanScript | None = None  # the writer's APPEND calls, but for TLS (``_append_script``)
        self._tasks: list[asyncio.Task[None]] = []
        self._closed, self._writing = False, False
        self._backoff = RETRY_FIRST  # the writer's, between two failed calls

    # --- Journal ------------------------------------------------------------------------

    @property
    def recent(self) -> Sequence[Event]:
        return self._history.events

    @property
    def last_seq(self) -> int:
        return self._delivered_seq

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
        event = Event(0, 0.0, kind, name, text, origin, (), msg_id)
        self._queue(scripts.event_request(event, self._replica, self._JOIN_OP))

    def _queue(self, request: scripts.Request) -> None:
        self._pending.append(request)
        self._wake.set()

    async def sync(self) -> None:
        """Wait (at most ``SYNC_TIMEOUT``) until what was appended is written and read back."""
        deadline = time.monotonic() + SYNC_TIMEOUT
        while (self._pending or self._writing or self._delivered_seq < self._written_seq) and not self._closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("Redis: %d request(s) not written at shutdown", len(self._pending))
                return
            self._delivered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._delivered.wait(), min(remaining, 0.05))

    async def read_after(self, seq: int, limit: int) -> History:
        return await read_after(self._history.events, self._delivered_seq, seq, limit, self._range)

    async def _range(self, seq: int, limit: int) -> list[Event]:
        return await delivered_range(self._command_client(), self._keys.events, seq, limit, lambda: self._delivered_seq)

    async def tail(self, count: int) -> list[LogEntry]:
        if len(self._history.events) >= count or len(self._history.events) == self._delivered_seq:
            events = list(self._history.events)[-count:]
        else:
            entries: Any = await self._command_client().xrevrange(self._keys.events, max="+", min="-", count=count * 2)
            events = [event_of(seq, fields) for seq, sub, fields in entries_of(entries) if sub == 0][:count]
            events.reverse()
        return [LogEntry(e.seq, e.ts, e.kind.value, e.name, e.logged_text()) for e in events]

    async def close(self) -> None:
        if self.writable:  # with Redis away, the shutdown has waited for it once already
            await self.sync()
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
        for link in (self._reader, self._appender):
            if link is not None:
                await link.aclose()

    # --- the tasks ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer and the reader (needs the running event loop)."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._write_forever()), loop.create_task(self._read_forever())]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """The writer and the reader run until ``close``: one that ends earlier is a bug, and loud."""
        if task.cancelled() or self._closed:
            return
        error = task.exception()
        log.critical("Redis: the journal's %s stopped: %r; this replica cannot deliver", task.get_coro(), error)
        self._failed(RedisUnavailable(f"the journal's task stopped: {error!r}"))

    def _command_client(self) -> aioredis.Redis:
        if self._client is None:
            self._client = async_client(self._url, self._password, JOURNAL)
        return self._client

    def _read_client(self) -> PageReader:
        if self._reader is None:  # a connection of its own: its blocked reads would hold up the writer's calls
            self._reader = blocked_reader(self._url, self._password)
        return self._reader

    def _append_script(self) -> ScriptCall:
        """APPEND on a lean connection of the writer's own (under half redis-py's CPU per call), redis-py's for TLS."""
        self._appender = lean_script(self._url, self._password, scripts.APPEND)
        return self._appender or self._command_client().register_script(scripts.APPEND)

    async def _write_forever(self) -> None:
        script = self._append_script()
        while not self._closed:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            if (gather := self._gather()) and len(self._pending) < MAX_BATCH:
                await asyncio.sleep(gather)
            if self._pending:  # ``restart_at`` may have dropped them meanwhile
                await self._write(script, self._pending[:MAX_BATCH])

    async def _write(self, script: ScriptCall, batch: list[scripts.Request]) -> None:
        """One APPEND call for ``batch``, resent as it was, under its number, until answered or a new epoch drops it."""
        epoch = self._epoch
        keys, args = scripts.append_call(self._keys, epoch, self._replica, next(self._batches), batch)
        self._writing = True
        while not self._closed and epoch == self._epoch:
            started = time.perf_counter()
            try:
                results = await script(keys=keys, args=args)
            except REDIS_ERRORS as error:
                if epoch != self._epoch:  # the lost room's connection, failing late: the new room's writes will tell
                    break
                self._failed(RedisUnavailable(f"Redis unreachable: {error}"))
            except ResponseError as error:
                if epoch != self._epoch or self._refused_by_redis(str(error), batch):
                    break
            else:
                self.stats.observe_log_write(time.perf_counter() - started)
                self._backoff = RETRY_FIRST
                self._recovered()
                if epoch == self._epoch:  # else ``restart_at`` emptied the queue: what is in it now is not this batch
                    del self._pending[: len(batch)]
                    self._written(batch, results)
                break
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, RETRY_MOST)
        self._writing = False

    def _written(self, batch: Sequence[scripts.Request], results: Any) -> None:
        if results == b"DUP" or results == "DUP":
            return  # applied before its answer was lost: the reader delivers it
        for request, result in zip(batch, results, strict=True):
            first = None if request.event is None else scripts.first_logged(request.event, result)
            if first is not None and self.on_duplicate is not None:
                self.on_duplicate(first)  # a resend: not logged again, the first one is its answer
            if request.event is None or first is not None:
                continue
            seq = int(result)
            if seq == 0:
                if self.on_refused is not None:
                    self.on_refused(request.event)
            elif seq > self._written_seq:
                self._written_seq = seq

    def _refused_by_redis(self, message: str, batch: Sequence[scripts.Request]) -> bool:
        """EPOCH or FENCED: True if the batch is dropped (its room is gone; the link notices on its next heartbeat)."""
        if message.startswith(("EPOCH", "FENCED")):
            log.error("Redis refused %d request(s): %s", len(batch), message)
            del self._pending[: len(batch)]
            return True
        if "NOSCRIPT" not in message:
            self._failed(RedisUnavailable(f"Redis refused the append: {message}"))
        return False

    def _failed(self, error: LogWriteError) -> None:
        self.stats.log_write_errors += 1
        first = self._error is None
        self._error = error
        if first:
            log.error("Redis: %s; new messages are refused until it is back", error)
            if self.on_trouble is not None:
                self.on_trouble(error)

    def _recovered(self) -> None:
        if self._error is not None:
            self._error = None
            log.warning("Redis is reachable again")
            if self.on_trouble is not None:
                self.on_trouble(None)

    async def _read_forever(self) -> None:
        client = self._read_client()
        backoff = RETRY_FIRST
        while not self._closed:
            epoch = self._epoch
            try:
                same_room, reply = await self._read_page(client, epoch, self._last_id)
            except REDIS_ERRORS as error:
                self._failed(RedisUnavailable(f"Redis unreachable: {error}"))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MOST)
                continue
            backoff = RETRY_FIRST
            if not same_room or epoch != self._epoch:  # another room, or ``restart_at`` came during the read
                await asyncio.sleep(RETRY_FIRST)  # until the link has seen the new epoch (restart_at)
                continue
            if self._error is not None and not self._writing:
                self._recovered()  # Redis answers again (the writer, if it has anything, retries on its own)
            for _stream, entries in reply or ():
                try:
                    self._take(entries)
                except Exception:  # a bug must not silence the replica: say so, and read on
                    log.exception("Redis: delivering entries up to %s failed", self._last_id)
                    self.stats.log_write_errors += 1
            self._delivered.set()
            if reply and (gather := self._gather()):
                await asyncio.sleep(gather)

    async def _read_page(self, client: PageReader, epoch: str, last_id: str) -> tuple[bool, Any]:
        """Is the room still ``epoch``, and the stream's entries after ``last_id``: asked together, on one connection.

        Redis restarted empty is another room (its seqs go on, its member ids recur). Restarted between the
        two commands, it would have closed their connection (an error); so the entries are that epoch's.
        Checking only after an error is not enough: a connection closed while the reader was idle (or the
        process frozen) is opened again on the next read, and that read would land in the new room.
        """
        room, reply = await client.read_page(self._keys.room, {self._keys.events: last_id})
        return room is not None and room.decode() == epoch, reply

    def _take(self, entries: Sequence[Any]) -> None:
        """Deliver a page of stream entries in order: events in runs, control entries between them."""
        run: list[Event] = []
        for seq, sub, fields in entries_of(entries):
            self._last_id = f"{seq}-{sub}"
            if sub != 0:
                self._hand_on(run)
                run = []
                if self.on_control is not None:
                    self.on_control(control_of(fields))
                continue
            if seq <= self._delivered_seq:
                continue  # already delivered (read again after a reconnect)
            if seq != self._delivered_seq + 1:
                self._hand_on(run)
                run = []
                self._skipped(self._delivered_seq + 1, seq - 1)
            run.append(event_of(seq, fields))
            self._delivered_seq = seq
        self._hand_on(run)

    def _skipped(self, first: int, last: int) -> None:
        """The stream was trimmed past this replica (frozen or cut off that long): ``first``-``last`` are gone.

        The ring holds consecutive seqs (``read_after`` indexes it by seq), so it starts again after the gap (a resume
        from before it reads the stream, which reports the range gone); the room hears before any later event goes out.
        """
        log.error("Redis: events %d-%d were trimmed from the stream before this replica read them", first, last)
        self._history.clear()
        if self.on_skipped is not None and not self._closed:
            self.on_skipped(first, last)

    def _hand_on(self, run: list[Event]) -> None:
        if not run:
            return
        self._history.extend(run)
        if self._deliver is not None and not self._closed:
            self._deliver(run)

    # --- Replication ------------------------------------------------------------------------

    def take_over(self, name: str, member_id: int, resumes: int) -> None:
        """Record that this replica now serves ``member_id`` (its ``resumes``-th resume): the others hand it over.
        The count goes into the roster and the control entry, so every replica refuses the token it replaced."""
        self._queue(scripts.owner_request(name, member_id, self._replica, resumes))

    def went_away(self, member_id: int) -> None:
        """Tell the other replicas that ``member_id`` lost its connection here (``who`` shows it away)."""
        self._queue(scripts.away_request(member_id, self._replica))

    def unreachable(self, why: str) -> None:
        """Redis does not answer the replica's heartbeat: refuse requests until a read or a write succeeds."""
        self._failed(RedisUnavailable(f"Redis unreachable: {why}"))

    def renumber(self, replica: int) -> None:
        """Registered again (after being reaped): this replica's entries carry its new number."""
        self._replica = replica

    def restart_at(self, epoch: str, seq: int) -> None:
        """A new epoch (Redis lost the room): read it from its start, ``seq``."""
        self._epoch = epoch
        self._error = None  # Redis answered with the new room
        self._delivered_seq = self._written_seq = seq
        self._last_id = f"{seq}-0" if seq else "0-0"
        self._history.clear()
        self._pending.clear()
