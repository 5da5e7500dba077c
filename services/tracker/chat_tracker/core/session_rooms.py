"""A chatting connection's rooms: entering, leaving, listing, inviting, and saying something in one of them.

The chatting stage (``session_chat.py``) hands this every request that names a room,
and, in the plain-text dialect, every line starting with ``/`` that is not one of its
own commands. A JSON request names its room each time (``"room"``; none: the default
room); a plain-text connection writes in one room at a time, the room of its last
``/join``, and reads the others' lines with a ``[#name] `` prefix (``Rooms.write_in``).
"""

from __future__ import annotations

import logging

from chat_protocol import (
    INVITE_COMMAND,
    JOIN_COMMAND,
    MSG_COMMAND,
    REMOVE_COMMAND,
    ROOMS_COMMAND,
    ClientMessage,
    Entered,
    Invite,
    Invited,
    Join,
    ListRooms,
    Members,
    Part,
    ProtocolError,
    Remove,
    RoomInfo,
    RoomList,
    Say,
    Who,
    check_name,
    encode,
    name_key,
    room_name,
)
from chat_protocol.errors import ChatProtocolError
from chat_tracker.core.dialects import PLAIN, Dialect
from chat_tracker.core.events import JOIN, Event
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room import Member, Room
from chat_tracker.core.room_dialects import invitation_frame
from chat_tracker.core.rooms import Rooms
from chat_tracker.errors import Kicked, Refused

log = logging.getLogger("chat_tracker")

UNKNOWN_COMMAND_HELP = (
    "the commands are /join #room, /part [#room], /rooms, /invite NAME [#room], /remove NAME [#room], "
    "/msg NAME TEXT, /register, /devices, /signout ID; // sends a line that starts with /"
)


