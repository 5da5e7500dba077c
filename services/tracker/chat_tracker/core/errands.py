"""What a chatting member asks of the adapter that the session need not wait for: history, and her read position.

The session stays where it is (chatting); the ``/ws`` adapter carries these out - a
``history`` page is read from the journal (from memory, else chat.log and its
segments) and pushed to the member's outbox, what she has read is handed to the
account store - and reads the member's next frame once a page is out, so one
connection has at most one page in the making.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadHistory:
    """Answer a ``history`` request: up to ``limit`` events after ``after``, or the last ``limit`` before ``before``."""

    after: int | None
    before: int | None
    limit: int
    room: str | None = None  # another room's history (core/rooms.py); None: the default room's
    to: str | None = None  # instead: the conversation with this member (core/direct.py)


@dataclass(frozen=True)
class MarkRead:
    """Registered member ``name`` has seen everything up to ``seq``: move her read position there (never back)."""

    name: str
    seq: int
    room: str | None = None  # in another room (core/rooms.py); None: the default room


@dataclass(frozen=True)
class ListDevices:
    """Tell registered member ``name`` which devices are signed in to her account (``current``: this one)."""

    name: str
    current: str | None


@dataclass(frozen=True)
class SignOutDevice:
    """Sign ``device`` of ``name``'s account out, and close its connections."""

    name: str
    device: str


Errand = ReadHistory | MarkRead | ListDevices | SignOutDevice
