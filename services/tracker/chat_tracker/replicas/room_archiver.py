"""The archiver's rooms and conversations: each stream in Redis written to its own chat.log, and given back.

Beside the default room's ``Archiver`` (``archiver.py``), in the same process, on one more
Redis connection. About once a second it reads the ``rooms`` hash and the ``conversations``
set (``journal/redis_keys.py``), so a new room or conversation is picked up, and writes each
room's ``room-info.json`` (its meta and ``invited`` set) whenever that changed: a single
tracker started later on the data dir has the rooms. Each stream goes to
``rooms/<name>/chat.log`` or ``direct/<a>+<b>/chat.log`` under the default room's rules
(``room_logs.py``): written, fsynced, then ``archived`` set, then the stream trimmed behind it.

Reading is a bounded round-robin: one ``XREAD`` of up to ``STREAMS_PER_READ`` streams at a
time, none blocking; a round that found nothing waits ``IDLE_SECONDS``. Files go through
one ``LogPool`` (at most ``LOG_DESCRIPTORS`` open) and one maintenance thread, so a
thousand rooms take a thousand small files, not a thousand descriptors.

When Redis restarted empty (the default room's epoch changed, or is gone) and on every
(re)connection, it gives back what Redis lost: the ``rooms`` hash from the ``room-info.json``
files (``HSETNX``; a room given back gets its ``invited`` set too), the ``conversations`` set
from the ``direct/`` directories, and every room's and conversation's ``archived`` (its
file's last durable seq), so a room opened again (``ROOM_OPEN``) starts above its file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chat_protocol import ProtocolError, room_key, room_name
from chat_tracker.core.places import RoomMeta
from chat_tracker.journal.redis_client import ARCHIVER, async_client
from chat_tracker.journal.redis_keys import HEARTBEAT_SECONDS, Keys
from chat_tracker.journal.redis_reader import StreamReader, stream_reader
from chat_tracker.replicas.archiver import ArchiverConfig
from chat_tracker.replicas.room_logs import (
    CONVERSATION_PATTERN,
    Entries,
    RoomLog,
    RoomLogStats,
    as_entries,
    fsync_path,
    open_room_log,
)
from chat_tracker.storage.log_pool import LogPool
from chat_tracker.storage.room_files import DIRECT_DIR, conversation_dir, read_room_infos, room_dir, write_room_info

__all__ = ["RoomArchiver"]

log = logging.getLogger("chat_tracker")

STREAMS_PER_READ = 100  # streams named in one XREAD
ROOM_BATCH = 100  # entries read from each stream at once
IDLE_SECONDS = 0.2  # after a round that found nothing: a quiet room's chat.log lags by this much
LOG_DESCRIPTORS = 32  # the rooms' and conversations' chat.log files open at once
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 2.0
_UNSEEN = "\0unseen"  # the default room's epoch before the first look (never a real one)


class RoomArchiver:
    """Every room's and conversation's stream in, its chat.log out; what Redis lost, given back."""

    def __init__(self, config: ArchiverConfig) -> None:
        self.config = config
        self.keys = Keys(config.prefix)
        self.stats = RoomLogStats()
        self.logs: dict[str, RoomLog] = {}  # by room key ("#dev") or conversation name ("@alice+bob")
        self._infos: dict[str, RoomMeta] = {}  # by room key: what each room-info.json holds
        self._maintenance = ThreadPoolExecutor(1, thread_name_prefix="rooms-log-maintenance")
        self._pool = LogPool(LOG_DESCRIPTORS)
        self._unreadable: set[str] = set()  # what was logged as unreadable already (once each)
        self._epoch_seen = _UNSEEN  # the default room's epoch when the rooms were last given back
        self._discover_at = 0.0
        self._stopping = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aioredis.Redis = async_client(config.redis_url, config.redis_password, ARCHIVER)
        # The rounds' XREADs on a lean connection, as the default room's (redis-py's parser was their cost).
        self._reader: StreamReader = stream_reader(config.redis_url, config.redis_password, self._client, ARCHIVER)
        self._open_kept()

    def _open_kept(self) -> None:
        """Every room and conversation kept in the data dir: their files are what Redis gets back."""
        data_dir = self.config.data_dir
        metas = read_room_infos(data_dir)
        self._infos = {room_key(meta.name): meta for meta in metas}
        direct = data_dir / DIRECT_DIR
        listed = sorted(direct.iterdir()) if direct.is_dir() else []
        conversations = [f"@{path.name}" for path in listed if path.is_dir()]
        self._adopt(self._open_logs(metas, [name for name in conversations if CONVERSATION_PATTERN.fullmatch(name)]))
        if self.logs:
            log.info("%d room(s) and conversation(s) kept in %s", len(self.logs), data_dir)

    def _open_logs(self, metas: list[RoomMeta], conversations: list[str]) -> list[tuple[str, RoomLog]]:
        """The logs of these rooms and conversations, opened (by room key or conversation name)."""
        data_dir, opened = self.config.data_dir, []
        wanted = [(room_key(m.name), m.name, room_dir(data_dir, m.name), self.keys.of_room(m.name)) for m in metas]
        wanted += [(n, n, conversation_dir(data_dir, n), self.keys.of_conversation(n)) for n in conversations]
        shared = (self._maintenance, self._pool)
        for key, name, directory, keys in wanted:
            try:
                opened.append((key, open_room_log(directory, name, keys, self.config.rotation, shared, self.stats)))
            except OSError as error:
                self._unreadable_once(name, f"Cannot open the chat.log of {name} ({error}); not archived")
        return opened

    def _adopt(self, opened: list[tuple[str, RoomLog]]) -> None:
        for key, room_log in opened:
            self.logs.setdefault(key, room_log)

    def _unreadable_once(self, what: str, message: str) -> None:
        if what not in self._unreadable:
            self._unreadable.add(what)
            log.error("%s", message)

    # --- the loop -------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Archive until ``stop``; the round in hand is finished first."""
        self._loop = asyncio.get_running_loop()
        try:
            await self._archive_until_stopped()
        finally:
            await self._reader.aclose()
            await self._client.aclose()
            await asyncio.to_thread(self._close)
            log.info("Rooms' archiver stopped (%d room(s) and conversation(s))", len(self.logs))

    def stop(self) -> None:
        """Ask the loop to end after the round in hand (callable from a signal handler)."""
        self._stopping = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _close(self) -> None:
        for room_log in self.logs.values():
            room_log.chat_log.close()
        self._maintenance.shutdown(wait=True)

    async def _archive_until_stopped(self) -> None:
        delay, down = BACKOFF_FIRST, False
        while not self._stopping:
            try:
                await self._client.ping()
                self._epoch_seen = _UNSEEN  # every (re)connection gives back what Redis may have lost
                if down:
                    log.info("The rooms' archiver goes on")
                delay, down = BACKOFF_FIRST, False
                while not self._stopping:
                    await self._step()
            except (RedisError, OSError) as error:
                if not down:
                    down = True
                    # The default room's archiver logs the outage (once); this one only says it waits.
                    log.info("The rooms' archiver waits for Redis (%s)", error)
                await self._pause(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _step(self) -> None:
        """Give back what Redis lost, pick up new rooms, read every stream once, make it durable, record."""
        await self._check_default_room()
        if time.monotonic() >= self._discover_at:
            await self._discover()
        await self._sync()  # a batch whose fsync failed before is made durable first
        found = await self._read_round()
        await self._record()
        if not found:
            await self._pause(IDLE_SECONDS)

    # --- reading --------------------------------------------------------------------------------------

    async def _read_round(self) -> bool:
        """Every stream read once, STREAMS_PER_READ at a time; True if any had entries."""
        logs = list(self.logs.values())
        found = False
        for start in range(0, len(logs), STREAMS_PER_READ):
            group = {room_log.keys.events: room_log for room_log in logs[start : start + STREAMS_PER_READ]}
            page = await self._reader.xread({k: v.cursor for k, v in group.items()}, ROOM_BATCH)
            batches = [(group[stream.decode()], entries) for stream, entries in page if entries]
            if batches:
                found = True
                await self._archive(batches)
        return found

    async def _archive(self, batches: list[tuple[RoomLog, Entries]]) -> None:
        """Write each batch to its file, unless its room turned out to be in a new epoch (read again)."""
        renewed = await self._check_epochs([room_log for room_log, _ in batches])
        for room_log, entries in batches:
            if room_log.name not in renewed:
                self._write(room_log, entries)
        await self._sync()

    def _write(self, room_log: RoomLog, entries: Entries) -> None:
        try:
            room_log.write(entries)
        except OSError as error:  # LogWriteError: nothing written, the batch is read again
            if not room_log.failing:
                room_log.failing = True
                log.error(
                    "Cannot write %s (%s); retrying, still at seq %d", room_log.chat_log.path, error, room_log.last_seq
                )
            return
        if room_log.failing:
            room_log.failing = False
            log.warning("%s is writable again; archived up to seq %d", room_log.chat_log.path, room_log.last_seq)

    async def _check_epochs(self, logs: list[RoomLog]) -> set[str]:
        """The names of the logs whose room is in a new epoch (Redis lost it): their stream is read anew."""
        pipe = self._client.pipeline(transaction=False)
        for room_log in logs:
            pipe.hmget(room_log.keys.room, ["epoch", "seq"])
        rooms: list[Any] = await pipe.execute()
        states = [
            (room_log, raw[0].decode(), int(raw[1] or 0)) for room_log, raw in zip(logs, rooms, strict=True) if raw[0]
        ]
        unchecked = [state for state in states if state[0].epoch is None]
        at_last = await self._entries_at_last([room_log for room_log, _, _ in unchecked])
        renewed: set[str] = set()
        for (room_log, epoch, seq), entries in zip(unchecked, at_last, strict=True):
            if room_log.same_stream(seq, entries):
                room_log.epoch = epoch
        for room_log, epoch, seq in states:
            if epoch != room_log.epoch:
                room_log.new_epoch(epoch, seq)
                renewed.add(room_log.name)
        return renewed

    async def _entries_at_last(self, logs: list[RoomLog]) -> list[Entries]:
        if not logs:
            return []
        pipe = self._client.pipeline(transaction=False)
        for room_log in logs:
            pipe.xrange(room_log.keys.events, f"{room_log.last_seq}-0", f"{room_log.last_seq}-0")
        replies: list[Any] = await pipe.execute()
        return [as_entries(reply) for reply in replies]

    # --- durability and Redis's record of it ----------------------------------------------------------

    async def _sync(self) -> None:
        """fsync every file written since its last fsync (one worker thread call for all of them)."""
        pending = [(room_log, room_log.last_seq) for room_log in self.logs.values() if room_log.unsynced]
        if not pending:
            return
        failed = await asyncio.to_thread(_fsync_all, [room_log.chat_log.path for room_log, _ in pending])
        for room_log, seq in pending:
            error = failed.get(room_log.chat_log.path)
            if error is None:
                room_log.durable = seq
            elif not room_log.failing:
                room_log.failing = True
                log.error(
                    "Cannot fsync %s (%s); retrying, durable up to seq %d",
                    room_log.chat_log.path,
                    error,
                    room_log.durable,
                )

    async def _record(self) -> None:
        """Each ``archived`` that moved, then each stream trimmed behind it (at most once a second each)."""
        pipe = self._client.pipeline(transaction=False)
        commands = 0
        for room_log in self.logs.values():
            if room_log.recorded != room_log.durable:
                pipe.set(room_log.keys.archived, room_log.durable)
                room_log.recorded = room_log.durable  # if the pipeline fails, the reconnection's give-back sets it
                commands += 1
            threshold = room_log.trim_due(self.config.keep_in_redis)
            if threshold is not None:
                pipe.xtrim(room_log.keys.events, minid=threshold, approximate=False)
                commands += 1
        if commands:
            await pipe.execute()

    # --- the rooms and conversations in Redis ---------------------------------------------------------

    async def _discover(self) -> None:
        """New rooms and conversations get their file; a room whose meta or invitations changed, its info."""
        self._discover_at = time.monotonic() + HEARTBEAT_SECONDS
        metas, conversations = await self._registry()
        # A room whose info or file failed before is tried again (logged once).
        changed = [meta for key, meta in metas.items() if self._infos.get(key) != meta or key not in self.logs]
        new = [name for name in conversations if name not in self.logs]
        if changed or new:
            self._adopt(await asyncio.to_thread(self._keep, changed, new))

    def _keep(self, metas: list[RoomMeta], conversations: list[str]) -> list[tuple[str, RoomLog]]:
        """(A worker thread, while the loop waits.) Write the rooms' info, then open the new logs."""
        written = []
        for meta in metas:
            try:
                write_room_info(self.config.data_dir, meta)
            except OSError as error:
                self._unreadable_once(f"info {meta.name}", f"Cannot write the info of {meta.name} ({error}); retrying")
                continue
            self._infos[room_key(meta.name)] = meta
            written.append(meta)
        return self._open_logs([meta for meta in written if room_key(meta.name) not in self.logs], conversations)

    async def _registry(self) -> tuple[dict[str, RoomMeta], list[str]]:
        """The rooms (with their invitations) and the conversations Redis knows of."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self.keys.rooms)
        pipe.smembers(self.keys.conversations)
        rooms, members = await pipe.execute()
        metas = [meta for key, raw in rooms.items() if (meta := self._meta_of(key.decode(), raw)) is not None]
        pipe = self._client.pipeline(transaction=False)
        for meta in metas:
            pipe.smembers(self.keys.of_room(meta.name).invited)
        invited: list[set[bytes]] = await pipe.execute() if metas else []
        kept = {
            room_key(m.name): replace(m, invited=frozenset(k.decode() for k in i))
            for m, i in zip(metas, invited, strict=True)
        }
        names = sorted(name.decode() for name in members)
        for name in names:
            if not CONVERSATION_PATTERN.fullmatch(name):
                self._unreadable_once(name, f"Redis names a conversation {name[:80]!r}: not one; not archived")
        return kept, [name for name in names if CONVERSATION_PATTERN.fullmatch(name)]

    def _meta_of(self, key: str, raw: bytes) -> RoomMeta | None:
        try:
            body = json.loads(raw)
            name = room_name(str(body["name"]))  # ProtocolError for anything but a room's name: a safe path
            return RoomMeta(name, str(body["owner"]), float(body["created"]), private=body.get("private") is True)
        except (ValueError, KeyError, TypeError, ProtocolError) as error:
            self._unreadable_once(key, f"The rooms hash's entry {key[:80]!r} is unreadable ({error}); not archived")
            return None

    # --- what Redis lost, given back ------------------------------------------------------------------

    async def _check_default_room(self) -> None:
        """The default room's epoch changed (or is gone) since the last look: Redis may have lost everything."""
        raw: Any = await self._client.hget(self.keys.room, "epoch")
        epoch = raw.decode() if raw is not None else ""
        if epoch != self._epoch_seen:
            await self._give_back()
            self._epoch_seen = epoch

    async def _give_back(self) -> None:
        """The rooms hash (and a room given back, its invitations), the conversations, every ``archived``."""
        metas = list(self._infos.values())
        pipe = self._client.pipeline(transaction=False)
        for meta in metas:
            pipe.hsetnx(self.keys.rooms, room_key(meta.name), _registry_entry(meta))
        added: list[Any] = await pipe.execute() if metas else []
        pipe = self._client.pipeline(transaction=False)
        for meta, new in zip(metas, added, strict=True):
            if new and meta.invited:  # only to a room Redis had lost: never an invitation withdrawn since
                pipe.sadd(self.keys.of_room(meta.name).invited, *sorted(meta.invited))
        for name, room_log in self.logs.items():
            if name.startswith("@"):
                pipe.sadd(self.keys.conversations, name)
            pipe.set(room_log.keys.archived, room_log.durable)
            room_log.recorded = room_log.durable
        await pipe.execute()
        if any(added):
            log.warning("Gave back %d room(s) Redis had lost (from their room-info.json)", sum(map(bool, added)))


def _registry_entry(meta: RoomMeta) -> str:
    body = {"name": meta.name, "owner": meta.owner, "created": meta.created, "private": meta.private}
    return json.dumps(body, separators=(",", ":"))


def _fsync_all(paths: list[Path]) -> dict[Path, OSError]:
    failed: dict[Path, OSError] = {}
    for path in paths:
        try:
            fsync_path(path)
        except OSError as error:
            failed[path] = error
    return failed
