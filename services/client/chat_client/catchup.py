"""Everything since you were last here: the unread events a registered member's welcome announces, shown
in order and once, before the live events that arrive meanwhile; and the read position sent back. Pure, no I/O.

The welcome of a returning registered member carries ``read`` (the last seq she has seen, on
any device) and ``unread`` (how many events came after it, before this welcome). ``CatchUp``
pages through them with ``history`` requests (``after`` = the last seq covered so far) until
a page reaches the seq before the welcome; every live room event that arrives meanwhile is
held back and shown after the last page, so the screen reads in the room's order. A page's
``gone`` (rotated away by retention) is said, never skipped in silence.

``ReadMarks`` coalesces what was shown into ``read`` frames: at most one per
``READ_INTERVAL`` seconds, always the newest seq shown, and the rest when leaving.
"""

from __future__ import annotations

import json
import math

from chat_protocol import (
    Entered,
    History,
    HistoryPage,
    Presence,
    ProtocolError,
    Resumed,
    ServerMessage,
    Welcome,
    decode_server,
    room_key,
)

from .connection import Incoming
from .items import Item, Notice, gone_notice
from .render import safe

# Events per history request: a few pages for a day away, and each page far below a frame's limit.
UNREAD_PAGE = 200
# The read position goes to the tracker at most this often (seconds): one frame per second, not per event.
READ_INTERVAL = 1.0


def event_seq(message: ServerMessage) -> int | None:
    """The default room's seq of an event (``message``, ``joined``, ``presence``...); None for frames
    outside chat.log, and for those of other rooms and conversations (orders of their own)."""
    seq = getattr(message, "seq", None)
    if getattr(message, "room", None) is not None or getattr(message, "to", None) is not None:
        return None
    return seq if isinstance(seq, int) and not isinstance(message, Welcome | Resumed | HistoryPage | Entered) else None


def room_seq(message: ServerMessage) -> tuple[str, int] | None:
    """The room and seq of an event of a room other than the default one (what its ``read`` names)."""
    seq, room = getattr(message, "seq", None), getattr(message, "room", None)
    if not isinstance(room, str) or not isinstance(seq, int) or isinstance(message, HistoryPage | Entered):
        return None
    return room, seq


def unread_header(unread: int, room: str | None = None) -> str:
    where = f" in {safe(room)}" if room is not None else ""
    return f"--- {unread} unread{where} since you were last here ---"


def page_items(page: HistoryPage) -> list[Incoming]:
    """A page's events as the frames live events arrive as (event types a newer tracker adds are skipped)."""
    items = []
    for event in page.events:
        # A room's page: its events are that room's, whether or not they say so.
        body = {**event, "room": page.room} if page.room is not None and "room" not in event else event
        frame = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        try:
            items.append(Incoming(frame, decode_server(frame)))
        except ProtocolError:
            continue
    return items


class CatchUp:
    """The unread events of one welcome (or of one room's ``entered``, in that room's order), page by page,
    and the live events held back until they are shown."""

    def __init__(self, welcome: Welcome | Entered, page: int = UNREAD_PAGE) -> None:
        self.room = welcome.room if isinstance(welcome, Entered) else None  # None: the default room
        self.unread = welcome.unread or 0
        self.name = welcome.name
        self.until = welcome.seq  # the welcome's own seq: everything before it is the catch-up's
        self.covered = welcome.read or 0  # the last seq the pages have covered
        self.shown = self.covered  # the last seq shown, from the pages or the held-back events
        self.page = page
        self.done = False
        self._held: list[Incoming] = []

    @staticmethod
    def wanted(welcome: Welcome | Entered) -> bool:
        """A registered member's welcome (or ``entered``: only hers carry ``read``) that announces unread events."""
        registered = isinstance(welcome, Entered) or welcome.registered
        return registered and welcome.read is not None and (welcome.unread or 0) > 0

    def request(self) -> History:
        """The next page to ask for."""
        return History(after=self.covered, limit=self.page, room=self.room)

    def seq_of(self, message: ServerMessage) -> int | None:
        """The seq of an event in this catch-up's order; None for any other frame."""
        if self.room is None:
            return event_seq(message)
        place = room_seq(message)
        return place[1] if place is not None and room_key(place[0]) == room_key(self.room) else None

    def on_page(self, page: HistoryPage) -> list[Item]:
        """What to show for ``page``; once it is the last, the held-back live events follow."""
        shown: list[Item] = []
        if page.gone:
            shown.append(Notice(gone_notice(page.gone)))
        for item in page_items(page):
            seq = self.seq_of(item.message)
            if seq is not None and self.shown < seq < self.until:
                self.shown = seq
                if not self._own_presence(item.message):
                    shown.append(item)
        self.covered = max(self.covered, page.last)
        if self.covered >= self.until - 1 or not page.more or page.last < page.first:
            shown.extend(self._finish())
        return shown

    def _own_presence(self, message: ServerMessage) -> bool:
        """Her own comings and goings: not among the unread the welcome counts, and nothing she missed."""
        return isinstance(message, Presence) and message.name == self.name

    def on_live(self, incoming: Incoming) -> list[Item]:
        """A live frame: held back while pages are still to come (room events only), else shown now."""
        if self.done or self.seq_of(incoming.message) is None:
            return [incoming]
        self._held.append(incoming)
        return []

    def _finish(self) -> list[Item]:
        """The catch-up is over: the held-back events whose seq was not already shown, in order."""
        self.done = True
        held, self._held = self._held, []
        fresh = [item for item in held if (self.seq_of(item.message) or 0) > self.shown]
        if fresh:
            self.shown = max(self.seq_of(item.message) or 0 for item in fresh)
        return list(fresh)


class ReadMarks:
    """The read position as shown: which seq to send in the next ``read``, and when (coalesced)."""

    def __init__(self, interval: float = READ_INTERVAL) -> None:
        self.interval = interval
        self.sent = 0  # the last seq sent in a ``read``
        self.newest = 0  # the last seq shown
        self._sent_at = -math.inf

    def seen(self, seq: int) -> None:
        self.newest = max(self.newest, seq)

    @property
    def pending(self) -> bool:
        return self.newest > self.sent

    def wait(self, now: float) -> float:
        """Seconds to wait before the next ``read`` may go (0: now)."""
        return max(0.0, self._sent_at + self.interval - now)

    def due(self) -> int | None:
        """The seq for the next ``read``, or None when everything shown was sent already."""
        return self.newest if self.pending else None

    def sent_now(self, seq: int, now: float) -> None:
        """A ``read`` of ``seq`` went out at ``now``."""
        self.sent, self._sent_at = max(self.sent, seq), now
