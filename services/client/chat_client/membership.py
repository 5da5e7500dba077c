"""A registered member's side of the link: catching up after her welcome, and her read position.

``Link`` hands every welcome and every frame that reaches the room through here: a
welcome that announces unread events starts a ``catchup.CatchUp`` (its header, then its
pages asked for one after another), ``history_page`` answers become the events they
carry, and live room events are held back until the last page is shown. The modes tell
``seen`` what they showed; the ``read`` frames that follow are coalesced by
``catchup.ReadMarks``, one per room (a room other than the default one has its own
order, and its ``read`` names it), and sent by a small timer task, and once more when leaving. A guest
(``registered`` false) never sends ``history`` or ``read``: the tracker would refuse them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from chat_protocol import History, HistoryPage, Read, Registered, ServerMessage, Welcome

from .catchup import CatchUp, ReadMarks, event_seq, room_seq, unread_header
from .connection import Incoming
from .items import Item, Notice
from .signin import Keyring

# Sends a frame on the connection that is up; False when none is.
Send = Callable[[History | Read], Awaitable[bool]]


class Membership:
    """The catch-up in progress (if any), whether we are registered, and the read marks to send."""

    def __init__(self, send: Send, clock: Callable[[], float] = time.monotonic, keyring: Keyring | None = None) -> None:
        self._send = send
        self._clock = clock
        self._keyring = keyring
        self.registered = False
        self.catch_up: CatchUp | None = None
        self._marks: dict[str | None, ReadMarks] = {}  # per room, None: the default room
        self._epoch = ""  # chat.log's identity, from the last welcome: read marks are seqs of that log
        self._timer: asyncio.Task[None] | None = None

    def on_welcome(self, welcome: Welcome) -> list[Item]:
        """A (fresh) join: the unread header when there is something to catch up with."""
        self.registered = welcome.registered
        if welcome.epoch != self._epoch:  # chat.log started anew: its seqs may start again from 1
            self._epoch, self._marks = welcome.epoch, {}
        self.catch_up = CatchUp(welcome) if CatchUp.wanted(welcome) else None
        if self.catch_up is None:
            return []
        return [Notice(unread_header(self.catch_up.unread))]

    def pending_request(self) -> History | None:
        """The page to ask for on the connection now up (again, if one was lost with the last one)."""
        if self.catch_up is None or self.catch_up.done:
            return None
        return self.catch_up.request()

    def take(self, incoming: Incoming) -> list[Item]:
        """What to show for a frame that reached the room (a page's events, or a live frame unless held back)."""
        message = incoming.message
        if isinstance(message, Registered):
            self.registered = True
            if self._keyring is not None:  # this connection became the account's first device: keep its token
                self._keyring.keep(message.name, message.device, message.device_token)
        catch_up = self.catch_up
        if catch_up is None:
            return [incoming]
        if isinstance(message, HistoryPage):
            return catch_up.on_page(message)
        return catch_up.on_live(incoming)

    async def ask_next_page(self) -> None:
        """Ask for the next page, while the catch-up is not over."""
        request = self.pending_request()
        if request is not None:
            await self._send(request)

    def seen(self, message: ServerMessage) -> None:
        """The user has seen ``message``: a ``read`` will say so (coalesced) for a registered member."""
        if not self.registered:
            return
        seq, place = event_seq(message), room_seq(message)
        if seq is not None:
            self._marks.setdefault(None, ReadMarks()).seen(seq)
        elif place is not None:
            self._marks.setdefault(place[0], ReadMarks()).seen(place[1])
        else:
            return
        self.resume_marks()

    def _pending(self) -> list[ReadMarks]:
        return [marks for marks in self._marks.values() if marks.pending]

    async def _mark_read(self) -> None:
        while pending := self._pending():
            await asyncio.sleep(min(marks.wait(self._clock()) for marks in pending))
            if not await self._send_reads(everything=False):
                return  # no connection: the next one starts this again (``resume_marks``)

    async def _send_reads(self, *, everything: bool) -> bool:
        """Send each room's ``read`` that is due (``everything``: each one pending, interval or not)."""
        for room, marks in list(self._marks.items()):
            seq = marks.due()
            if seq is None or (not everything and marks.wait(self._clock()) > 0):
                continue
            if not await self._send(Read(seq, room)):
                return False
            marks.sent_now(seq, self._clock())
        return True

    def resume_marks(self) -> None:
        """A connection is up: what was shown but not yet sent goes on it."""
        if self.registered and self._pending() and (self._timer is None or self._timer.done()):
            self._timer = asyncio.create_task(self._mark_read())

    async def flush(self) -> None:
        """Leaving: the newest seq shown goes now, without waiting for the interval."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        if self.registered:
            await self._send_reads(everything=True)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
