"""What a member must remember to come back after a lost connection: sans-I/O, no sockets.

``ResumeState`` holds the resume credentials (token, epoch), the last seq received,
the messages sent but not yet echoed (``unacknowledged``) and the lines typed while
no connection was up (``waiting``). The reconnect loop in ``link`` feeds it every
event and asks it what to send; the tests drive it with plain message objects.

Why each piece:

- ``last_seq`` is what ``resume`` asks to be replayed after, and drops any event
  already received (a replay that overlaps what we saw must not print twice).
- A message is acknowledged by its echo: the sender's own ``message`` event. Every
  ``say`` carries a client-chosen id; the echo carries it back while the tracker
  still has it, but a replay read back from chat.log (after a tracker restart) has
  no id, so then the oldest unacknowledged entry with the same text is the one.
- Whatever is still unacknowledged after a reconnect is sent again with the same id
  (and to the same room or member): the tracker logs an id it already has only once,
  so a resend is harmless.
- Each room other than the default one, and each conversation of two, has its own
  order (``seq`` from 1): ``last_seq`` and the replay are the default room's, and the
  others' last seqs are kept apart (``orders``), only to drop an event seen already.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

from chat_protocol import (
    Announcement,
    ChatMessage,
    Entered,
    Error,
    Joined,
    Left,
    Limits,
    Moderation,
    Presence,
    Resume,
    Resumed,
    Say,
    ServerMessage,
    Welcome,
    name_key,
    room_key,
)

# Lines typed while disconnected that are kept for sending once back; the next is refused,
# so a person notices the tracker is gone instead of typing into a void for an hour.
MAX_WAITING = 100

# Every id is this process's tag, a dash and a counter: unique for this member without
# coordination, and far below the protocol's 64 characters.
ID_LENGTH_BOUND = 8 + 1 + 20


@dataclass(frozen=True)
class Pending:
    """One message: its id, its text and where it goes, kept until its echo arrives."""

    id: str
    text: str
    room: str | None = None  # a room other than the default one
    to: str | None = None  # a direct message's recipient

    def frame(self) -> Say:
        return Say(self.text, self.id, self.room, self.to)


# The order an event is in: None for the default room's, else its room's key or its conversation's.
Order = str | None


def event_order(message: ServerMessage) -> Order:
    """Which order ``message``'s seq counts in: the default room (None), another room, or a conversation."""
    if isinstance(message, ChatMessage) and message.to is not None:
        return "@" + "+".join(sorted((name_key(message.name), name_key(message.to))))
    room = getattr(message, "room", None)
    return room_key(room) if isinstance(room, str) else None


def message_ids(tag: str | None = None) -> Iterator[str]:
    """``3fa4c2d1-1``, ``3fa4c2d1-2``...: a random tag per process, then a counter."""
    prefix = tag if tag is not None else secrets.token_hex(4)
    return (f"{prefix}-{number}" for number in count(1))


