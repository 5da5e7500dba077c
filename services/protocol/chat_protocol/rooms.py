"""Rooms and direct messages: one tracker, many groups, and conversations of two.

Every member is in the default room (``#general`` unless the operator names another),
exactly as before rooms existed: its events carry no ``room`` field, so a program
written for the single room works unchanged. ``join`` with a ``room`` (``/join #dev``
in the plain-text dialect) enters another room, creating it as a public room if it does
not exist; the tracker answers with ``entered``. From then on that room's events carry
``"room": "#dev"``, and ``say``, ``who``, ``part``, ``history`` and ``read`` name it the
same way. ``rooms`` lists the public rooms (and the private ones you are in); a private
room is entered only by ``invite`` of one of its members.

A direct message is ``say`` with ``to`` (``/msg NAME text``): it reaches that member
alone, in a conversation of two with its own order (``seq``) and its own log, and comes
back as a ``message`` carrying ``to``. It is in no room's log; the operator can read it
(there is no end-to-end encryption).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import ClassVar

from .errors import ProtocolError

ROOM_PREFIX = "#"
MAX_ROOM_NAME = 32
ROOM_PATTERN = re.compile(r"#[a-z0-9_-]{1,32}")
DEFAULT_ROOM = "#general"
ROOM_DESCRIPTION = f"'#' and 1-{MAX_ROOM_NAME} characters: letters a-z, digits, '_' or '-'"

# The plain-text dialect's commands (lines starting with ``/``; ``//`` sends a line starting with one ``/``).
JOIN_COMMAND = "/join"
ROOMS_COMMAND = "/rooms"
INVITE_COMMAND = "/invite"
REMOVE_COMMAND = "/remove"
MSG_COMMAND = "/msg"
LITERAL_SLASH = "//"

# Lookalikes folded as names fold them (names.py): 0/o and 1/l/i. Separators stay: #dev-ops and #devops differ.
_ROOM_LOOKALIKES = str.maketrans({"0": "o", "1": "l", "i": "l"})


def room_name(text: str) -> str:
    """``text`` as a room's name (``#`` added if missing, lower case). Raises ProtocolError ``bad_room``."""
    candidate = text.strip().lower()
    if not candidate.startswith(ROOM_PREFIX):
        candidate = ROOM_PREFIX + candidate
    if ROOM_PATTERN.fullmatch(candidate) is None:
        raise ProtocolError("bad_room", f"a room's name is {ROOM_DESCRIPTION}")
    return candidate


def room_key(name: str) -> str:
    """The identity of a room's name: names with one key are one room (``#DEV`` is ``#dev``, ``#ci`` is ``#cl``)."""
    # Interned: a member's key is kept by every room she is in, its events and its indexes; one copy serves them all.
    return sys.intern(name.lower().translate(_ROOM_LOOKALIKES))


@dataclass(frozen=True)
class RoomInfo:
    """One room as ``rooms`` and ``GET /rooms`` list it."""

    room: str
    members: int  # its members, online or not
    online: int  # those connected now
    private: bool = False
    joined: bool = False  # you are in it (only in answers to a member)
    unread: int | None = None  # events after your read position (a registered member)


@dataclass(frozen=True)
class ListRooms:
    """Ask for the rooms; answered with ``room_list``."""

    TYPE: ClassVar[str] = "rooms"


@dataclass(frozen=True)
class RoomList:
    """The public rooms and the private ones you are in, the default room first."""

    TYPE: ClassVar[str] = "room_list"
    rooms: list[RoomInfo]


@dataclass(frozen=True)
class Entered:
    """You are in ``room`` now (after ``join`` with ``room``, or at sign-in for each room you stay a member of).

    ``seq`` is your join's seq in that room's order: you receive its events after it.
    ``read``/``unread`` as in ``welcome``, for a registered member coming back to it.
    """

    TYPE: ClassVar[str] = "entered"
    room: str
    seq: int
    ts: str
    name: str
    members: list[str]
    private: bool = False
    read: int | None = None
    unread: int | None = None


@dataclass(frozen=True)
class Parted:
    """You are out of ``room`` (``part`` with ``room``, or removed from it by its owner); the connection stays."""

    TYPE: ClassVar[str] = "parted"
    room: str
    reason: str = "part"


@dataclass(frozen=True)
class Invite:
    """Let ``name`` into ``room`` (a private room: only its members invite). Answered with ``invited``."""

    TYPE: ClassVar[str] = "invite"
    room: str
    name: str


@dataclass(frozen=True)
class Remove:
    """Take ``name`` out of ``room`` (its owner only); she gets ``parted`` (reason ``removed``), the others ``left``."""

    TYPE: ClassVar[str] = "remove"
    room: str
    name: str


@dataclass(frozen=True)
class Invited:
    """``name`` may enter ``room`` now; ``by`` invited her. Sent to the inviter and, if online, to her."""

    TYPE: ClassVar[str] = "invited"
    room: str
    name: str
    by: str


ROOM_ERROR_CODES = (
    "bad_room",  # not a room's name
    "no_such_room",  # no room of that name (or a private one you were not invited to)
    "not_in_room",  # you are not in that room
    "room_creation_closed",  # --room-creation admin: only operators create rooms
    "too_many_rooms",  # the rooms-per-member limit, or the tracker's rooms in all
    "too_many_room_creations",  # the room creations per member per hour
    "not_allowed",  # only a room's members invite, only its owner removes
    "no_such_member",  # a direct message to a name that is neither registered nor online
    "unknown_command",  # plain text: a line starting with / that is no command (// sends one)
)

__all__ = [
    "DEFAULT_ROOM",
    "INVITE_COMMAND",
    "JOIN_COMMAND",
    "LITERAL_SLASH",
    "MAX_ROOM_NAME",
    "MSG_COMMAND",
    "REMOVE_COMMAND",
    "ROOMS_COMMAND",
    "ROOM_ERROR_CODES",
    "Entered",
    "Invite",
    "Invited",
    "ListRooms",
    "Parted",
    "Remove",
    "RoomInfo",
    "RoomList",
    "room_key",
    "room_name",
]
