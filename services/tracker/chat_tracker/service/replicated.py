"""The tracker as one replica of a room kept in Redis: the journal is the shared stream, the link keeps it registered.

At start (before the server listens) the replica opens the room in Redis
(``replicas/replica.py``): its epoch, seq, resume key, roster and bans. It has no
chat.log of its own (the archiver writes it); its journal is the Redis stream, and
its room lists every replica's members. Then it reacts to what its link notices:
this replica fenced (reaped while cut off: it registers again under a new number),
the room lost (Redis restarted empty: a new epoch, every member here closed with
1012), other replicas dead (their members shown away), the resume key rotated, and events
trimmed from the stream before this replica read them (a long freeze: every member
here closed with 1012, to resume with ``recovered: false`` and the exact ``gone``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from chat_tracker import __version__
from chat_tracker.core.events import REPLICA_ID_SPAN
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.room import Room
from chat_tracker.core.tokens import ResumeTokens
from chat_tracker.errors import LogWriteError
from chat_tracker.journal.protocol import Journal, Replication
from chat_tracker.journal.redis_keys import Keys, event_of
from chat_tracker.journal.redis_stream import RedisJournal
from chat_tracker.replicas.replica import Opened, ReplicaLink, open_replica
from chat_tracker.service.lifecycle import restart_goodbye, retire_previous_key
from chat_tracker.service.settings import Settings

Gather = Callable[[], float]  # seconds a replica gathers before a Redis call (core/coalescer.py replica_gather)
log = logging.getLogger("chat_tracker")


class RoomsInRedis(Protocol):
    """The replica's rooms besides the default one and its conversations (``service/replica_rooms.py``)."""

    def reap(self, dead: int) -> None: ...
    def renumber(self, replica: int) -> None: ...
    def reset(self, epoch: str) -> None: ...


