"""Registered members' membership, kept in the account store as the room's events make it.

The room says who joins and leaves (``on_join``, ``on_leave``); this keeps the store in
step: a registered member's membership begins when she first joins under her account
(or registers), her going offline is recorded as her last seen (and, for the plain-text
dialect, which shows everything it is sent, as her read position), and a part or a ban
ends it. The writes go through one queue, in order, off the event loop, so a chatting
member never waits for the disk; read positions coming in faster than the store takes
them are coalesced (the newest per account wins, and it only ever moves forward).
At start the room learns who is a member while offline (``load``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from chat_protocol.reasons import LeaveReason
from chat_tracker.core.accounts import DEFAULT_ROOM, AccountStore
from chat_tracker.core.dialects import PLAIN
from chat_tracker.core.room import Member, Room
from chat_tracker.core.room.member import MEMBERSHIP_ENDS
from chat_tracker.errors import AccountStoreError, UnknownAccount

log = logging.getLogger("chat_tracker")

Write = Callable[[AccountStore], object]
OnRead = Callable[[str, int], None]  # (name, her read position): told at start, for a room besides the default


class Memberships:
    """The account store's side of membership, for one room."""

    def __init__(
        self, store: AccountStore | None, room: Room, room_name: str = DEFAULT_ROOM, writer: StoreQueue | None = None
    ) -> None:
        self.store = store
        self.room = room
        self.room_name = room_name  # the store's name for it: DEFAULT_ROOM, or "#dev" (core/rooms.py)
        self._writer = StoreQueue(store) if writer is None else writer  # rooms besides the default share one
        self._reads: dict[str, int] = {}  # name -> newest read position not yet written

    def attach(self) -> None:
        """Follow the room's joins and leaves (after whatever the tracker already does with them)."""
        joined, left = self.room.on_join, self.room.on_leave
        self.room.on_offline_end = self.ended
        if joined is None and left is None:  # a room besides the default one: nothing else watches it
            self.room.on_join, self.room.on_leave = self.joined, self.left  # no closures: about 400 B a room less
            return

        def on_join(member: Member) -> None:
            if joined is not None:
                joined(member)
            self.joined(member)

        def on_leave(member: Member, reason: str) -> None:
            if left is not None:
                left(member, reason)
            self.left(member, reason)

        self.room.on_join, self.room.on_leave = on_join, on_leave

    async def load(self, on_read: OnRead | None = None) -> None:
        """Tell the room who its registered members are, so ``who`` lists the offline ones.

        ``on_read`` (a room besides the default) also learns each one's read position there: where
        entering the room again catches her up from (after a restart, her client enters it afresh).
        """
        if self.store is not None:
            self._restore(await asyncio.to_thread(self._read_members, self.store, on_read is not None), on_read)

    def load_now(self, on_read: OnRead | None = None) -> None:
        """``load``, at once: at start, before any connection is accepted, so nobody enters before it is done."""
        if self.store is not None:
            self._restore(self._read_members(self.store, on_read is not None), on_read)

    def _read_members(self, store: AccountStore, with_reads: bool) -> list[tuple[str, float, int]] | None:
        """Each registered member's name, last seen and (``with_reads``) read position; None if the store failed."""
        room = self.room_name
        try:
            members = store.memberships(room)
            return [(m.name, m.last_seen, store.read_position(m.name, room) if with_reads else 0) for m in members]
        except AccountStoreError as error:
            log.error("Could not read the members from the account store: %s", error)
            return None

    def _restore(self, members: list[tuple[str, float, int]] | None, on_read: OnRead | None) -> None:
        if members is None:
            return
        self.room.restore_roster([(name, last_seen) for name, last_seen, _ in members])
        if on_read is not None:
            for name, _, seq in members:
                on_read(name, seq)

    # --- what the room tells ------------------------------------------------------------

    def joined(self, member: Member) -> None:
        if member.registered and member.catch_up_after is None:  # not a member yet (new, or parted before)
            self.begin(member.name)

    def begin(self, name: str) -> None:
        """``name`` becomes a member, having read everything so far (registering, or joining after a part)."""
        seq, now, room = self.room.delivered_seq, time.time(), self.room_name
        self._write(lambda store: store.begin_membership(name, seq, now, room))

    def left(self, member: Member, reason: str) -> None:
        if not member.registered:
            return
        name = member.name
        room = self.room_name
        if reason == LeaveReason.BANNED and room == DEFAULT_ROOM:
            self.banned(name)
            return
        if reason in MEMBERSHIP_ENDS:
            self._reads.pop(name, None)
            self._write(lambda store: store.end_membership(name, room))
            return
        if member.dialect.name == PLAIN.name:  # it was sent everything up to here, and shows all it is sent
            self.mark_read(name, self.room.delivered_seq)
        now = time.time()
        self._write(lambda store: store.mark_seen(name, now, room))

    def ended(self, name: str, reason: str) -> None:
        """``name``'s membership ended while she was offline (removed from the room by its owner)."""
        room = self.room_name
        self._reads.pop(name, None)
        self._write(lambda store: store.end_membership(name, room))

    def banned(self, name: str) -> None:
        """A moderator banned ``name``: if it is an account, its membership ends and every device is signed out."""
        self._reads.pop(name, None)
        self._write(lambda store: store.end_membership(name))
        self._write(lambda store: store.remove_devices(name))

    def mark_read(self, name: str, seq: int) -> None:
        """``name`` has seen up to ``seq``: written soon, coalesced with any newer position before it is."""
        pending = self._reads.get(name)
        self._reads[name] = seq if pending is None else max(pending, seq)
        if pending is None:
            self._write(lambda store: self._flush_read(store, name))

    def _flush_read(self, store: AccountStore, name: str) -> None:
        seq = self._reads.pop(name, None)
        if seq is not None:
            store.advance_read_position(name, seq, self.room_name)

    def _write(self, write: Write) -> None:
        self._writer.write(write)

    async def flush(self) -> None:
        """Wait until every write queued so far is done (at shutdown, before the store closes)."""
        await self._writer.flush()


class StoreQueue:
    """Writes to the account store, one at a time and in order, off the event loop: nobody chatting waits for them.

    The queue and its worker exist only while writes are pending: a tracker has one of these per room,
    and thousands of quiet rooms would otherwise each keep a task and a queue (about 2.5 KiB) for nothing.
    """

    def __init__(self, store: AccountStore | None) -> None:
        self.store = store
        self._writes: deque[Write] | None = None
        self._worker: asyncio.Task[None] | None = None

    def write(self, write: Write) -> None:
        if self.store is None:
            return
        if self._writes is None:
            self._writes = deque()
        self._writes.append(write)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._drain(self.store, self._writes))

    async def _drain(self, store: AccountStore, writes: deque[Write]) -> None:
        try:
            while writes:
                write = writes.popleft()
                try:
                    await asyncio.to_thread(write, store)
                except UnknownAccount:
                    pass  # removed by an operator meanwhile: nothing of it to keep
                except AccountStoreError as error:
                    log.error("Could not update a membership in the account store: %s", error)
        finally:  # drained (or cancelled with the loop): the next write starts afresh
            self._writes = None
            self._worker = None

    async def flush(self) -> None:
        """Wait until every write queued so far is done (at shutdown, before the store closes)."""
        while self._worker is not None:
            await asyncio.shield(self._worker)
