"""One reader for every room and conversation a replica reads, and their journals, which share it.

The default room's journal (``redis_stream.py``) has a reader of its own. A replica in many
rooms besides it must not hold a blocked connection per room: ``StreamHub`` reads all their
streams in one ``XREAD`` on one connection (with the replica's ``nudge:<replica>`` stream), and
hands each page to its room's journal, as that journal's own reader would. A journal joining
the hub wakes the blocked read (an entry in the nudge stream) so that the next read has its
stream. Their writers share one command client (a pool: as many connections as calls in flight).

Every journal here belongs to the default room's epoch: the read is asked together with that
epoch, as the default room's reader asks it, so a read never lands in a Redis that restarted
empty. A new epoch is the service's to handle (it drops these journals and opens them again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from chat_tracker.core.events import Event
from chat_tracker.errors import RedisUnavailable
from chat_tracker.journal import redis_scripts as scripts
from chat_tracker.journal.redis_client import JOURNAL, REDIS_ERRORS, async_client
from chat_tracker.journal.redis_keys import Keys, control_of
from chat_tracker.journal.redis_reader import PageReader, ScriptCall, blocked_reader
from chat_tracker.journal.redis_stream import RETRY_FIRST, RETRY_MOST, RedisJournal

log = logging.getLogger("chat_tracker")

NUDGES_KEPT = 1_000  # the nudge stream is capped: a replica reads it within a second, or restarts
OnNudge = Callable[[dict[str, Any]], None]


class HubJournal(RedisJournal):
    """A room's or conversation's journal: its writer is its own, its reads are the hub's."""

    # A join takes the name over: the default room made it the joiner's, so a hold left here by her earlier
    # connection (on a replica that died, or before she resumed) gives way.
    _JOIN_OP = "T"

    def __init__(
        self, hub: StreamHub, keys: Keys, *, replica: int, last_seq: int, history_size: int, read_after: str = ""
    ) -> None:
        super().__init__(
            hub.url,
            keys,
            replica=replica,
            epoch=hub.epoch,
            last_seq=last_seq,
            history_size=history_size,
            gather=hub.gather,
            password=hub.password,
            read_after=read_after,
        )
        self._client = hub.client  # shared: never closed here
        self._hub = hub

    @property
    def keys(self) -> Keys:
        return self._keys

    @property
    def stream(self) -> str:
        return self._keys.events

    @property
    def read_from(self) -> str:
        return self._last_id

    def _append_script(self) -> ScriptCall:
        """Through the hub's shared client: a lean connection per room would be a connection per room."""
        return self._command_client().register_script(scripts.APPEND)

    def start(self) -> None:
        """Start the writer; the hub reads from now on."""
        task = asyncio.get_running_loop().create_task(self._write_forever())
        task.add_done_callback(self._task_ended)
        self._tasks = [task]
        self._hub.subscribe(self)

    def preload(self, events: list[Event]) -> None:
        """The events up to where it starts, as far back as it keeps them (what ``read_after`` answers from)."""
        self._history.extend(events)

    def take_page(self, entries: Any) -> None:
        self._take(entries)
        self._delivered.set()

    def read_failed(self, error: Exception) -> None:
        self._failed(RedisUnavailable(f"Redis unreachable: {error}"))

    def read_succeeded(self) -> None:
        if self._error is not None and not self._writing:
            self._recovered()

    async def close(self) -> None:
        """Write what is queued (at most the sync timeout), then stop; the shared client stays open."""
        if self.writable:
            await self.sync()
        self.drop()

    def drop(self) -> None:
        """Stop at once, writing nothing more (a new epoch: this room's Redis is gone)."""
        self._closed = True
        self._hub.unsubscribe(self)
        for task in self._tasks:
            task.cancel()


class StreamHub:
    """Reads the streams of a replica's rooms and conversations, and its nudges, on one connection."""

    def __init__(
        self,
        url: str,
        password: str | None,
        keys: Keys,
        replica: int,
        epoch: str,
        gather: Callable[[], float],
        on_nudge: OnNudge,
    ) -> None:
        self.url, self.password, self.gather = url, password, gather
        self.epoch = epoch
        self.keys = keys
        self.client: aioredis.Redis = async_client(url, password, JOURNAL)
        self._reader: PageReader = blocked_reader(url, password)
        self._nudges = keys.nudge(replica)
        self._nudged_at = "0-0"
        self._on_nudge = on_nudge
        self._journals: dict[bytes, HubJournal] = {}  # stream key -> its journal
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.bytes_read = 0  # the events' bodies read from the rooms' streams (the metrics' count)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._read_forever())

    def renumber(self, replica: int) -> None:
        """Registered again under ``replica``: its nudges come to a new stream."""
        self._nudges, self._nudged_at = self.keys.nudge(replica), "0-0"
        self._wake()

    def subscribe(self, journal: HubJournal) -> None:
        self._journals[journal.stream.encode()] = journal
        self._wake()

    def unsubscribe(self, journal: HubJournal) -> None:
        if self._journals.get(journal.stream.encode()) is journal:
            del self._journals[journal.stream.encode()]

    @property
    def streams(self) -> int:
        return len(self._journals)

    def _wake(self) -> None:
        """A blocked read returns now (its next one has the new stream): a wake-up entry in the nudge stream."""
        if self._task is not None and not self._closed:
            asyncio.get_running_loop().create_task(self.nudge(self._nudges, {"c": "wake"}))

    async def nudge(self, stream: str, body: dict[str, Any]) -> None:
        """Add ``body`` to a replica's nudge stream (capped); Redis away: the caller's retry is the next message."""
        with contextlib.suppress(*REDIS_ERRORS):
            await self.client.xadd(stream, {"e": json.dumps(body)}, maxlen=NUDGES_KEPT, approximate=True)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._reader.aclose()
        await self.client.aclose()

    async def _read_forever(self) -> None:
        backoff = RETRY_FIRST
        while not self._closed:
            try:
                same_epoch, reply = await self._read_page()
            except REDIS_ERRORS as error:
                for journal in list(self._journals.values()):
                    journal.read_failed(error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MOST)
                continue
            backoff = RETRY_FIRST
            if not same_epoch:
                await asyncio.sleep(RETRY_FIRST)  # the default room's link sees the new epoch; the service resets
                continue
            for journal in list(self._journals.values()):
                journal.read_succeeded()
            self._hand_on(reply or ())
            gather = self.gather() if reply else 0.0
            if gather:
                await asyncio.sleep(gather)

    async def _read_page(self) -> tuple[bool, Any]:
        streams: dict[Any, str] = {self._nudges: self._nudged_at}
        for stream, journal in self._journals.items():
            streams[stream] = journal.read_from
        epoch, reply = await self._reader.read_page(self.keys.room, streams)
        return epoch is not None and epoch.decode() == self.epoch, reply

    def _hand_on(self, reply: Any) -> None:
        for stream, entries in reply:
            if stream == self._nudges.encode():
                self._nudged(entries)
                continue
            journal = self._journals.get(stream)
            if journal is None:
                continue  # dropped while the read was out
            self.bytes_read += sum(len(fields.get(b"e", b"")) for _id, fields in entries)
            try:
                journal.take_page(entries)
            except Exception:  # a bug must not silence every room of the replica: say so, and read on
                log.exception("Redis: delivering entries of %s failed", stream)

    def _nudged(self, entries: Any) -> None:
        for entry_id, fields in entries:
            self._nudged_at = entry_id.decode()
            body = control_of(fields)
            if body.get("c") != "wake":
                self._on_nudge(body)