class RoomChat:
    """One connection's view of the rooms: where its plain-text lines go, and its requests about rooms."""

    __slots__ = ("current", "dialect", "outbox", "rooms")

    def __init__(self, rooms: Rooms, dialect: Dialect, outbox: Outbox) -> None:
        self.rooms = rooms
        self.dialect = dialect
        self.outbox = outbox
        self.current = rooms.default_name  # the plain-text dialect's room for its lines

    @property
    def writing_in_default(self) -> bool:
        return self.rooms.is_default(self.current)

    # --- the plain-text dialect's commands -----------------------------------------------------

    def command(self, member: Member, text: str) -> None:
        """A plain-text line starting with ``/`` that the chatting stage does not handle itself."""
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        if word == JOIN_COMMAND:
            room, _, flag = rest.partition(" ")
            self.join(member, room, private=flag.strip().lower() == "private")
        elif word == ROOMS_COMMAND and not rest:
            self.list_rooms(member)
        elif word == INVITE_COMMAND and rest:
            guest, _, room = rest.partition(" ")
            self.invite(member, room.strip() or self.current, guest)
        elif word == REMOVE_COMMAND and rest:
            who, _, room = rest.partition(" ")
            self.remove(member, room.strip() or self.current, who)
        elif word == MSG_COMMAND and " " in rest:
            to, _, said = rest.partition(" ")
            self.say(member, said.strip(), None, None, to)
        else:
            self._error("unknown_command", f"unknown command {word[:40]}: {UNKNOWN_COMMAND_HELP}")

    def say_here(self, member: Member, text: str) -> None:
        """A plain-text line: said in the room this connection writes in."""
        self.say(member, text, None, None if self.writing_in_default else self.current)

    def take_json(self, member: Member, request: ClientMessage) -> bool:
        """A JSON request about another room than the default, the rooms, or an invitation: carried out here."""
        if isinstance(request, Say) and (request.room is not None or request.to is not None):
            self.say(member, request.text, request.id, request.room, request.to)
        elif isinstance(request, Who) and request.room is not None:
            self.who(member, request.room)
        elif isinstance(request, Part) and request.room is not None and not self.rooms.is_default(request.room):
            self.part(member, request.room)
        elif isinstance(request, Join) and request.room is not None:
            self.join(member, request.room, request.private is True)
        elif isinstance(request, ListRooms):
            self.list_rooms(member)
        elif isinstance(request, Invite):
            self.invite(member, request.room, request.name)
        elif isinstance(request, Remove):
            self.remove(member, request.room, request.name)
        else:
            return False
        return True

    # --- requests naming a room (both dialects) ------------------------------------------------

    def join(self, member: Member, name: str, private: bool = False) -> None:
        """Enter room ``name`` (made if new) and, in plain text, write there from now on."""
        try:
            room = room_name(name)
        except ProtocolError as error:
            self._error(error.code, error.message)
            return
        if self.rooms.is_default(room):
            self._switch(member, self.rooms.default_name)
            self._plain_note(f"* Your lines go to {self.rooms.default_name}.")
            if self.dialect is not PLAIN:
                default = self.rooms.default
                event = _standing(default, member)
                self.outbox.push(
                    encode(Entered(self.rooms.default_name, event.seq, event.ts, member.name, default.names()))
                )
            return
        try:
            place, sub, already = self.rooms.enter(member, room, self.dialect, False, private=private)
        except Refused as refusal:
            self._error(refusal.code, refusal.message)
            return
        self._switch(member, place.meta.name)
        if already:  # no new join event: the answer is the room as it stands
            self.outbox.push_texts(sub.dialect.welcome(_standing(place.room, sub), place.room.limits, None))

    def part(self, member: Member, name: str) -> None:
        """Leave room ``name`` (not the default: ``session_chat`` ends the membership of that one)."""
        place = self.rooms.place(name)
        writing_there = place is not None and place is self.rooms.place(self.current)
        shown = place.meta.name if place is not None else name
        farewell = f"You left {shown}; your lines go to {self.rooms.default_name}." if writing_there else ""
        if not self.rooms.part(member, name, farewell):
            self._error("not_in_room", f"you are not in {name}")
            return
        if writing_there:
            self._switch(member, self.rooms.default_name)

    def say(self, member: Member, text: str, msg_id: str | None, name: str | None, to: str | None = None) -> None:
        if to is not None:
            self._direct(member, to, text, msg_id)
            return
        held = self._held(member, name, msg_id)
        if held is None:
            return
        room, sub = held
        try:
            room.say(sub, text, msg_id)
        except Kicked:
            log.warning("%s removed for flooding", member.name)
        except Refused as refusal:
            self.outbox.push(self.dialect.error(refusal.code, refusal.message, msg_id))

    def _direct(self, member: Member, to: str, text: str, msg_id: str | None) -> None:
        directs = self.rooms.directs
        try:
            check_name(to)
            if directs is None or name_key(to) == member.key:
                raise Refused("no_such_member", f"you cannot write to {to} alone here")
            directs.send(member, to, text, msg_id)
        except (ChatProtocolError, Refused) as refusal:
            self.outbox.push(self.dialect.error(refusal.code, str(refusal), msg_id))

    def who(self, member: Member, name: str | None) -> None:
        held = self._held(member, name)
        if held is None:
            return
        room, _ = held
        if not member.allowance.who.take():
            refusal = room.policy.who_refusal()
            self._error(refusal.code, refusal.message)
            return
        self.outbox.push(encode(Members(room.who(), None if self.rooms.is_default(name) else name)))

    def list_rooms(self, member: Member) -> None:
        listing = self.rooms.listing(member)
        if self.dialect is PLAIN:
            self.outbox.push_texts(_plain_listing(listing, self.current))
        else:
            self.outbox.push(encode(RoomList(listing)))

    def invite(self, member: Member, name: str, guest: str) -> None:
        try:
            room = room_name(name)
            check_name(guest)
            place = self.rooms.invite(member, room, guest)
        except (ChatProtocolError, Refused) as error:
            self._error(error.code, str(error))
            return
        invited = Invited(place.meta.name, guest, member.name)
        self.outbox.push(invitation_frame(self.dialect, invited, member.name))
        self.rooms.tell_invited(invited)

    def remove(self, member: Member, name: str, who: str) -> None:
        """The room's owner takes ``who`` out of it: everyone there sees her leave (``removed``)."""
        try:
            room = room_name(name)
            check_name(who)
            if self.rooms.is_default(room):
                raise Refused("not_allowed", "operators remove members from the default room (docs/moderation.md)")
            self.rooms.remove(member, room, who)
        except (ChatProtocolError, Refused) as error:
            self._error(error.code, str(error))

    # --- helpers -------------------------------------------------------------------------------

    def _held(self, member: Member, name: str | None, msg_id: str | None = None) -> tuple[Room, Member] | None:
        held = self.rooms.member_in(member, name or self.rooms.default_name)
        if held is None:
            self.outbox.push(self.dialect.error("not_in_room", f"you are not in {name}: /join {name} first", msg_id))
        return held

    def _switch(self, member: Member, room: str) -> None:
        if self.dialect is PLAIN:
            self.current = room
            self.rooms.write_in(member, room, self.dialect)

    def _plain_note(self, line: str) -> None:
        if self.dialect is PLAIN:
            self.outbox.push(line)

    def _error(self, code: str, message: str) -> None:
        self.outbox.push(self.dialect.error(code, message))


def _standing(room: Room, sub: Member) -> Event:
    """The room as it stands, as a join event for ``sub``'s welcome (no event is logged)."""
    return Event(room.delivered_seq, sub.joined_at, JOIN, sub.name, members=tuple(room.names()))


def _plain_listing(listing: list[RoomInfo], current: str) -> list[str]:
    lines = [f"* Rooms ({len(listing)}):"]
    for info in listing:
        notes = [f"{info.members} member{'s' if info.members != 1 else ''}", f"{info.online} online"]
        if info.private:
            notes.append("private")
        if info.room == current:
            notes.append("you write here")
        elif info.joined:
            notes.append("you are in it")
        lines.append(f"*   {info.room}: {', '.join(notes)}")
    return lines
