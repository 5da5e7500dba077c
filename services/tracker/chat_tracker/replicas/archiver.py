"""The archiver: chat.log written from the Redis stream, in seq order, with no gap and no repeat.

With ``--redis-url`` the journal is a Redis Stream (``journal/redis_keys.py``); one archiver
process turns it into today's chat.log, rotation and retention included, through the
same ``RotatingLog`` the single tracker writes to. Each batch read from the stream
is one append, then one ``fsync``; only then is ``archived`` set in Redis, and only
then is the stream trimmed, never past ``archived`` (replicas keep serving resumes
from the last ``--keep-in-redis`` events).

Where it resumes comes from chat.log, never from Redis: the last seq on disk. An
event at or below it is already in the file (a SIGKILL between the write and the
``SET``) and is skipped. A jump in seqs is a real gap (trimmed before it was
archived, or lost with Redis's data) and logged as an ERROR. Redis restarted empty
is a new epoch: every one of its seqs at or below chat.log's last seq is refused,
counted and logged; chat.log never holds a seq twice. So that a new epoch has none,
the archiver writes ``archived`` back on every (re)connection, and from its heartbeat
whenever Redis has lost it: a room opened anew starts above it (``OPEN``).

It also keeps the mutes and bans in force and gives them back to a room Redis
started empty (``moderation_seed.py``).

Redis going away is a pause, not an error: the archiver keeps its position and
reconnects with a backoff (0.1 s doubling to 2 s), logging once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chat_tracker.core.events import Event
from chat_tracker.errors import LogWriteError
from chat_tracker.journal import redis_keys
from chat_tracker.journal.redis_auth import auth_refused, redact
from chat_tracker.journal.redis_client import ARCHIVER, BLOCK_MS, async_client
from chat_tracker.journal.redis_keys import Keys
from chat_tracker.journal.redis_reader import StreamReader, stream_reader
from chat_tracker.replicas.moderation_seed import ArchivedModeration, seed_room
from chat_tracker.replicas.room_logs import events_after, fsync_path, log_entry_of
from chat_tracker.storage.chatlog import ChatLog
from chat_tracker.storage.rotation import RotatingLog, RotationPolicy

__all__ = ["Archiver", "ArchiverConfig", "ArchiverStats", "Health"]

log = logging.getLogger("chat_tracker")

Entries = list[tuple[bytes, dict[bytes, bytes]]]  # stream entries as redis-py returns them (bytes, RESP2)

BATCH = 1_000  # stream entries read, and written to chat.log, at once
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 2.0
# After a batch that did not fill BATCH, wait this long before reading again: under spread-out
# traffic the archiver then writes, fsyncs and records a few times a second, not once per message
# (its cost was a fixed 0.2-1.5 ms per batch). Members never wait for the archiver; chat.log lags by this.
PAUSE_SECONDS = 0.1
TRIM_SECONDS = 1.0  # trim the stream at most this often


@dataclass(frozen=True)
class ArchiverConfig:
    """Everything the archiver needs; the CLI builds it from flags and the environment (their defaults: Settings)."""

    redis_url: str
    redis_password: str | None = field(repr=False)  # --redis-password-file; never logged
    data_dir: Path
    prefix: str
    keep_in_redis: int
    rotation: RotationPolicy


@dataclass
class ArchiverStats:
    """Counters for /metrics, plain integers."""

    archived: int = 0  # events written to chat.log by this process
    reconnects: int = 0  # outages recovered from
    missing: int = 0  # seqs never seen (gaps)
    refused: int = 0  # events of a new epoch whose seq chat.log already holds
    invalid: int = 0  # stream entries refused as no event a replica writes (a bad name, kind or time)


@dataclass(frozen=True)
class Health:
    """What /healthz shows."""

    redis: bool
    archived_seq: int
    stream_last_seq: int | None
    log_writable: bool

    @property
    def lag_events(self) -> int:
        return max(0, (self.stream_last_seq or 0) - self.archived_seq)

    @property
    def status(self) -> str:
        return "ok" if self.redis and self.log_writable else "degraded"


class Archiver:
    """One process's archiving loop: Redis stream in, chat.log out."""

    def __init__(self, config: ArchiverConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.keys = Keys(config.prefix)
        self.chat_log = RotatingLog(config.data_dir, ChatLog, config.rotation, clock=clock)
        report = self.chat_log.open()
        if report.torn_bytes_removed:
            log.warning(
                "Repaired %s: removed a torn last line of %d bytes", self.chat_log.path, report.torn_bytes_removed
            )
        fsync_path(self.chat_log.path)  # what a SIGKILLed archiver left in the page cache is on disk before it counts
        self.last_seq = report.last_seq  # the last seq in chat.log: the one truth about where to go on
        self.moderation = ArchivedModeration.load(config.data_dir, self.chat_log.read_after, self.last_seq)
        self._seeded: str | None = None  # the epoch whose room has the mutes and bans in force
        self.stream_last_seq: int | None = None  # the room's seq in Redis, as last read
        self.redis_up = False
        self.log_writable = True
        self.stats = ArchiverStats()
        self._epoch: str | None = None  # the room's epoch the stream is read in (None: not known yet)
        self._floor = 0  # in a new epoch: its seqs up to here are taken by chat.log already
        self._cursor = f"{self.last_seq}-0"  # the last stream ID read
        self._unsynced = False  # lines written but not fsynced yet: nothing may be recorded before
        self._recorded: int | None = None  # the ``archived`` value set in Redis by this process
        self._trimmed_at = 0.0  # monotonic time of the last XTRIM
        self._trimmed_below = 0  # its MINID
        self._stopping = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._client: aioredis.Redis = async_client(config.redis_url, config.redis_password, ARCHIVER)
        # Each batch's XREAD on a lean connection: redis-py's parser cost most of the archiver's CPU per message.
        self._reader: StreamReader = stream_reader(config.redis_url, config.redis_password, self._client, ARCHIVER)

    async def check_credentials(self) -> None:
        """At start: a Redis that refuses our credentials is a ConfigError (exit 2); unreachable is not (we wait)."""
        try:
            await self._client.ping()
        except RedisError as error:
            refused = auth_refused(error, self.config.redis_url, self.config.redis_password)
            if refused is not None:
                await self._client.aclose()
                raise refused from None

    # --- the loop -------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Archive until ``stop``; the batch in hand is finished first."""
        self._loop = asyncio.get_running_loop()
        log.info(
            "Archiving %s from %s to %s (continuing after seq %d)",
            self.keys.events,
            redact(self.config.redis_url),
            self.chat_log.path,
            self.last_seq,
        )
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await self._archive_until_stopped()
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self._reader.aclose()
            await self._client.aclose()
            self.chat_log.close()
            log.info("Archiver stopped at seq %d", self.last_seq)

    def stop(self) -> None:
        """Ask the loop to end after the batch in hand (callable from a signal handler)."""
        self._stopping = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _archive_until_stopped(self) -> None:
        delay, outage_since = BACKOFF_FIRST, None
        while not self._stopping:
            try:
                await self._connect()
                if outage_since is not None:
                    self.stats.reconnects += 1
                    log.warning(
                        "Redis is back after %.1f s; archiving on after seq %d",
                        time.monotonic() - outage_since,
                        self.last_seq,
                    )
                    outage_since = None
                delay = BACKOFF_FIRST
                while not self._stopping:
                    await self._step()
            except LogWriteError as error:
                if self.log_writable:
                    self.log_writable = False
                    log.error("Cannot write chat.log (%s); retrying, still at seq %d", error.strerror, self.last_seq)
                await self._pause(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            except (RedisError, OSError) as error:
                self.redis_up = False
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.error("Redis is unavailable (%s); archived up to seq %d, reconnecting", error, self.last_seq)
                await self._pause(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _connect(self) -> None:
        await self._client.ping()
        self.redis_up = True
        await self._check_room()
        # ``archived`` at once, even 0: after a SIGKILL chat.log holds more than Redis was told, and a Redis
        # restarted empty has lost it, while a room it opens must start above it (OPEN; the replicas wait for it).
        await self._sync()
        await self._record(force=True)

    async def _step(self) -> None:
        """One batch: read, check the room's epoch, write and fsync, record, trim."""
        reply = await self._reader.xread({self.keys.events: self._cursor}, BATCH, BLOCK_MS)
        await self._sync()  # a batch whose fsync failed earlier is made durable before anything else
        if not reply:
            await self._check_room()  # a room Redis started empty gets its mutes and bans while it is quiet too
            await self._trim()  # caught up: the trim put off by TRIM_SECONDS, if any
            return
        if await self._check_room():
            return  # a new epoch: read its stream from the start
        entries: Entries = reply[0][1]  # [[stream, [(id, fields), ...]]]: one stream asked
        self._write(entries)
        await self._sync()
        self._cursor = entries[-1][0].decode()
        if not self.log_writable:
            self.log_writable = True
            log.warning("chat.log is writable again; archived up to seq %d", self.last_seq)
        await self._record()
        if len(entries) < BATCH:
            await self._pause(PAUSE_SECONDS)

    # --- the room's epoch -----------------------------------------------------------------------------

    async def _check_room(self) -> bool:
        """Read the room's epoch and seq; True if it is a new epoch (Redis lost the room)."""
        room: Any = await self._client.hmget(self.keys.room, ["epoch", "seq"])
        epoch_raw, seq_raw = room
        if epoch_raw is None:
            return False  # no room yet (Redis new or emptied, no replica has written)
        epoch, room_seq = epoch_raw.decode(), int(seq_raw or 0)
        self.stream_last_seq = room_seq
        if epoch == self._epoch:
            return await self._seed(epoch)
        if self._epoch is None and await self._same_room(room_seq):
            self._epoch = epoch
            return await self._seed(epoch)
        self._new_epoch(epoch, room_seq)
        await self._seed(epoch)
        return True

    async def _seed(self, epoch: str) -> bool:
        """A room without the mutes and bans in force (Redis restarted empty) gets them; False (no new epoch)."""
        if self._seeded != epoch and await seed_room(self._client, self.keys, epoch, self.moderation):
            self._seeded = epoch
        return False

    async def _same_room(self, room_seq: int) -> bool:
        """At start: is the stream the one chat.log was written from? (Redis may have restarted empty.)"""
        if self.last_seq == 0:
            return True
        if room_seq < self.last_seq:
            return False
        last = f"{self.last_seq}-0"
        entries: Any = await self._client.xrange(self.keys.events, last, last)
        if entries:  # still in the stream: the same event as chat.log's last line?
            return [log_entry_of(redis_keys.event_of(self.last_seq, entries[0][1]))] == self.chat_log.tail(1)
        return bool(await self._client.exists(self.keys.archived))  # trimmed: by an archiver of this room

    def _new_epoch(self, epoch: str, room_seq: int) -> None:
        log.error(
            "Redis lost the room: a new epoch %s (the room is at seq %d, chat.log at seq %d). Its events at or "
            "below seq %d are NOT written to chat.log, whose seqs they would repeat",
            epoch,
            room_seq,
            self.last_seq,
            self.last_seq,
        )
        self._epoch, self._floor, self._cursor = epoch, self.last_seq, "0-0"

    # --- writing --------------------------------------------------------------------------------------

    def _write(self, entries: Entries) -> None:
        """The batch's room events after chat.log's last seq, as one append (nothing written if it fails)."""
        events = self._events_after(entries)
        if not events:
            return
        self._check_gap(events[0].seq)
        self.moderation.before_append(events)  # an address ban's address is on disk before its line
        self.chat_log.append(b"".join(event.log_line() for event in events))
        self._unsynced = True
        self.last_seq = events[-1].seq
        self.stats.archived += len(events)

    def _events_after(self, entries: Entries) -> list[Event]:
        events, refused, invalid = events_after(entries, self.last_seq, self._floor)
        for entry_id, why in invalid:
            # Written into Redis by something other than a replica: never a chat.log line. Its body is
            # not logged either (it is whatever the writer chose), only where it is and what is wrong.
            self.stats.invalid += 1
            log.error("Stream entry %s is not a room event: %s; not archived", entry_id, why)
        if refused:
            self.stats.refused += refused
            log.error("Skipped %d event(s) of the new epoch whose seq chat.log already holds", refused)
        return events

    def _check_gap(self, first: int) -> None:
        if first > self.last_seq + 1:
            self.stats.missing += first - self.last_seq - 1
            log.error(
                "chat.log has a gap: seqs %d-%d are not in the stream (trimmed before they were archived, "
                "or lost with Redis's data); archiving on from seq %d",
                self.last_seq + 1,
                first - 1,
                first,
            )

    async def _sync(self) -> None:
        if not self._unsynced:
            return
        try:
            await asyncio.to_thread(fsync_path, self.chat_log.path)
        except OSError as error:
            raise LogWriteError(error.errno, f"cannot fsync {self.chat_log.path}: {error.strerror}") from error
        self._unsynced = False

    async def _record(self, *, force: bool = False) -> None:
        """Tell Redis how far chat.log is durable, then trim the stream behind that point only."""
        if self._unsynced or (self._recorded == self.last_seq and not force):
            return
        archived = self.last_seq
        await self._client.set(self.keys.archived, archived)
        self._recorded = archived
        if force or time.monotonic() - self._trimmed_at >= TRIM_SECONDS:
            await self._trim()

    async def _trim(self) -> None:
        """Trim the stream behind what Redis was told is in chat.log, keeping the last --keep-in-redis."""
        if self._recorded is None:
            return
        threshold = self._recorded + 1 - self.config.keep_in_redis  # MINID: entries below <threshold>-0 go
        if threshold > 1 and threshold != self._trimmed_below:
            self._trimmed_at = time.monotonic()
            self._trimmed_below = threshold
            await self._client.xtrim(self.keys.events, minid=threshold, approximate=False)

    # --- liveness -------------------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Every second: the ``archiver`` key (with its TTL), and the room's seq for the lag."""
        # Until stopped, not only until cancelled: a cancel landing inside a Redis call can come out of
        # redis-py as a TimeoutError (an OSError), which the suppress below would swallow.
        while not self._stopping:
            with contextlib.suppress(RedisError, OSError):
                await self._client.set(self.keys.archiver, self._owner, px=redis_keys.ALIVE_TTL_MS)
                if self._recorded is not None:  # Redis lost it (restarted empty) and the loop is still in its backoff
                    await self._client.set(self.keys.archived, self._recorded, nx=True)
                seq = await self._client.hget(self.keys.room, "seq")
                if seq is not None:
                    self.stream_last_seq = int(seq)
            await asyncio.sleep(redis_keys.HEARTBEAT_SECONDS)

    def health(self) -> Health:
        return Health(self.redis_up, self.last_seq, self.stream_last_seq, self.log_writable)