class ResumeState:
    """The member's memory across connections: credentials, last seq, what is not yet acknowledged."""

    def __init__(self, welcome: Welcome, ids: Iterator[str] | None = None) -> None:
        self._ids = ids if ids is not None else message_ids()
        self.unacknowledged: deque[Pending] = deque()
        self.waiting: deque[Pending] = deque()
        self.orders: dict[str, int] = {}  # the last seq received in each order but the default room's
        self.on_welcome(welcome)

    # --- credentials and position ---------------------------------------------------

    def on_welcome(self, welcome: Welcome) -> None:
        """A (fresh) join: new name, token and epoch; events before the welcome are not ours to see.

        ``last_seq`` is set, not maxed: after a new epoch, seqs may start again from 1.
        What is unacknowledged or waiting stays, to be sent on this membership.
        """
        self.name = welcome.name
        self.token = welcome.token
        self.epoch = welcome.epoch
        self.limits: Limits = welcome.limits
        self.last_seq = welcome.seq
        self._replay: _Replay | None = None

    def resume_request(self) -> Resume | None:
        """The ``resume`` frame to send on a new connection; None if the tracker gave no token (too old)."""
        if not self.token:
            return None
        return Resume(token=self.token, epoch=self.epoch, after=self.last_seq)

    def on_resumed(self, resumed: Resumed) -> None:
        """Back in: take the new token, then expect ``resumed.replayed`` events up to ``resumed.seq``."""
        self.name = resumed.name
        self.token = resumed.token
        self.epoch = resumed.epoch
        self.limits = resumed.limits
        self._replay = _Replay(until=resumed.seq, left=resumed.replayed)
        self._finish_replay_if_done()

    @property
    def replaying(self) -> bool:
        """True until the replay that followed ``resumed`` has been received in full."""
        return self._replay is not None

    # --- events ---------------------------------------------------------------------

    def on_event(self, message: ServerMessage) -> bool:
        """Take one frame in; True if it is to be shown, False for an event already received.

        An echo of our own message acknowledges it even when it is a duplicate (a
        resend the tracker had logged before is echoed again), but only by id then:
        the text rule is for the first sight of a message, or it would take away an
        entry that merely says the same thing again.
        """
        if isinstance(message, Error) and message.id is not None:
            self._refused(message.id)  # never to be echoed: not to be sent again either
        if isinstance(message, Entered):  # the room's events from now on come after this seq
            self._advance(room_key(message.room), message.seq)
        if not isinstance(message, _Logged):
            return True  # members, errors, bye: not in chat.log, never replayed
        order = event_order(message)
        if order is not None:
            return self._in_other_order(order, message)
        fresh = message.seq > self.last_seq
        if isinstance(message, ChatMessage) and message.name == self.name:
            self._acknowledge(message, by_text=fresh)
        if not fresh:
            return False
        self.last_seq = message.seq
        if self._replay is not None:
            self._replay.left -= 1
            self._finish_replay_if_done()
        return True

    def _in_other_order(self, order: str, message: _Logged) -> bool:
        """An event of another room or of a conversation: fresh when past the last seq seen in that order."""
        fresh = message.seq > self.orders.get(order, 0)
        if isinstance(message, ChatMessage) and message.name == self.name:
            self._acknowledge(message, by_text=fresh)
        self._advance(order, message.seq)
        return fresh

    def _advance(self, order: str, seq: int) -> None:
        self.orders[order] = max(self.orders.get(order, 0), seq)

    def _finish_replay_if_done(self) -> None:
        replay = self._replay
        if replay is not None and (replay.left <= 0 or self.last_seq >= replay.until):
            # Events the tracker no longer keeps (``gone``) are behind us as well.
            self.last_seq = max(self.last_seq, replay.until)
            self._replay = None

    def _refused(self, msg_id: str) -> None:
        for entry in self.unacknowledged:
            if entry.id == msg_id:
                self.unacknowledged.remove(entry)
                return

    def _acknowledge(self, echo: ChatMessage, *, by_text: bool) -> None:
        for entry in self.unacknowledged:
            if (echo.id is not None and entry.id == echo.id) or (
                echo.id is None and by_text and entry.text == echo.text and _same_place(entry, echo)
            ):
                self.unacknowledged.remove(entry)
                return

    # --- what to send ---------------------------------------------------------------

    def sent(self, text: str, room: str | None = None, to: str | None = None) -> Pending:
        """A new message going out now (to ``room`` or to the member ``to``): it gets an id and waits for its echo."""
        entry = Pending(next(self._ids), text, room, to)
        self.unacknowledged.append(entry)
        return entry

    def queue(self, text: str, room: str | None = None, to: str | None = None) -> Pending | None:
        """A line typed while disconnected: kept for later, or None when MAX_WAITING are already waiting."""
        if len(self.waiting) >= MAX_WAITING:
            return None
        entry = Pending(next(self._ids), text, room, to)
        self.waiting.append(entry)
        return entry

    def lines_to_resend(self) -> list[Pending]:
        """Everything to send on a new membership, in order: the unacknowledged, then what waited.

        The waiting lines count as sent from now on: they join the unacknowledged.
        """
        self.unacknowledged.extend(self.waiting)
        self.waiting.clear()
        return list(self.unacknowledged)

    def next_waiting(self) -> Pending | None:
        """The oldest line still waiting (typed during a resend), moved to the unacknowledged."""
        if not self.waiting:
            return None
        entry = self.waiting.popleft()
        self.unacknowledged.append(entry)
        return entry

    def is_unacknowledged(self, entry: Pending) -> bool:
        """Still worth sending: its echo has not arrived meanwhile."""
        return entry in self.unacknowledged


_Logged = Welcome | Joined | ChatMessage | Left | Moderation | Announcement | Presence  # events with a seq


def _same_place(entry: Pending, echo: ChatMessage) -> bool:
    """The echo went where the entry was sent: the same room, or the same member."""
    if entry.to is not None or echo.to is not None:
        return entry.to is not None and echo.to is not None and name_key(entry.to) == name_key(echo.to)
    return (entry.room and room_key(entry.room)) == (echo.room and room_key(echo.room))


@dataclass
class _Replay:
    """The replay after ``resumed``: ends at seq ``until`` or after ``left`` more events, whichever is first."""

    until: int
    left: int