class Replicated:
    """One replica's room in Redis: its journal (``Journal`` and ``Replication``), its room, its link."""

    chat_log = None  # the archiver writes chat.log

    def __init__(self, settings: Settings, url: str, policy: MemberPolicy, gather: Gather) -> None:
        keys = Keys(settings.redis_prefix)
        address = f"{settings.host}:{settings.port}"
        opened = open_replica(url, keys, settings.redis_volatile, address, settings.redis_password)
        log.info(
            "Replica %d of the room in Redis (%s, epoch %s, after seq %d)",
            opened.replica,
            keys.prefix,
            opened.epoch,
            opened.seq,
        )
        self.last_seq_at_start = opened.seq
        journal = _open_journal(url, keys, opened, settings, gather)
        self.journal: Journal = journal
        self.replication: Replication = journal
        self.room = self._open_room(opened, settings, policy)
        self.link = ReplicaLink(
            url,
            keys,
            opened.replica,
            opened.epoch,
            settings.resume_grace,
            on_fenced=self._fenced,
            on_epoch_lost=self._epoch_lost,
            last_seq=lambda: journal.last_seq,
            on_dead=self._replicas_dead,
            on_unreachable=journal.unreachable,
            key=opened.key,
            on_key_rotated=self._key_rotated,
            password=settings.redis_password,
        )
        self.link.on_reaped = self._reaped
        self.other_rooms: RoomsInRedis | None = None  # the tracker sets them

    def _reaped(self, dead: int) -> None:
        if self.other_rooms is not None:
            self.other_rooms.reap(dead)

    def _open_room(self, opened: Opened, settings: Settings, policy: MemberPolicy) -> Room:
        """The room as Redis has it: every replica's members, the bans and mutes in force."""
        room = Room(
            self.journal,
            policy,
            tokens=ResumeTokens(opened.key, opened.epoch, opened.previous_key),
            grace=settings.resume_grace,
            shared=True,
            first_id=opened.replica * REPLICA_ID_SPAN + 1,
        )
        room.replica = opened.replica
        room.install([(m.member_id, m.name, m.since_seq, m.joined_at, m.replica, m.resumes) for m in opened.roster])
        for seq, at, body in opened.moderation:
            event = event_of(seq, {"t": str(at), "e": body})
            room.moderation.apply(event.kind.value, event.name, event.details())
        replication = self.replication
        replication.on_control = room.control
        replication.on_refused = room.refused
        replication.on_duplicate = room.logged_before
        replication.on_skipped = self._fell_behind
        room.replicas = replication  # the room tells the others itself who moved here and who went away
        return room

    def start(self) -> None:
        """Start reading and writing the stream and beating; log the start (needs the event loop)."""
        self.journal.on_trouble = _on_redis_trouble
        self.replication.start()
        self.link.start()
        self.room.start(f"tracker {__version__} started (replica {self.link.replica})")
        retire_previous_key(self.room)
        log.info(
            "Room in Redis: %d member(s) in, continuing after seq %d", self.room.member_count, self.last_seq_at_start
        )

    def stopping(self) -> None:
        """The shutdown began: the link beats on until ``close`` (the others must not reap this replica yet)."""

    async def close(self) -> None:
        """After the journal is closed: the alive key goes at once, so the others reap whoever does not resume."""
        await self.link.stop(deregister=True)

    def _key_rotated(self, key: bytes) -> None:
        """``rotate-key`` gave the room in Redis a new key: issue under it, accept the old one for one grace."""
        old = self.room.tokens
        if old is None:
            return
        self.room.tokens = old.rotated(key)
        retire_previous_key(self.room)

    def _fenced(self) -> None:
        """This replica was reaped while cut off: its members' leaves are in the stream; register again."""
        asyncio.get_running_loop().create_task(self._register_again())

    async def _register_again(self) -> None:
        replica = await self.link.register()
        self._renumber(replica)
        log.warning("Registered again as replica %d", replica)

    def _renumber(self, replica: int) -> None:
        """Registered as ``replica``: the journal, the room's member ids and the other rooms follow."""
        self.replication.renumber(replica)
        self.room.replica = replica
        self.room.renumber(replica * REPLICA_ID_SPAN + 1)
        if self.other_rooms is not None:
            self.other_rooms.renumber(replica)

    def _epoch_lost(self, epoch: str, seq: int, key: bytes, replica: int) -> None:
        """Redis lost the room: close every connection here with 1012 and carry on in the new epoch as ``replica``.

        The link registered this replica in the new room first; the journal takes the number in the same step
        as the epoch, so none of its requests reaches the new room under the old one.
        """
        self.replication.restart_at(epoch, seq)
        if self.other_rooms is not None:
            self.other_rooms.reset(epoch)
        told = self.room.reset(bye=restart_goodbye)
        self.room.previous_tokens = self.room.tokens  # its members come back: joined again, recovered: false
        self.room.tokens = ResumeTokens(key, epoch)
        self._renumber(replica)
        log.error(
            "New epoch %s after seq %d: %d member(s) here were closed with 1012 and must join again (replica %d now)",
            epoch,
            seq,
            told,
            replica,
        )

    def _fell_behind(self, first: int, last: int) -> None:
        """The stream was trimmed past this replica: its members are told, never left with a silent gap."""
        told = self.room.fell_behind(bye=restart_goodbye)
        # The journal logged the gap as an ERROR; this says what was done about it.
        log.warning("Events %d-%d skipped: %d member(s) here closed with 1012, to resume told so", first, last, told)

    def _replicas_dead(self, dead: frozenset[int]) -> None:
        self.room.dead_replicas = dead


def _open_journal(url: str, keys: Keys, opened: Opened, settings: Settings, gather: Gather) -> RedisJournal:
    """The journal on the room's stream, from where the room is now."""
    return RedisJournal(
        url,
        keys,
        replica=opened.replica,
        epoch=opened.epoch,
        last_seq=opened.seq,
        history_size=settings.history_size,
        gather=gather,
        password=settings.redis_password,
        read_after=opened.last_id,
    )


def _on_redis_trouble(error: LogWriteError | None) -> None:
    if error is None:
        log.warning("Redis is writable again; pending requests written")
