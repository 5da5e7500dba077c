"""The tracker's rooms: the default room every member is in, the others by name, and who is in which.

Each room is a ``core/room`` ``Room`` with its own journal (its own ``seq`` and log):
this module only keeps them by name, opens a new one when a member asks for it
(``open_room``, given by the service, which makes its journal and log), and routes a
member's requests to the room they name. A member is one connection's member of the
default room (the name is claimed there, once); in every other room she enters she has a
member of that room with the same name and the same outbox, so one socket receives every
room's events, each tagged with its room (``room_dialects.py``).

A room besides the default one ends no connection: leaving it (``part``) or being
dropped from it leaves the socket open. When the connection ends, its members of the
other rooms leave with the same reason (a registered member only goes offline there,
and comes back to those rooms when she signs in again: ``rejoin``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from chat_protocol import DEFAULT_ROOM, Invited, RoomInfo, name_key, room_key
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.catchup import catch_up
from chat_tracker.core.dialects import JSON, PLAIN, Dialect
from chat_tracker.core.direct import DIRECT_PREFIX, Directs
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.places import Place, RoomLimits, RoomMeta
from chat_tracker.core.ratelimit import KeyedBuckets
from chat_tracker.core.room import Member, Room
from chat_tracker.core.room_dialects import invitation_frame, room_dialect
from chat_tracker.core.signin import AccountChecked, Verdict
from chat_tracker.errors import Refused

HOUR = 3600.0


OpenRoom = Callable[[RoomMeta], Room]


class Rooms:
    """The rooms of one tracker by name, and each connection's members in the rooms besides the default."""

    def __init__(
        self,
        default: Room,
        open_room: OpenRoom,
        limits: RoomLimits | None = None,
        default_name: str = DEFAULT_ROOM,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.default = default
        self.default_name = default_name
        self.limits = limits or RoomLimits()
        self._open_room = open_room
        self._clock = clock
        self._places: dict[str, Place] = {}  # room key -> place
        self._in: dict[int, dict[str, Member]] = {}  # default-room member id -> room key -> its member there
        self._creations = KeyedBuckets(self.limits.creations_per_hour / HOUR, max(1, self.limits.creations_per_hour))
        self._default_dialects: dict[tuple[str, bool], Dialect] = {}
        # A registered member's connection ended: where each of her rooms stood (name key, room key -> seq), so
        # that entering it again (a resume, another sign-in) catches her up from there, as the store would.
        self._offline_at: dict[tuple[str, str], int] = {}
        self._coming_back: dict[int, tuple[tuple[str, int], ...]] = {}  # member id -> her rooms, once welcomed
        self.directs: Directs | None = None  # direct messages (core/direct.py), when the tracker keeps them
        default.on_welcomed = self._welcomed
        self.on_changed: Callable[[RoomMeta], None] | None = None  # a room was made, or let someone in: keep it
        # Replicas: a room another replica made (the shared list of rooms), as it is now; and the rooms not open
        # here, as that list counts them (room key -> its listing), kept by the service.
        self.find: Callable[[str], RoomMeta | None] | None = None
        self.elsewhere: dict[str, RoomInfo] = {}
        self.tell_elsewhere: Callable[[Invited], None] | None = None  # an invitation for a member served elsewhere

    # --- which rooms there are -------------------------------------------------------------

    def restore(self, metas: Iterable[RoomMeta]) -> None:
        """The rooms kept from before (at start): each opened again."""
        for meta in metas:
            key = room_key(meta.name)
            if key != room_key(self.default_name) and key not in self._places:
                self._places[key] = Place(meta, self._open_room(meta))

    def is_default(self, name: str | None) -> bool:
        return name is None or room_key(name) == room_key(self.default_name)

    def place(self, name: str) -> Place | None:
        """The room called ``name`` (on replicas, one another replica made is opened here now), or None."""
        return self._places.get(room_key(name)) or self._found(name)

    def _found(self, name: str) -> Place | None:
        meta = self.find(name) if self.find is not None and not self.is_default(name) else None
        if meta is None:
            return None
        self._places[room_key(meta.name)] = place = Place(meta, self._open_room(meta))
        return place

    def _may_enter(self, place: Place, member: Member) -> bool:
        """May ``member`` enter the private room ``place``? On replicas, an invitation (or a removal) made on
        another counts."""
        fresh = self.find(place.meta.name) if self.find is not None else None  # as the shared list has it now
        if fresh is not None:
            place.meta.invited = fresh.invited
        return _may_enter(place.meta, member)

    def forget(self) -> None:
        """Replicas: Redis lost every room (a new epoch); the connections are closing, the rooms open again later."""
        self._places, self._in, self._coming_back = {}, {}, {}

    @property
    def places(self) -> list[Place]:
        return list(self._places.values())

    def listing(self, member: Member | None = None) -> list[RoomInfo]:
        """The default room, then the public rooms and the private ones ``member`` is in, by name."""
        mine = self._in.get(member.id, {}) if member is not None else {}
        rooms = [info for key, info in self.elsewhere.items() if key not in self._places and not info.private]
        for key, place in self._places.items():
            joined = key in mine and not mine[key].left
            if place.meta.private and not joined:
                continue
            rooms.append(_info(place.meta.name, place.room, place.meta.private, joined))
        rooms.sort(key=lambda info: info.room)
        return [_info(self.default_name, self.default, False, member is not None), *rooms]

    # --- a member's rooms ----------------------------------------------------------------

    def member_in(self, member: Member, name: str) -> tuple[Room, Member] | None:
        """``member``'s room of that name and her member there; the default room is hers always."""
        if self.is_default(name):
            return self.default, member
        key = room_key(name)
        sub = self._in.get(member.id, {}).get(key)
        if sub is None or sub.left:
            return None
        return self._places[key].room, sub

    def enter(
        self,
        member: Member,
        name: str,
        base: Dialect,
        prefixed: bool,
        *,
        private: bool = False,
        read: int | None = None,
    ) -> tuple[Place, Member, bool]:
        """``member`` enters room ``name`` (made if new); its place, her member there, and whether she was in already.

        ``read``: a registered member coming back to a room she is a member of, her read position there.
        Raises Refused.
        """
        key = room_key(name)
        place = self.place(name)
        mine = self._in.setdefault(member.id, {})
        held = mine.get(key)
        if place is not None and held is not None and not held.left:
            return place, held, True
        if sum(1 for m in mine.values() if not m.left) >= self.limits.per_member:
            raise Refused("too_many_rooms", f"you are in {self.limits.per_member} rooms already: /part one first")
        if place is None:
            place = self._create(member, name, private)
        elif place.meta.private and read is None and not self._may_enter(place, member):
            raise Refused("no_such_room", f"there is no room {name} (a private room lets in only those invited)")
        if read is None and member.registered:
            read = self._offline_at.pop((member.key, key), None)
        signed_in = AccountChecked(Verdict.SIGNED_IN, member.name, read=read) if member.registered else None
        place.room.make_way(member.name)  # replicas: her hold there from an earlier connection ends
        sub = place.room.join(
            member.name, place.dialect(base, prefixed), member.outbox, member.address, None, signed_in
        )
        sub.allowance = member.allowance  # one rate limit per member, however many rooms she speaks in
        mine[key] = sub
        if member.registered:
            self._bring_devices(member, place, signed_in)
        return place, sub, False

    def _bring_devices(self, member: Member, place: Place, signed_in: AccountChecked | None) -> None:
        """Her other connections (devices of her account) are in the room she entered, too: as extra connections."""
        key = room_key(place.meta.name)
        for other in self.directs.online(member.name) if self.directs is not None else ():
            theirs = self._in.setdefault(other.id, {})
            if other is member or (key in theirs and not theirs[key].left):
                continue
            base = JSON if other.dialect.name == JSON.name else PLAIN
            dialect = place.dialect(base, prefixed=True)
            extra = place.room.join(other.name, dialect, other.outbox, other.address, None, signed_in)
            extra.allowance = other.allowance
            theirs[key] = extra

    def note_read(self, room: str, name: str, seq: int) -> None:
        """The store's read position of registered member ``name`` in ``room`` (at start): entering it again,
        she is caught up from there, unless her connection ended here since (that position is newer)."""
        self._offline_at.setdefault((name_key(name), room_key(room)), seq)

    def come_back(self, member: Member, rooms: tuple[tuple[str, int], ...]) -> None:
        """A registered member signed in: once her welcome is out, she is back in ``rooms`` (name, read position)."""
        self._coming_back[member.id] = rooms

    def _welcomed(self, member: Member) -> None:
        """Her join is delivered and her welcome not yet rendered: into her rooms, each listed in her welcome.

        Their ``entered`` frames follow the welcome: each room's join is appended now, so it is
        delivered by a later commit of that room's journal than the one that delivers this welcome.
        """
        rooms = self._coming_back.pop(member.id, None)
        if not rooms:
            return
        conversations = [(name, read) for name, read in rooms if name.startswith(DIRECT_PREFIX)]
        if conversations and self.directs is not None:
            member.after_welcome = tuple(self.directs.missed(member, conversations))
        infos: list[RoomInfo] = []
        for name, read in rooms:
            if name.startswith(DIRECT_PREFIX):
                continue
            if self.place(name) is None:
                continue  # removed since (by an operator): nothing to come back to
            try:
                place, _, _ = self.enter(member, name, member.dialect, True, read=read)
            except Refused:
                continue  # the limits changed since, or the tracker is stopping: she enters it again herself
            room = place.room
            unread = catch_up(member.name, read, room.delivered_seq + 1, room.journal.recent).unread
            infos.append(replace(_info(place.meta.name, room, place.meta.private, True), unread=unread))
        member.rooms = tuple(infos)

    def _create(self, member: Member, name: str, private: bool) -> Place:
        if not self.limits.creation_open:
            raise Refused("room_creation_closed", f"there is no room {name}, and only operators make rooms here")
        if len(self._places.keys() | self.elsewhere.keys()) >= self.limits.total:
            raise Refused("too_many_rooms", f"the tracker has {self.limits.total} rooms, its most")
        if not self._creations.take(member.key):
            message = f"you made {self.limits.creations_per_hour} rooms in the last hour, the most; try later"
            raise Refused("too_many_room_creations", message)
        meta = RoomMeta(name=name, owner=member.name, created=self._clock(), private=private)
        return self._add(meta)

    def create(self, name: str, owner: str, private: bool = False) -> Place:
        """An operator makes a room (whatever ``--room-creation`` says); the existing one if it exists."""
        place = self._places.get(room_key(name))
        return place if place is not None else self._add(RoomMeta(name, owner, self._clock(), private))

    def _add(self, meta: RoomMeta) -> Place:
        place = self._places[room_key(meta.name)] = Place(meta, self._open_room(meta))
        if self.on_changed is not None:
            self.on_changed(meta)
        return place

    def part(self, member: Member, name: str, farewell: str = "", reason: str = LeaveReason.PART) -> bool:
        """``member`` leaves room ``name`` (not the default), told ``farewell``; False if she was not in it."""
        key = room_key(name)
        sub = self._in.get(member.id, {}).pop(key, None)
        if sub is None or sub.left:
            return False
        place = self._places[key]
        said = sub.dialect.bye(reason, farewell or f"You left {place.meta.name}.")
        place.room.leave(sub, reason, close=(0, reason, (said,)))
        return True

    def invite(self, member: Member, name: str, guest: str) -> Place:
        """``member`` lets ``guest`` into room ``name``. Raises Refused."""
        held = self.member_in(member, name)
        place = self.place(name)
        if held is None or place is None:
            raise Refused("not_allowed", f"only the members of {name} invite to it")
        place.meta.invited = place.meta.invited | {name_key(guest)}
        if self.on_changed is not None:
            self.on_changed(place.meta)
        return place

    def tell_invited(self, invited: Invited, forward: bool = True) -> None:
        """The guest's connections here are told of her invitation; on replicas, the one serving her is told."""
        here = self.directs.online(invited.name) if self.directs is not None else []
        for connection in here:
            connection.outbox.push(invitation_frame(connection.dialect, invited, connection.name))
        if forward and not here and self.tell_elsewhere is not None:
            self.tell_elsewhere(invited)

    def remove(self, owner: Member, name: str, who: str) -> Place:
        """``owner`` takes ``who`` out of room ``name``: every connection of hers there; her membership ends.

        Raises Refused (``not_allowed`` unless ``owner`` made the room, ``no_such_member`` unless ``who`` is in it).
        """
        place = self.place(name)
        if place is None or self.member_in(owner, name) is None or name_key(place.meta.owner) != owner.key:
            raise Refused("not_allowed", f"only the owner of {name} removes members from it")
        key, target = room_key(name), name_key(who)
        place.meta.invited = place.meta.invited - {target}
        removed = [(mid, mine) for mid, mine in self._in.items() if key in mine and mine[key].key == target]
        remote = place.room.served_elsewhere(who)
        if not removed and remote is None and not place.room.is_registered_member(who):
            raise Refused("no_such_member", f"{who} is not in {place.meta.name}")
        for _, mine in removed:
            sub = mine.pop(key)
            said = sub.dialect.bye(LeaveReason.REMOVED, f"You were removed from {place.meta.name} by {owner.name}.")
            place.room.leave(sub, LeaveReason.REMOVED, close=(0, LeaveReason.REMOVED, (said,)))
        if remote is not None:  # replicas: the one serving her takes her out, at the removal's seq
            place.room.kick(remote, f"removed from {place.meta.name} by {owner.name}")
        elif not removed:  # a registered member who is offline: her membership ends all the same
            place.room.end_offline_membership(who, LeaveReason.REMOVED)
        if self.on_changed is not None:
            self.on_changed(place.meta)
        return place

    def write_in(self, member: Member, current: str, base: Dialect) -> None:
        """A plain-text member writes in ``current`` now: the other rooms' lines get their ``[#name] `` prefix."""
        current_key = room_key(current)
        member.dialect = self._default_dialect(base, prefixed=current_key != room_key(self.default_name))
        for key, sub in self._in.get(member.id, {}).items():
            sub.dialect = self._places[key].dialect(base, prefixed=key != current_key)

    def _default_dialect(self, base: Dialect, prefixed: bool) -> Dialect:
        kind = (base.name, prefixed)
        found = self._default_dialects.get(kind)
        if found is None:
            found = self._default_dialects[kind] = room_dialect(
                base, self.default_name, private=False, default=True, prefixed=prefixed
            )
        return found

    def connected(self, member: Member) -> None:
        """``member`` (of the default room) chats on a connection now: direct messages reach her there."""
        if self.directs is not None:
            self.directs.connected(member)

    def connection_ended(self, member: Member, outbox: Outbox, reason: str) -> None:
        """The connection with ``outbox`` is over: ``member`` leaves every other room she is in through it.

        A registered member only goes offline there, and entering again catches her up from where it stood.
        """
        self._coming_back.pop(member.id, None)
        if self.directs is not None and (member.outbox is outbox or member.left):
            self.directs.disconnected(member)
        mine = self._in.get(member.id)
        if not mine:
            return
        for key, sub in list(mine.items()):
            if sub.outbox is not outbox:
                continue  # resumed on another connection meanwhile: that one holds her rooms now
            del mine[key]
            if sub.left:
                continue
            room = self._places[key].room
            if sub.registered and not sub.extra:
                self._offline_at[(member.key, key)] = room.delivered_seq
            room.connection_lost(sub, outbox, reason, resumable=False)
        if not mine:
            del self._in[member.id]

    def shutdown(self, note: str) -> None:
        """The tracker stops: every room besides the default logs its members' leaves and its stop."""
        self._in.clear()
        for place in self._places.values():
            place.room.shutdown(note, bye=lambda member: ())


def _may_enter(meta: RoomMeta, member: Member) -> bool:
    return member.key in meta.invited or name_key(meta.owner) == member.key


def _info(name: str, room: Room, private: bool, joined: bool) -> RoomInfo:
    online = room.member_count
    return RoomInfo(room=name, members=online + room.offline_count, online=online, private=private, joined=joined)


def _no_new_rooms(meta: RoomMeta) -> Room:
    raise Refused("room_creation_closed", f"there is no room {meta.name}")


def single_room(default: Room) -> Rooms:
    """The default room alone: no other room can be made (a session built without the tracker's rooms)."""
    return Rooms(default, _no_new_rooms, RoomLimits(creation_open=False))
