"""How one room's events read to a member of several rooms: tagged with the room's name.

A room (``core/room``) renders its events through each member's ``Dialect``; it knows
nothing of other rooms. So a room besides the default one gives its members dialects that
say which room an event is from: JSON frames get a ``"room"`` field (appended to the
frame the event rendered once for everyone, so tagging costs one string join per batch),
and plain-text lines start with ``[#name] `` when the room is not the one the member
writes in. The default room's events are untagged in JSON (absent means the default
room, so one-room programs keep working), and prefixed in plain text only while the
member writes in another room.

Each variant is one object per room and kind, so the room's shared rendering (one per
dialect per batch) still serves every member that reads the room the same way.
"""

from __future__ import annotations

import json

from chat_protocol import Entered, Invited, Limits, Parted, encode, name_key
from chat_tracker.core.catchup import plain_lines
from chat_tracker.core.dialects import JSON, PLAIN, Dialect, ResumeOffer, SignedIn
from chat_tracker.core.events import Event
from chat_tracker.core.frames import text_frame


def tagged(frame: str, tag: str) -> str:
    """A JSON object frame with ``tag`` (``,"room":"#dev"``) added before its closing brace."""
    return frame[:-1] + tag + "}"


class RoomJson:
    """``groupchat.v1`` for a room besides the default one: every frame names the room."""

    name = "json"
    echo_own_messages = True

    def __init__(self, room: str, private: bool) -> None:
        self.room = room
        self.private = private
        self._tag = ',"room":' + json.dumps(room)

    def shared(self, event: Event) -> str:
        return tagged(event.json_frame(), self._tag)

    def shared_wire(self, event: Event) -> bytes:
        return text_frame(self.shared(event))

    def own_message(self, event: Event) -> str:
        return tagged(event.own_json_frame(), self._tag)

    def welcome(
        self, event: Event, limits: Limits, offer: ResumeOffer | None, signed_in: SignedIn | None = None
    ) -> list[str]:
        missed = signed_in.missed if signed_in is not None else None
        entered = Entered(
            room=self.room,
            seq=event.seq,
            ts=event.ts,
            name=event.name,
            members=list(event.members),
            private=self.private,
            read=None if missed is None else missed.read,
            unread=None if missed is None else missed.unread,
        )
        return [encode(entered)]

    def error(self, code: str, message: str, msg_id: str | None = None, retry_after: float | None = None) -> str:
        return JSON.error(code, message, msg_id, retry_after)

    def bye(self, reason: str, message: str) -> str:
        return encode(Parted(self.room, reason))


class RoomPlain:
    """The plain-text dialect for one room: its lines start with ``[#name] `` unless the member writes there."""

    name = "plain"
    echo_own_messages = False

    def __init__(self, room: str, prefixed: bool, default: bool) -> None:
        self.room = room
        self.prefix = f"[{room}] " if prefixed else ""
        self.default = default  # the default room: its welcome is the seed's (this dialect tags its lines only)

    def shared(self, event: Event) -> str:
        return self.prefix + event.plain_frame()

    def shared_wire(self, event: Event) -> bytes:
        if not self.prefix:
            return event.plain_wire()
        return text_frame(self.shared(event))

    def own_message(self, event: Event) -> str:
        return self.shared(event)

    def welcome(
        self, event: Event, limits: Limits, offer: ResumeOffer | None, signed_in: SignedIn | None = None
    ) -> list[str]:
        if self.default:
            return PLAIN.welcome(event, limits, offer, signed_in)
        names = ", ".join(event.members)
        count = len(event.members)
        where = "your lines go there" if not self.prefix else f"/join {self.room} to write there"
        lines = [f"* You are in {self.room} now ({count} member{'s' if count != 1 else ''}: {names}); {where}."]
        missed = signed_in.missed if signed_in is not None else None
        if missed is not None:
            lines.extend(self.prefix + line for line in plain_lines(missed))
        return lines

    def error(self, code: str, message: str, msg_id: str | None = None, retry_after: float | None = None) -> str:
        return PLAIN.error(code, message, msg_id, retry_after)

    def bye(self, reason: str, message: str) -> str:
        return f"* {message}"


def room_dialect(base: Dialect, room: str, *, private: bool, default: bool, prefixed: bool) -> Dialect:
    """The dialect a member speaking ``base`` reads ``room`` in (``prefixed``: plain text, writing elsewhere)."""
    if base is JSON:
        return JSON if default else RoomJson(room, private)
    if default and not prefixed:
        return PLAIN
    return RoomPlain(room, prefixed, default)


def invitation_frame(dialect: Dialect, invited: Invited, reader: str) -> str:
    """``invited`` as ``reader`` sees it: the inviter, or the one invited (on each of her connections)."""
    if dialect.name != PLAIN.name:
        return encode(invited)
    if name_key(reader) == name_key(invited.name):
        return f"* {invited.by} invited you to {invited.room}: /join {invited.room} to enter it."
    return f"* {invited.name} may enter {invited.room} now."
