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

from chat_protocol import ChatMessage, Entered, History, HistoryPage, Read, Registered, ServerMessage, Welcome, room_key

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
        self.catch_up: CatchUp | None = None  # the default room's
        self._room_catch_ups: dict[str, CatchUp] = {}  # room_key -> the catch-up of a room she is back in
        self._marks: dict[str | None, ReadMarks] = {}  # per room, None: the default room
        self._epoch = ""  # chat.log's identity, from the last welcome: read marks are seqs of that log
        self._timer: asyncio.Task[None] | None = None

    def on_welcome(self, welcome: Welcome) -> list[Item]:
        """A (fresh) join: the unread header when there is something to catch up with."""
        self.registered = welcome.registered
        if welcome.epoch != self._epoch:  # chat.log started anew: its seqs may start again from 1
            self._epoch, self._marks = welcome.epoch, {}
        self.catch_up = CatchUp(welcome) if CatchUp.wanted(welcome) else None
        self._room_catch_ups = {}  # a fresh join: the rooms' ``entered`` follow, each with its own
        if self.catch_up is None:
            return []
        return [Notice(unread_header(self.catch_up.unread))]

    def pending_requests(self) -> list[History]:
        """The pages to ask for on the connection now up (again, if some were lost with the last one)."""
        catch_ups = [self.catch_up, *self._room_catch_ups.values()]
        return [catch_up.request() for catch_up in catch_ups if catch_up is not None and not catch_up.done]

    def take(self, incoming: Incoming) -> list[Item]:
        """What to show for a frame that reached the room (a page's events, or a live frame unless held back)."""
        message = incoming.message
        if isinstance(message, Registered):
            self.registered = True
            if self._keyring is not None:  # this connection became the account's first device: keep its token
                self._keyring.keep(message.name, message.device, message.device_token)
        if isinstance(message, Entered):
            return self._entered(incoming, message)
        catch_up = self._catch_up_of(message)
        if catch_up is None:
            return [incoming]
        if isinstance(message, HistoryPage):
            return catch_up.on_page(message)
        return catch_up.on_live(incoming)

    def _entered(self, incoming: Incoming, entered: Entered) -> list[Item]:
        """Back in a room with unread events there: its own catch-up, in its own order, starts."""
        if not (self.registered and CatchUp.wanted(entered)):
            return [incoming]
        catch_up = CatchUp(entered)
        self._room_catch_ups[room_key(entered.room)] = catch_up
        return [incoming, Notice(unread_header(catch_up.unread, entered.room))]

    def _catch_up_of(self, message: ServerMessage) -> CatchUp | None:
        """The catch-up of the order ``message`` is in (the default room's, or a room's); None: no catch-up."""
        if isinstance(message, ChatMessage) and message.to is not None:
            return None  # a direct message: in no room
        room = getattr(message, "room", None)
        if not isinstance(room, str):
            return self.catch_up
        return self._room_catch_ups.get(room_key(room))

    async def ask_following(self, message: ServerMessage) -> None:
        """After a page, the next one of its catch-up; after an ``entered`` that started one, its first."""
        if isinstance(message, HistoryPage | Entered):
            catch_up = self._catch_up_of(message)
            if catch_up is not None and not catch_up.done:
                await self._send(catch_up.request())

    async def ask_next_page(self) -> None:
        """Ask for the next page of every catch-up not over (a connection is new)."""
        for request in self.pending_requests():
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
