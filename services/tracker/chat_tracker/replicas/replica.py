"""One replica among several on one Redis: joining the room at start, staying alive, and noticing the others die.

At start (``open_replica``, before serving) a replica checks that Redis keeps what
it acknowledges (AOF with ``appendfsync always``, unless ``--redis-volatile``),
finds the room (or starts it: a new epoch), takes a replica number and reads the
room as it is at one seq (``SNAPSHOT``): who is in, who serves them, the bans and
mutes in force. Then, once a second (``ReplicaLink``):

- it renews its ``alive:<n>`` key; if its registration is gone (it was cut off so
  long that the others reaped it), it is fenced: its members are closed with 1012
  and resume elsewhere, and it registers again under a new number;
- it reads who else is alive; a replica dead for longer than the resume grace is
  reaped (``REAP``): each of its members who did not resume elsewhere leaves with
  reason ``lost``, exactly once, whichever replica runs it first;
- it reads how far the archiver has written (``/healthz`` reports a lag);
- it checks the room's epoch: a Redis that restarted empty has lost the room (a new
  one is opened above chat.log's last seq, once the archiver has written it back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import redis
from chat_tracker.core.tokens import new_epoch
from chat_tracker.errors import ConfigError
from chat_tracker.journal.redis_auth import auth_refused, redact
from chat_tracker.journal.redis_client import COMMAND, LINK, REDIS_ERRORS, async_client, sync_client
from chat_tracker.journal.redis_keys import ALIVE_TTL_MS, HEARTBEAT_SECONDS, Keys
from chat_tracker.journal.redis_scripts import HEARTBEAT, OPEN, REAP, REGISTER, SNAPSHOT

log = logging.getLogger("chat_tracker")

ARCHIVER_LAG_EVENTS = 10_000  # /healthz says the archiver is behind past this many events
# How long a replica that saw the room lost waits for the archiver to write ``archived`` back before it opens a new
# epoch without it: the archiver reconnects within its backoff (2 s at most); one that takes longer than an alive
# key's lifetime counts as dead anyway.
FLOOR_WAIT_SECONDS = ALIVE_TTL_MS / 1000
FLOOR_POLL_SECONDS = 0.05  # how often it looks meanwhile


@dataclass(frozen=True)
class RosterEntry:
    member_id: int
    name: str
    since_seq: int
    joined_at: float
    replica: int
    resumes: int = 0  # how many times it resumed: its latest token has this count


@dataclass(frozen=True)
class Opened:
    """The room as a starting replica finds it."""

    epoch: str
    seq: int
    key: bytes
    replica: int
    created: bool
    roster: list[RosterEntry] = field(default_factory=list)
    moderation: list[tuple[int, float, str]] = field(default_factory=list)  # (seq, time, body)
    previous_key: bytes | None = None  # the key ``rotate-key`` replaced: accepted for one grace
    last_id: str = ""  # the stream's last entry then (maybe a control entry after ``seq``'s event): read after it


def check_durability(client: redis.Redis, volatile: bool) -> None:
    """Refuse a Redis that may lose what it acknowledged (ConfigError), unless ``volatile``."""
    try:
        appendonly = client.config_get("appendonly").get("appendonly")
        appendfsync = client.config_get("appendfsync").get("appendfsync")
    except redis.ResponseError as error:
        if volatile:
            return
        raise ConfigError(f"cannot read Redis's persistence settings ({error}); start with --redis-volatile") from None
    if appendonly == "yes" and appendfsync == "always":
        return
    what = f"appendonly {appendonly}, appendfsync {appendfsync}"
    if volatile:
        log.warning("Redis has %s: --redis-volatile, so a Redis crash may lose the last second of chat", what)
        return
    raise ConfigError(
        f"Redis has {what}: a crash could lose messages members already saw. Set appendonly yes and "
        "appendfsync always, or start with --redis-volatile (may lose the last second on a Redis crash)"
    )


def open_replica(url: str, keys: Keys, volatile: bool, address: str, password: str | None) -> Opened:
    """Check Redis, find or start the room, register this replica and read the room (ConfigError/OSError)."""
    client = sync_client(url, password, COMMAND)
    try:
        client.ping()
    except redis.RedisError as error:
        refused = auth_refused(error, url, password)
        if refused is not None:
            raise refused from None
        raise OSError(f"cannot reach Redis at {redact(url)}: {error}") from None
    check_durability(client, volatile)
    _wait_if_lost(client, keys)
    epoch, seq, key_hex, created = client.eval(
        OPEN, 3, keys.room, keys.events, keys.archived, new_epoch(), 0, secrets.token_hex(32), time.time()
    )
    if int(created):
        log.warning("Redis holds no room yet: a new epoch %s starts after seq %s", epoch, seq)
    info = json.dumps({"address": address, "started": time.time()})
    replica = int(
        client.eval(REGISTER, 2, keys.replicas, keys.next_replica, info, ALIVE_TTL_MS, "", keys.alive(0)[:-1])
    )
    snapshot = client.eval(SNAPSHOT, 5, keys.room, keys.roster, keys.names, keys.moderation, keys.events)
    previous_hex = client.hget(keys.room, "previous_key")
    client.close()
    opened = snapshot_of(snapshot, key_hex, replica, bool(int(created)))
    if isinstance(previous_hex, str) and previous_hex:
        opened = replace(opened, previous_key=bytes.fromhex(previous_hex))
    return opened


def _wait_if_lost(client: redis.Redis, keys: Keys) -> None:
    """Starting while running replicas wait for the archiver after a lost room: wait with them, as long.

    Without this a replica started right after a wipe (nothing tells it from a new Redis) opens the
    room after seq 0, the waiting ones join that room, and the archiver refuses seqs chat.log holds.
    """
    if client.exists(keys.room) or not client.exists(keys.room_lost):
        return
    log.warning("Redis lost the room moments ago: waiting up to %g s for the archiver", FLOOR_WAIT_SECONDS)
    deadline = time.monotonic() + FLOOR_WAIT_SECONDS
    while time.monotonic() < deadline and not client.exists(keys.archived, keys.room):
        time.sleep(FLOOR_POLL_SECONDS)  # before serving: nothing else runs in this process yet


def snapshot_of(snapshot: list[object], key_hex: str, replica: int, created: bool) -> Opened:
    epoch, seq, roster_flat, names_flat, moderation, last_id = snapshot
    assert isinstance(roster_flat, list) and isinstance(names_flat, list) and isinstance(moderation, list)
    owners = {int(value.split(":")[0]): int(value.split(":")[1]) for value in names_flat[1::2]}
    roster = []
    for member_id, raw in zip(roster_flat[0::2], roster_flat[1::2], strict=True):
        body = json.loads(raw)
        roster.append(
            RosterEntry(
                int(member_id),
                body["name"],
                int(body["since"]),
                float(body["joined"]),
                owners.get(int(member_id), 0),
                int(body.get("resumes", 0)),
            )
        )
    roster.sort(key=lambda entry: entry.since_seq)
    entries = [json.loads(raw) for raw in moderation]
    return Opened(
        epoch=str(epoch),
        seq=int(str(seq)),
        key=bytes.fromhex(key_hex),
        replica=replica,
        created=created,
        roster=roster,
        moderation=[(int(entry["seq"]), float(entry["t"]), str(entry["e"])) for entry in entries],
        last_id=str(last_id),
    )


@dataclass
class ReplicaHealth:
    """What ``/healthz`` says of Redis and the archiver."""

    redis: bool = True
    archiver_alive: bool = False
    archived_seq: int = 0
    dead_replicas: frozenset[int] = frozenset()

    def archiver_lag(self, last_seq: int) -> int:
        return max(0, last_seq - self.archived_seq)


class ReplicaLink:
    """The once-a-second work of a replica: heartbeat, the others' liveness, reaping, the archiver, the epoch."""

    def __init__(
        self,
        url: str,
        keys: Keys,
        replica: int,
        epoch: str,
        grace: float,
        *,
        on_fenced: Callable[[], None],
        on_epoch_lost: Callable[[str, int, bytes, int], None],  # epoch, seq, key, replica
        last_seq: Callable[[], int],
        on_dead: Callable[[frozenset[int]], None],
        on_unreachable: Callable[[str], None],
        key: bytes,
        on_key_rotated: Callable[[bytes], None],
        password: str | None,
    ) -> None:
        self.keys = keys
        self.key_hex = key.hex()  # the resume-token key: ``rotate-key`` changes it in Redis
        self._on_key_rotated = on_key_rotated
        self.replica = replica
        self.epoch = epoch
        self.grace = grace
        self.health = ReplicaHealth()
        self._client = async_client(url, password, LINK)
        self._on_fenced = on_fenced
        self._on_epoch_lost = on_epoch_lost
        self._last_seq = last_seq
        self._on_dead = on_dead
        self._on_unreachable = on_unreachable
        self._info = json.dumps({"started": time.time()})
        self._dead_since: dict[int, float] = {}
        self._reachable_since = time.monotonic()  # Redis answered continuously since then
        self._archiver_seen = False  # the room has an archiver (its alive key was seen): a lost room waits for it
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.on_reaped: Callable[[int], None] | None = None  # a dead replica's members left: the rooms follow

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._forever())

    async def stop(self, *, deregister: bool) -> None:
        """Stop; with ``deregister``, drop the alive key at once so the others reap what is left after the grace."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if deregister:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._client.delete(self.keys.alive(self.replica))
        await self._client.aclose()

    async def _forever(self) -> None:
        while not self._stopped:
            started = time.monotonic()
            try:
                await self._beat()
            except REDIS_ERRORS as error:
                if self.health.redis:
                    log.error("Redis unreachable from the replica link: %s", error)
                self.health.redis = False
                self._on_unreachable(str(error))  # requests are refused now, not after the reader's timeout
            await asyncio.sleep(max(0.05, HEARTBEAT_SECONDS - (time.monotonic() - started)))

    async def _beat(self) -> None:
        client, keys = self._client, self.keys
        epoch, key_hex = await client.hmget(keys.room, ["epoch", "key"])  # strings: decode_responses
        epoch = epoch if isinstance(epoch, str) else None
        if epoch != self.epoch:
            await self._epoch_lost(epoch)
            return
        if isinstance(key_hex, str) and key_hex and key_hex != self.key_hex:
            self.key_hex = key_hex
            log.warning("The resume key was rotated in Redis: tokens under the old one resume for one grace")
            self._on_key_rotated(bytes.fromhex(key_hex))
        alive = await client.eval(HEARTBEAT, 2, keys.replicas, keys.alive(self.replica), self.replica, ALIVE_TTL_MS)
        if not self.health.redis:
            log.warning("Redis is reachable again from the replica link")
            self._reachable_since = time.monotonic()
        self.health.redis = True
        if not int(alive):
            log.error("Replica %d was reaped while cut off from Redis: its members must resume", self.replica)
            self._on_fenced()
            return
        await self._watch_others()
        archived = await client.get(keys.archived)
        self.health.archived_seq = int(archived or 0)
        self.health.archiver_alive = bool(await client.exists(keys.archiver))
        self._archiver_seen = self._archiver_seen or self.health.archiver_alive

    async def _watch_others(self) -> None:
        client, keys = self._client, self.keys
        replicas = [int(number) for number in await client.hkeys(keys.replicas)]
        now = time.monotonic()
        # After an outage every replica's key has expired: the others get a key's lifetime to
        # renew theirs before any of them counts as dead.
        settled = now - self._reachable_since >= ALIVE_TTL_MS / 1000
        dead: set[int] = set()
        for number in replicas:
            if number == self.replica or await client.exists(keys.alive(number)):
                self._dead_since.pop(number, None)
                continue
            if not settled:
                continue
            dead.add(number)
            since = self._dead_since.setdefault(number, now)
            if now - since >= self.grace and await self._reap(number):
                self._dead_since.pop(number, None)
                dead.discard(number)
        if dead - self.health.dead_replicas:
            log.warning("Replica(s) %s stopped answering: their members are away", sorted(dead))
        if dead != self.health.dead_replicas:
            self.health.dead_replicas = frozenset(dead)
            self._on_dead(self.health.dead_replicas)

    async def _reap(self, number: int) -> bool:
        """Replica ``number`` is dead past the grace: its members leave (once, whoever reaps it). True if reaped."""
        keys = self.keys
        reaped = await self._client.eval(
            REAP, 6, keys.room, keys.events, keys.names, keys.roster, keys.replicas, keys.alive(number),
            self.epoch, number, "lost",
        )  # fmt: skip
        if int(reaped) < 0:
            return False
        log.warning("Replica %d is gone: %d of its members left (lost)", number, int(reaped))
        if self.on_reaped is not None:
            self.on_reaped(number)
        return True

    async def _epoch_lost(self, epoch: str | None) -> None:
        """Redis restarted empty (or the room was reset): start (or join) the new epoch."""
        client, keys = self._client, self.keys
        if epoch is None and self._archiver_seen:
            await self._wait_for_archived()
        floor = max(self._last_seq(), self.health.archived_seq)
        new, seq, key_hex, created = await client.eval(
            OPEN, 3, keys.room, keys.events, keys.archived, new_epoch(), floor, secrets.token_hex(32), time.time()
        )
        # Registered in the new room before the replica hears of it: nothing it writes there goes under its old
        # number, which is unknown there (FENCED) or, worse, another replica's already (whose batches would be DUP).
        replica = await self.register()
        log.error(
            "Redis lost the room (epoch %s is now %s%s): members start again from seq %s; "
            "earlier sessions cannot resume",
            self.epoch,
            new,
            ", created here" if int(created) else "",
            seq,
        )
        self.epoch = str(new)
        self.key_hex = str(key_hex)
        self._on_epoch_lost(str(new), int(seq), bytes.fromhex(key_hex), replica)

    async def _wait_for_archived(self) -> None:
        """Redis restarted empty: give the archiver time to write ``archived`` (chat.log's last seq) back first.

        ``OPEN`` starts a new room above ``archived``; without it, only above what this replica delivered,
        which may be below chat.log's last seq (this replica was behind, or Redis was lost again before it
        read the room opened after the first loss): the archiver would refuse those seqs, as chat.log holds
        them already, and acknowledged messages would be lost. Done waiting as soon as ``archived`` is back or
        another replica opened the room; bounded, so a dead archiver holds the room up only this long.
        """
        keys = self.keys
        if await self._client.exists(keys.archived, keys.room):
            return
        # A replica starting meanwhile cannot tell a wiped Redis from a new one: this tells it to wait too.
        await self._client.set(keys.room_lost, str(self.replica), px=int(FLOOR_WAIT_SECONDS * 2000))
        log.warning(
            "Redis lost the room: waiting up to %g s for the archiver to restore chat.log's last seq",
            FLOOR_WAIT_SECONDS,
        )
        deadline = time.monotonic() + FLOOR_WAIT_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(FLOOR_POLL_SECONDS)
            if await self._client.exists(keys.archived, keys.room):
                return
        log.error(
            "The archiver did not restore chat.log's last seq within %g s: a new epoch starts after seq %d, "
            "and if chat.log holds more, the archiver refuses the new epoch's seqs up to its last",
            FLOOR_WAIT_SECONDS,
            max(self._last_seq(), self.health.archived_seq),
        )

    async def register(self) -> int:
        """Register under a new replica number (after being reaped, or in a new epoch)."""
        keys = self.keys
        replica = await self._client.eval(
            REGISTER, 2, keys.replicas, keys.next_replica, self._info, ALIVE_TTL_MS, "", keys.alive(0)[:-1]
        )
        self.replica = int(replica)
        return self.replica
