"""The rooms besides the default one, kept on disk: each with its own journal on its own chat.log.

``core/rooms.py`` keeps the rooms by name and routes requests; this opens each room's
parts when a member makes it or the tracker starts (``<data-dir>/rooms/<name>/chat.log``,
rotated and kept as the default room's chat.log is, and ``room-info.json``), follows its
registered members into the account store as the default room's are followed
(``service/membership.py``), and closes them all at the end.

With ``--redis-url`` (replicas) the rooms and conversations are kept in Redis instead
(``service/replica_rooms.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chat_protocol import room_key
from chat_tracker.core.accounts import AccountStore
from chat_tracker.core.direct import Conversation, Directs
from chat_tracker.core.events import Event
from chat_tracker.core.places import RoomLimits, RoomMeta
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.room import Member, Room
from chat_tracker.core.rooms import Rooms
from chat_tracker.journal.local import LocalJournal
from chat_tracker.journal.protocol import Journal, JournalStats
from chat_tracker.service.membership import Memberships, OnRead, StoreQueue
from chat_tracker.service.settings import Settings
from chat_tracker.service.standalone import rotation_policy
from chat_tracker.storage.chatlog import ChatLog, DiscardingChatLog
from chat_tracker.storage.log_pool import LogPool
from chat_tracker.storage.room_files import conversation_dir, read_room_infos, room_dir, write_room_info
from chat_tracker.storage.rotation import RotatingLog

log = logging.getLogger("chat_tracker")

# Events of each conversation kept in memory: what a member who was away is shown at once (a JSON client
# pages further back with ``history``); conversations are many and small.
CONVERSATION_MEMORY = 500
LOG_DESCRIPTORS = 32  # at least (runtime/descriptors.py gives more when it can): part of RESERVED's 64


def room_limits(settings: Settings) -> RoomLimits:
    return RoomLimits(
        per_member=settings.max_rooms_per_member,
        total=settings.max_rooms,
        creations_per_hour=settings.room_creations_per_hour,
        creation_open=settings.room_creation == "open",
    )


class RoomHouse:
    """Opens, keeps and closes the rooms besides the default one of a single tracker."""

    def __init__(
        self,
        settings: Settings,
        policy: MemberPolicy,
        store: AccountStore | None,
        default: Room,
        log_descriptors: int = LOG_DESCRIPTORS,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.store = store
        self.journals: list[LocalJournal] = []
        self.memberships: dict[str, Memberships] = {}  # room key -> its registered members in the store
        self._loading: set[asyncio.Task[None]] = set()
        self._starting = False  # rooms opened now are the kept ones, at start: their members are read at once
        # Every room's and conversation's log: one maintenance thread (compression, retention) for all, and at
        # most ``log_descriptors`` files open at once (runtime/descriptors.py shares them out of the limit).
        self._maintenance = ThreadPoolExecutor(1, thread_name_prefix="rooms-log-maintenance")
        self._descriptors = LogPool(log_descriptors)
        self._rotation = rotation_policy(settings)  # one for every room's log: it never changes
        self._log_writes = JournalStats()  # every room's and conversation's chat.log writes, counted together
        # Every room's and conversation's writes to the account store (memberships, read positions): one queue.
        self._store_writes = StoreQueue(store)
        self.rooms = Rooms(default, self._open, room_limits(settings), settings.default_room)
        self.rooms.on_changed = self._keep
        self.directs = Directs(self._open_conversation, policy)
        self.directs.is_member = default.is_registered_member
        self.directs.is_muted = lambda name: default.moderation.muted_until(name) is not None
        self.directs.on_delivered = self._delivered
        self.directs.on_caught_up = self._caught_up
        self.directs.kept = lambda name: (conversation_dir(settings.data_dir, name) / "chat.log").exists()
        self.rooms.directs = self.directs
        self.default = default

    def start(self) -> None:
        """Open every room kept in the data dir (needs the event loop: each logs its start)."""
        metas = read_room_infos(self.settings.data_dir)
        self._starting = True
        try:
            self.rooms.restore(metas)
        finally:
            self._starting = False
        if metas:
            log.info("%d room(s) besides %s opened", len(metas), self.settings.default_room)

    def _journal(self, directory: Path, memory: int | None = None) -> LocalJournal:
        """A journal on ``directory``'s chat.log (made if new), rotated and kept as the default room's is.

        ``memory``: events kept in memory (default ``--history-size``); older ones are read from the log.
        """
        settings = self.settings
        history_size = settings.history_size if memory is None else min(memory, settings.history_size)
        log_class = DiscardingChatLog if settings.bench_disable_log else ChatLog
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        chat_log = RotatingLog(directory, log_class, self._rotation, executor=self._maintenance, pool=self._descriptors)
        report = chat_log.open()
        journal = LocalJournal(chat_log, last_seq=report.last_seq, history_size=history_size, stats=self._log_writes)
        journal.preload(chat_log.tail(min(history_size, report.last_seq)))
        self.journals.append(journal)
        return journal

    def _open_conversation(self, name: str) -> Journal:
        return self._journal(conversation_dir(self.settings.data_dir, name), CONVERSATION_MEMORY)

    def _delivered(self, conversation: Conversation, event: Event, reached: list[Member]) -> None:
        """A direct message is out: each registered one of the two is a member of the conversation, and has read it
        if it reached one of her connections (the sender has, by sending it)."""
        now, seq, name = time.time(), event.seq, conversation.name
        for party in (event.name, conversation.other(event.name)):
            if not self.default.is_registered_member(party):
                continue
            read = party == event.name or bool(reached)
            self._store_writes.write(
                functools.partial(_read_direct, name=party, conversation=name, seq=seq, now=now, read=read)
            )

    def _caught_up(self, name: str, conversation: str, seq: int) -> None:
        """Her welcome carried what she missed of ``conversation``: she has read it."""
        self._store_writes.write(
            functools.partial(_read_direct, name=name, conversation=conversation, seq=seq, now=time.time())
        )

    def _open(self, meta: RoomMeta) -> Room:
        """A room's journal on its chat.log, and the room on it (a new room's directory is made here)."""
        journal = self._journal(room_dir(self.settings.data_dir, meta.name))
        room = Room(journal, self.policy)
        room.owns_connections = False
        room.moderation = self.default.moderation  # the operators' mutes and bans hold in every room
        room.start(f"room {meta.name} opened")
        self._follow_members(room, meta)
        return room

    def _follow_members(self, room: Room, meta: RoomMeta) -> None:
        """The room's registered members are kept in the account store, and read from it."""
        memberships = Memberships(self.store, room, meta.name, self._store_writes)
        memberships.attach()
        self.memberships[room_key(meta.name)] = memberships
        on_read: OnRead = functools.partial(self.rooms.note_read, meta.name)
        if self._starting:  # before any connection: nobody can enter the room before its members are known
            memberships.load_now(on_read)
        else:
            task = asyncio.get_running_loop().create_task(memberships.load(on_read))
            self._loading.add(task)
            task.add_done_callback(self._loading.discard)

    def mark_read(self, room: str, name: str, seq: int) -> None:
        memberships = self.memberships.get(room_key(room))
        if memberships is not None:
            memberships.mark_read(name, seq)

    def _keep(self, meta: RoomMeta) -> None:
        """A room was made, or let someone in: its ``room-info.json`` now (small, and rare)."""
        try:
            write_room_info(self.settings.data_dir, meta)
        except OSError as error:
            log.error("Cannot write the info of room %s (%s): it is lost at the next restart", meta.name, error)

    def stop(self, note: str) -> None:
        """Every room logs its members' leaves and its stop (the default room closes the connections)."""
        self.rooms.shutdown(note)

    async def close(self) -> None:
        for journal in self.journals:
            await journal.close()
        for memberships in self.memberships.values():
            await memberships.flush()
        await self._store_writes.flush()


def _read_direct(store: AccountStore, name: str, conversation: str, seq: int, now: float, read: bool = True) -> None:
    """``name`` is a member of ``conversation`` (from seq 0: unread, if new), and has read up to ``seq`` if ``read``."""
    store.begin_membership(name, 0, now, conversation)
    if read:
        store.advance_read_position(name, seq, conversation)
