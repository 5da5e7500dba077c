"""The rooms besides the default one and the direct conversations of a replica, kept in Redis.

Each room and each conversation is a stream of its own with its own seq, under a hash-tagged
prefix (``{room:dev}:``, ``{dm:alice+bob}:``; ``journal/redis_keys.py``), shared by every replica
as the default room's stream is: a replica opens one when a member of its own enters it (or a
REST request names it), and from then on reads it with the others on one connection
(``journal/redis_hub.py``). So a replica reads only the rooms its members are in; the archiver
writes every room's log.

Which rooms there are is the ``rooms`` hash (name, owner, creation, private) and each room's
``invited`` set: a room made on one replica is entered on another, an invitation made on one
lets in on another. A direct message to a member served by another replica is read there
because the replica that delivered it (and saw she is not its member) puts a ``read`` nudge in
that replica's nudge stream; the conversation is opened there and the message delivered.

Opening a room is a few Redis calls made on the event loop with short timeouts (rare: at most
``--room-creations-per-hour`` a member, and once per room and replica); Redis away refuses it
with ``log_unavailable``. A replica reaped while cut off is reaped in every room it was in; Redis
restarted empty (a new epoch) closes every connection of the replica anyway (the default room
does), and its rooms and conversations are forgotten here and opened again when entered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from chat_protocol import Invited, RoomInfo, room_key, room_name
from chat_tracker.core.accounts import AccountStore
from chat_tracker.core.direct import Conversation
from chat_tracker.core.events import REPLICA_ID_SPAN, Event
from chat_tracker.core.places import RoomMeta
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.room import Member, Room
from chat_tracker.core.room.states import MemberState
from chat_tracker.errors import Refused
from chat_tracker.journal.redis_client import REDIS_ERRORS, ClientRole, sync_client
from chat_tracker.journal.redis_hub import HubJournal, StreamHub
from chat_tracker.journal.redis_keys import Keys, entries_of, event_of
from chat_tracker.journal.redis_scripts import REAP, ROOM_OPEN, SNAPSHOT
from chat_tracker.replicas.replica import RosterEntry, snapshot_of
from chat_tracker.service.lifecycle import restart_goodbye
from chat_tracker.service.rooms import CONVERSATION_MEMORY, RoomHouse
from chat_tracker.service.settings import Settings

log = logging.getLogger("chat_tracker")

# Opening a room waits this long at most for Redis: the whole replica waits with it (it runs on the loop).
OPENING = ClientRole(connect_timeout=0.5, read_timeout=0.5, decode_responses=True, redis_retries=False)
LISTING_SECONDS = 2.0  # how often the rooms not open here are counted again for ``rooms`` and ``GET /rooms``
SYNC_ERRORS = (redis.RedisError, OSError)


class ReplicaRooms(RoomHouse):
    """Opens, keeps and closes a replica's rooms besides the default one, and its conversations, in Redis."""

    def __init__(
        self,
        settings: Settings,
        policy: MemberPolicy,
        store: AccountStore | None,
        default: Room,
        place: tuple[int, str],
        gather: Callable[[], float],
    ) -> None:
        """``place``: this replica's number and the default room's epoch; ``gather``: ``coalescer.replica_gather``."""
        super().__init__(settings, policy, store, default)
        assert settings.redis_url is not None
        self.keys = Keys(settings.redis_prefix)
        self.replica, epoch = place
        self.streams: list[HubJournal] = []  # every room's and conversation's journal open here
        self.hub = StreamHub(
            settings.redis_url, settings.redis_password, self.keys, self.replica, epoch, gather, self._nudged
        )
        self._redis = sync_client(settings.redis_url, settings.redis_password, OPENING)
        self._invited: dict[
            str, frozenset[str]
        ] = {}  # room key -> its invited set as this replica last wrote or read it (frozen: shared, never copied)
        self._tasks: set[asyncio.Task[None]] = set()
        self.rooms.find = self._find
        self.directs.kept = self._conversation_kept
        self.directs.elsewhere = self._online_elsewhere
        self.directs.on_delivered = self._delivered_here
        self.rooms.tell_elsewhere = self._tell_invited

    def start(self) -> None:
        self.hub.start()
        self._spawn(self._count_rooms_forever())

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- which rooms there are ----------------------------------------------------------------

    def _find(self, name: str) -> RoomMeta | None:
        """The room called ``name`` as the rooms hash has it (None: no such room, or Redis away)."""
        try:
            raw = self._redis.hget(self.keys.rooms, room_key(name))
            invited = self._redis.smembers(self.keys.of_room(name).invited) if raw else set()
        except SYNC_ERRORS as error:
            log.warning("Redis: cannot look up room %s (%s)", name, error)
            return None
        if not isinstance(raw, str):
            return None
        try:
            body = json.loads(raw)
            meta = RoomMeta(
                name=room_name(str(body["name"])),
                owner=str(body["owner"]),
                created=float(body["created"]),
                private=body.get("private") is True,
                invited=frozenset(str(key) for key in invited),
            )
        except (ValueError, KeyError, TypeError) as error:  # not what a replica writes
            log.warning("Redis: the rooms hash's entry for %s is unreadable (%s)", name, error)
            return None
        self._invited[room_key(name)] = meta.invited
        return meta

    def _keep(self, meta: RoomMeta) -> None:
        """A room was made, or let someone in (or no longer): the rooms hash and its ``invited`` set say so."""
        key, keys = room_key(meta.name), self.keys.of_room(meta.name)
        before = self._invited.get(key, frozenset())
        try:
            if meta.invited - before:
                self._redis.sadd(keys.invited, *(meta.invited - before))
            if before - meta.invited:
                self._redis.srem(keys.invited, *(before - meta.invited))
        except SYNC_ERRORS as error:
            log.error("Redis: the invitations of room %s were not kept (%s)", meta.name, error)
            return
        self._invited[key] = meta.invited

    def _register(self, meta: RoomMeta) -> None:
        """The room in the rooms hash; made by another replica meanwhile: its meta is the one that counts."""
        body = {"name": meta.name, "owner": meta.owner, "created": meta.created, "private": meta.private}
        if self._redis.hsetnx(self.keys.rooms, room_key(meta.name), json.dumps(body)):
            return
        found = self._find(meta.name)
        if found is not None:
            meta.owner, meta.created, meta.private, meta.invited = (
                found.owner,
                found.created,
                found.private,
                found.invited,
            )

    # --- opening a room or a conversation -----------------------------------------------------------

    def _open(self, meta: RoomMeta) -> Room:
        """The room in Redis, read from now on by this replica, with every replica's members in it. Raises Refused."""
        try:
            self._register(meta)
            journal, roster = self._open_stream(self.keys.of_room(meta.name), self.settings.history_size)
        except SYNC_ERRORS as error:
            raise _unavailable(meta.name, error) from None
        self._invited.setdefault(room_key(meta.name), meta.invited)
        room = Room(journal, self.policy, shared=True, first_id=self.replica * REPLICA_ID_SPAN + 1)
        room.replica = self.replica
        room.owns_connections = False
        room.moderation = self.default.moderation  # the operators' mutes and bans hold in every room
        room.install([(m.member_id, m.name, m.since_seq, m.joined_at, m.replica, m.resumes) for m in roster])
        journal.on_refused, journal.on_duplicate, journal.on_control = room.refused, room.logged_before, room.control
        journal.on_skipped = lambda first, last: self._fell_behind(room, meta.name, first, last)
        room.replicas = journal
        journal.start()
        self._follow_members(room, meta)
        return room

    def _open_conversation(self, name: str) -> HubJournal:
        try:
            self._redis.sadd(self.keys.conversations, name)
            journal, _ = self._open_stream(self.keys.of_conversation(name), CONVERSATION_MEMORY)
        except SYNC_ERRORS as error:
            raise _unavailable(name, error) from None
        journal.start()
        return journal

    def _open_stream(self, keys: Keys, memory: int) -> tuple[HubJournal, list[RosterEntry]]:
        """Register in the stream's room (opening it in this epoch if new) and read where it stands."""
        epoch, client = self.hub.epoch, self._redis
        client.eval(
            ROOM_OPEN, 4, keys.room, keys.events, keys.archived, keys.replicas, epoch, self.replica, time.time()
        )
        client.sadd(self.keys.rooms_of(self.replica), keys.prefix)
        snapshot = client.eval(SNAPSHOT, 5, keys.room, keys.roster, keys.names, keys.moderation, keys.events)
        opened = snapshot_of(snapshot, "", 0, False)
        if opened.epoch != epoch:
            raise redis.ConnectionError("Redis restarted empty while the room opened")
        journal = HubJournal(
            self.hub, keys, replica=self.replica, last_seq=opened.seq, history_size=memory, read_after=opened.last_id
        )
        tail: Any = client.xrevrange(keys.events, max=f"{opened.seq}-0", min="-", count=memory)
        journal.preload([event_of(seq, fields) for seq, sub, fields in reversed(entries_of(tail)) if sub == 0])
        self.streams.append(journal)
        return journal, opened.roster

    def _conversation_kept(self, name: str) -> bool:
        try:
            return bool(self._redis.sismember(self.keys.conversations, name))
        except SYNC_ERRORS:
            return False

    def _fell_behind(self, room: Room, name: str, first: int, last: int) -> None:
        told = room.fell_behind(bye=restart_goodbye)
        log.warning("Room %s: events %d-%d skipped: %d member(s) here closed with 1012", name, first, last, told)

    # --- direct messages across replicas -------------------------------------------------------

    def _online_elsewhere(self, name: str) -> str | None:
        member = self.default.find(name)
        remote = member is not None and member.state in (MemberState.REMOTE, MemberState.REMOTE_AWAY)
        return member.name if remote and member is not None else None

    def _delivered_here(self, conversation: Conversation, event: Event, reached: list[Member]) -> None:
        """Read positions as on one tracker; and a recipient served by another replica is told to read it."""
        self._delivered(conversation, event, reached)
        to = conversation.other(event.name)
        member = self.default.find(to)
        if reached or member is None or member.state not in (MemberState.REMOTE, MemberState.REMOTE_AWAY):
            return
        body = {"c": "read", "n": conversation.name, "s": event.seq}
        self._spawn(self.hub.nudge(self.keys.nudge(member.owner), body))

    def _tell_invited(self, invited: Invited) -> None:
        member = self.default.find(invited.name)
        if member is not None and member.state in (MemberState.REMOTE, MemberState.REMOTE_AWAY):
            body = {"c": "invited", "r": invited.room, "n": invited.name, "b": invited.by}
            self._spawn(self.hub.nudge(self.keys.nudge(member.owner), body))

    def _nudged(self, body: dict[str, Any]) -> None:
        """Another replica asks: read a conversation (a direct message to a member served here), or tell a
        member served here of her invitation."""
        if body.get("c") == "invited":
            room, name, by = body.get("r"), body.get("n"), body.get("b")
            if isinstance(room, str) and isinstance(name, str) and isinstance(by, str):
                self.rooms.tell_invited(Invited(room, name, by), forward=False)
            return
        name, seq = body.get("n"), body.get("s")
        if body.get("c") != "read" or not isinstance(name, str) or not isinstance(seq, int):
            return
        if not name.startswith("@") or self.directs.is_open(name):
            return  # read here already: the message is delivered (or on its way) from this replica's own read
        try:
            conversation = self.directs.conversation(name)
        except Refused as refusal:
            log.warning("Cannot read conversation %s: %s", name, refusal)
            return
        missed = [event for event in conversation.journal.recent if event.seq >= seq]
        if missed:
            self.directs.deliver(conversation, missed)

    # --- the rooms not open here, for listings ---------------------------------------------------

    async def _count_rooms_forever(self) -> None:
        while True:
            try:
                await self._count_rooms()
            except REDIS_ERRORS:
                pass  # Redis away: the listing keeps the last counts; the journals say so
            except (ValueError, KeyError, TypeError) as error:  # a foreign entry in the rooms hash
                log.warning("Redis: the rooms hash holds an unreadable entry (%s); listing the others", error)
            await asyncio.sleep(LISTING_SECONDS)

    async def _count_rooms(self) -> None:
        client = self.hub.client
        listed: Any = await client.hgetall(self.keys.rooms)
        metas = [json.loads(raw) for raw in listed.values()]
        here = {room_key(place.meta.name) for place in self.rooms.places}
        others = [(room_name(str(body["name"])), body.get("private") is True) for body in metas]
        others = [(name, private) for name, private in others if room_key(name) not in here]
        pipe = client.pipeline(transaction=False)
        for name, _ in others:
            pipe.hlen(self.keys.of_room(name).roster)
            pipe.scard(self.keys.room_members(name))
        counts = await pipe.execute()
        elsewhere = {}
        for index, (name, private) in enumerate(others):
            online, registered = counts[2 * index], counts[2 * index + 1]
            elsewhere[room_key(name)] = RoomInfo(name, max(online, registered), online, private=private)
        self.rooms.elsewhere = elsewhere

    # --- a reaped replica, a new number, a new epoch ------------------------------------------------

    def reap(self, dead: int) -> None:
        """Replica ``dead`` was reaped in the default room: its members leave every room it was in, too."""
        self._spawn(self._reap(dead))

    async def _reap(self, dead: int) -> None:
        client = self.hub.client
        with contextlib.suppress(*REDIS_ERRORS):
            for prefix in await client.smembers(self.keys.rooms_of(dead)):
                keys = Keys(prefix.decode() if isinstance(prefix, bytes) else prefix)
                await client.eval(REAP, 5, keys.room, keys.events, keys.names, keys.roster, keys.replicas,
                                  self.hub.epoch, dead, "lost")  # fmt: skip
            await client.delete(self.keys.rooms_of(dead), self.keys.nudge(dead))

    def renumber(self, replica: int) -> None:
        """Registered again as ``replica`` (reaped while cut off): registered again in every room and conversation."""
        self.replica = replica
        self.hub.renumber(replica)
        for place in self.rooms.places:
            place.room.replica = replica
            place.room.renumber(replica * REPLICA_ID_SPAN + 1)
        for journal in self.streams:
            journal.renumber(replica)
        self._spawn(self._register_again([journal.keys for journal in self.streams]))

    async def _register_again(self, all_keys: list[Keys]) -> None:
        client, now = self.hub.client, time.time()
        with contextlib.suppress(*REDIS_ERRORS):
            for keys in all_keys:
                await client.eval(ROOM_OPEN, 4, keys.room, keys.events, keys.archived, keys.replicas,
                                  self.hub.epoch, self.replica, now)  # fmt: skip
                await client.sadd(self.keys.rooms_of(self.replica), keys.prefix)

    def reset(self, epoch: str) -> None:
        """Redis lost everything (a new epoch): every room and conversation here is forgotten, opened again later."""
        for journal in self.streams:
            journal.drop()
        self.streams.clear()
        self.rooms.forget()
        self.directs.close_all()
        self.memberships.clear()
        self._invited.clear()
        self.hub.epoch = epoch

    async def close(self) -> None:
        await asyncio.gather(*(journal.close() for journal in self.streams))  # each waits at most SYNC_TIMEOUT
        await super().close()
        for task in list(self._tasks):
            task.cancel()
        await self.hub.close()
        self._redis.close()


def _unavailable(name: str, error: Exception) -> Refused:
    log.error("Redis: cannot open %s (%s)", name, error)
    return Refused("log_unavailable", f"{name} cannot be opened right now (Redis is unreachable); try again later")
