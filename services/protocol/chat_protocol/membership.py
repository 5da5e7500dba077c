"""Membership that outlives the connection: presence, the read position, history on demand, and parting.

A registered member stays a member while offline. Her connections coming and going
are ``presence`` events (chat.log has them as ``join NAME online`` and ``leave NAME
offline`` lines); only ``part`` ends the membership. The tracker keeps, per account,
how far she has read (``read``, sent by her clients as the user sees events, shared by
her devices); her welcome says how many events came after it (``unread``), and she
pages through them, or through anything older, with ``history`` requests answered
from the journal - so a month away never arrives as one flood.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

# The most events one ``history`` answer carries: about 250 KB of frames at worst, well under a client's frame limit.
MAX_HISTORY_PAGE = 500
DEFAULT_HISTORY_PAGE = 100

ONLINE_TEXT = "online"  # a registered member's join text in chat.log when she comes back (no new membership)

PART_COMMAND = "/part"  # the plain-text dialect's (and the terminal client's) way to end a membership


@dataclass(frozen=True)
class Presence:
    """A registered member came online or went offline; she stays a member either way."""

    TYPE: ClassVar[str] = "presence"
    seq: int
    ts: str
    name: str
    online: bool
    room: str | None = None  # the room's name; None (absent): the default room


@dataclass(frozen=True)
class History:
    """Ask for up to ``limit`` events after seq ``after``, or the last ``limit`` before seq ``before``.

    Exactly one of ``after`` and ``before`` is given; answered with a ``history_page``.
    """

    TYPE: ClassVar[str] = "history"
    after: int | None = None
    before: int | None = None
    limit: int = DEFAULT_HISTORY_PAGE
    room: str | None = None  # that room's history (rooms.py); None: the default room's
    to: str | None = None  # instead: the conversation with this member (direct messages, rooms.py)


@dataclass(frozen=True)
class HistoryPage:
    """The events of a ``history`` request, oldest first, as the frames a member receives live.

    ``first`` and ``last`` are the seqs the page covers (``last`` < ``first`` when it is empty);
    ``gone`` the seqs in that range no longer kept (rotated away), if any; ``more`` is True when
    the request's range goes on past ``last``. ``events`` are frame objects: ``message``, ``joined``,
    ``left``, ``presence``, ``moderation``, ``announcement``.
    """

    TYPE: ClassVar[str] = "history_page"
    first: int
    last: int
    more: bool
    events: list[dict[str, object]]
    gone: list[int] | None = None
    room: str | None = None
    to: str | None = None  # a page of the conversation with this member


@dataclass(frozen=True)
class Read:
    """The user has seen everything up to seq ``seq``: her read position moves there (never back)."""

    TYPE: ClassVar[str] = "read"
    seq: int
    room: str | None = None  # in that room (rooms.py); None: the default room


@dataclass(frozen=True)
class Part:
    """Leave the room for good: a registered member's membership (and read position) ends; answered with ``bye``."""

    TYPE: ClassVar[str] = "part"
    room: str | None = None  # leave only that room (answered with ``parted``); None: the default room, for good


__all__ = [
    "DEFAULT_HISTORY_PAGE",
    "MAX_HISTORY_PAGE",
    "ONLINE_TEXT",
    "PART_COMMAND",
    "History",
    "HistoryPage",
    "Part",
    "Presence",
    "Read",
]
