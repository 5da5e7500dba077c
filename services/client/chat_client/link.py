"""The member's session across connections: reconnect with backoff, resume, send again what was lost.

Shared by both modes. One task, the owner, opens every connection in turn: httpx-ws runs each in
an anyio task group, which must be entered and left by one task. It pumps what arrives into a small
bounded queue that the mode reads with ``receive()``; bounded, so a mode that stops reading (a full
stdout) still stops the socket and the tracker still sees a slow consumer. The mode sends with
``say``, ``offer``, ``request`` and ``leave`` from its own tasks, on whichever connection is up, so a
connection swapped underneath goes unnoticed by the prompt or the stdin reader.

What to remember across connections (last seq, token, the unacknowledged messages)
is ``resume.ResumeState``'s job, and where the session stands is the table of
``link_state``; this module only does the I/O around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from chat_protocol import ClientMessage, History, Join, Leave, Part, Read, Resumed, ServerMessage, Welcome, Who

from . import backoff
from .connection import Connection, Incoming, SendFailed, connect, unsendable
from .errors import HandshakeRefused, InvalidState, ResumeRefused, SessionClosed, TrackerGone, TryLater, Unreachable
from .items import Item, Notice, rejoined_notice, resumed_notices
from .link_state import RECONNECTING, LinkEvent, LinkMachine, LinkState
from .membership import Membership
from .resume import MAX_WAITING, ResumeState
from .room_view import RoomView
from .signin import Keyring

# Frames read ahead of the mode: enough to keep the socket busy, few enough to keep back-pressure.
ITEMS_BUFFERED = 16
# A reconnection attempt that fails this way is tried again; anything else ends the session.
_RETRIED = (Unreachable, HandshakeRefused, TrackerGone)


# The first join, as the mode holds it (interactive asks for password and name): returns the welcome.
Enter = Callable[[Connection], Awaitable[Incoming]]
# A fresh join after a refused resume, starting with the name we had: returns the welcome.
Rejoin = Callable[[Connection, str], Awaitable[Incoming]]


class Link:
    """The rooms as the modes see them: events in, messages out, connections swapped underneath.

    Where it stands is ``state`` (link_state's table); ``leaving`` records the person's request to leave.
    """

    def __init__(
        self,
        url: str,
        password: str | None,
        *,
        timeout: float,
        reconnect_for: float,
        rejoin: Rejoin,
        delay: Callable[[int], float] = backoff.delay,
        clock: Callable[[], float] = time.monotonic,
        keyring: Keyring | None = None,
    ) -> None:
        self._url = url
        self._password = password
        self._timeout = timeout
        self._reconnect_for = reconnect_for
        self._rejoin = rejoin
        self._delay = delay
        self._clock = clock
        self._machine = LinkMachine()
        self._moved = asyncio.Event()  # set, and replaced, at every transition
        self._resume: ResumeState | None = None  # from the first welcome on
        self._connection: Connection | None = None  # the one we are in the room on
        self._items: asyncio.Queue[Item] = asyncio.Queue(ITEMS_BUFFERED)
        self._owner: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.membership = Membership(self._send_now, clock, keyring)  # keeps ``registered``'s device token
        self.view = RoomView()  # the rooms as the mode shows them: it feeds the view what it shows
        self.leaving = False
        self.parting = False  # ``part``: leaving for good (a registered member's membership ends)
        self.attached_at = clock()  # when the current connection entered the room

    @property
    def state(self) -> LinkState:
        return self._machine.state

    @property
    def reconnecting(self) -> bool:
        """Between a lost connection and the next welcome or resumed."""
        return self.state in RECONNECTING

    # --- for the modes --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self, enter: Enter) -> AsyncIterator[Link]:
        """Run the owner task (first connection through ``enter``) for the duration of the block."""
        self._fire(LinkEvent.START)
        self._owner = asyncio.create_task(self._run(enter))
        # A callback, not a ``finally``: it runs even for a task cancelled before it started.
        self._owner.add_done_callback(lambda _: self._fire(LinkEvent.END))
        try:
            yield self
        finally:
            self._owner.cancel()
            self.membership.stop()
            # Whatever ended the owner was reported through receive() or joined(), or does not matter now.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._owner

    async def joined(self) -> None:
        """Return once the first join succeeded; raise what ended the session if it ended first."""
        owner = self._running("wait for the join")
        while self.state is LinkState.ENTERING and not owner.done():
            await self._next_move_or(owner)
        if self._resume is None:
            owner.result()  # raises the owner's error
            raise TrackerGone(None, "the session ended before the join")

    async def receive(self) -> Item | None:
        """The next event or notice; None once the tracker closed normally (after our ``leave``).

        Raises what ended the session: TrackerGone (gone, could not reconnect), Removed,
        AuthenticationFailed or NameRejected on a reconnection, Quit from a prompt.
        """
        owner = self._running("receive")
        if self._items.empty() and not owner.done():
            getter = asyncio.ensure_future(self._items.get())
            try:
                await asyncio.wait({getter, owner}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                getter.cancel()
            if getter.done() and not getter.cancelled():
                return getter.result()
        if not self._items.empty():
            return self._items.get_nowait()
        owner.result()
        return None

    @property
    def name(self) -> str:
        return self._memory("name").name

    def unsendable(self, text: str) -> str | None:
        """Why ``text`` cannot go out as one frame under the last limits announced, or None."""
        return unsendable(text, self._memory("check a line").limits)

    async def say(self, text: str, room: str | None = None, to: str | None = None) -> None:
        """Send ``text`` (to ``room``, or to ``to`` alone) once live (scripted: what keeps the rest of stdin
        unread); after the end it waits on: the mode learns of it from receive(), and cancels it."""
        self._memory("say")
        await self.live()
        await self._send_new(text, room, to)

    async def live(self) -> None:
        """Return once we are live: a request sent then goes on a connection in the room."""
        while self.state is not LinkState.LIVE:
            await self._moved.wait()

    async def offer(self, text: str, room: str | None = None, to: str | None = None) -> str | None:
        """Send ``text`` (to ``room``, or to the member ``to``) now, or keep it for the next connection;
        returns the refusal if too many wait."""
        memory = self._memory("offer")
        if self.state is LinkState.LIVE:
            await self._send_new(text, room, to)
            return None
        if memory.queue(text, room, to) is None:
            return f"not connected: line not queued, {MAX_WAITING} lines are already waiting"
        return None

    async def who(self, room: str | None = None) -> bool:
        """Ask who is in ``room`` (None: the default room); False when not live."""
        return await self.request(Who(room))

    async def request(self, message: ClientMessage) -> bool:
        """Send a request answered by an event (``/who``, ``/register``, ``/devices``, ``/signout``);
        False when not live (a stale answer would be worse than none)."""
        self._memory(message.TYPE)
        connection = self._connection
        if self.state is not LinkState.LIVE or connection is None:
            return False
        await self._send_quietly(connection, message)
        return True

    async def leave(self, *, part: bool = False) -> None:
        """Leave (for good with ``part``; else first the read position); when not live, after the next resend."""
        self._memory("leave")
        self.leaving = True
        self.parting = part and self.membership.registered  # a guest's part is a plain leave
        connection = self._connection
        if self.state is LinkState.LIVE and connection is not None:
            await self._send_farewell(connection)

    def seen(self, message: ServerMessage) -> None:
        """The user saw ``message`` (the mode printed it): the read position follows, for a registered member."""
        self.membership.seen(message)

    # --- the owner task -------------------------------------------------------------

    async def _run(self, enter: Enter) -> None:
        lost = await self._first(enter)
        while lost is not None:
            if not self._recoverable(lost):
                raise lost
            lost = await self._recover(lost)

    def _recoverable(self, lost: SessionClosed) -> bool:
        return isinstance(lost, TrackerGone) and lost.reconnectable and self._reconnect_for > 0

    async def _first(self, enter: Enter) -> SessionClosed | None:
        """The first connection: any failure before the welcome is the mode's to report (exit 1)."""
        async with connect(self._url, self._password, timeout=self._timeout) as connection:
            welcome = (await enter(connection)).message
            assert isinstance(welcome, Welcome)  # enter returns the welcome
            self._password = connection.password  # interactive mode may have asked for it
            self._resume = ResumeState(welcome)
            self.view.take(welcome)  # shown by ``enter``, not through receive()
            self._fire(LinkEvent.WELCOME)
            for item in self.membership.on_welcome(welcome):
                await self._items.put(item)
            return await self._attached(connection)

    async def _recover(self, lost: SessionClosed) -> SessionClosed | None:
        """Reconnect with backoff until ``--reconnect-for`` seconds after the loss; raise TrackerGone then."""
        await self._notify("connection lost; reconnecting...")
        deadline = self._clock() + self._reconnect_for
        reason = lost.detail
        told_to_wait = 0.0  # a TryLater's retry_after: the next attempt waits at least that long
        for attempt in itertools.count():
            pause = max(self._delay(attempt), told_to_wait)
            await asyncio.sleep(max(0.0, min(pause, deadline - self._clock())))
            if self._clock() >= deadline:
                break
            self._fire(LinkEvent.RECONNECT)
            try:
                return await self._reconnect()
            except _RETRIED as exc:
                if self.state is not LinkState.WAITING:  # else the room was reached: _attached moved it
                    self._fire(LinkEvent.LOST)  # the attempt failed before the room
                reason = str(exc)
                told_to_wait = exc.retry_after if isinstance(exc, TryLater) else 0.0
                if told_to_wait:
                    await self._notify(f"{reason}; reconnecting in {told_to_wait:g} s...")
        raise TrackerGone(None, f"could not reconnect within {self._reconnect_for:g} s ({reason})")

    async def _reconnect(self) -> SessionClosed | None:
        async with connect(self._url, self._password, timeout=self._timeout) as connection:
            await self._reenter(connection)
            return await self._attached(connection)

    async def _reenter(self, connection: Connection) -> None:
        """Resume where we were; if the tracker cannot, join afresh on the same connection."""
        memory = self._memory("resume")
        request = memory.resume_request()
        if request is None:  # a tracker without resume: it gave no token
            await self._join_again(connection, refusal=None)
            return
        self._fire(LinkEvent.RESUME)
        try:
            incoming = await connection.resume(request)
        except ResumeRefused as refusal:
            await self._join_again(connection, refusal=refusal.message)
            return
        resumed = incoming.message
        assert isinstance(resumed, Resumed)  # resume returns the resumed frame
        memory.on_resumed(resumed)
        for room in list(self.view.rooms.values()):  # the lost connection took her other rooms: in again, caught up
            await self._send_quietly(connection, Join("", room=room))
        self._fire(LinkEvent.RESUMED)
        await self._items.put(incoming)
        for text in resumed_notices(resumed):
            await self._notify(text)

    async def _join_again(self, connection: Connection, refusal: str | None) -> None:
        memory = self._memory("join again")
        self._fire(LinkEvent.JOIN)
        missed_after = memory.last_seq
        incoming = await self._rejoin(connection, memory.name)
        welcome = incoming.message
        assert isinstance(welcome, Welcome)  # rejoin returns the welcome
        memory.on_welcome(welcome)
        self._fire(LinkEvent.WELCOME)
        await self._notify(rejoined_notice(refusal, welcome.name, missed_after))
        await self._items.put(incoming)
        for item in self.membership.on_welcome(welcome):
            await self._items.put(item)

    async def _attached(self, connection: Connection) -> SessionClosed | None:
        """Pump events from ``connection`` until it ends: None after a normal close, else why it ended.

        The state leaves the room at once: WAITING after a loss to recover from, else ENDED.
        """
        self._connection = connection
        self.attached_at = self._clock()
        self._flush_when_replayed(connection)
        await self.membership.ask_next_page()  # again, if the last connection took the request with it
        self.membership.resume_marks()
        ended: SessionClosed | None = None
        try:
            while (incoming := await connection.receive()) is not None:
                if self._memory("take an event").on_event(incoming.message):
                    await self._take(incoming)
                self._flush_when_replayed(connection)
        except SessionClosed as exc:
            ended = exc
        finally:
            self._detach()
        self._fire(LinkEvent.LOST if ended is not None and self._recoverable(ended) else LinkEvent.END)
        return ended

    async def _take(self, incoming: Incoming) -> None:
        """Hand a frame to the mode, through the catch-up (which may hold it back, or ask for the next page)."""
        for item in self.membership.take(incoming):
            await self._items.put(item)
        await self.membership.ask_following(incoming.message)

    async def _send_now(self, message: History | Read) -> bool:
        """Send on the connection that is in the room; False when none is (the membership tries later)."""
        connection = self._connection
        if connection is None:
            return False
        try:
            await connection.send(message)
        except SendFailed:
            return False
        return True

    def _detach(self) -> None:
        self._connection = None
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None

    def _flush_when_replayed(self, connection: Connection) -> None:
        """Once the replay is in (replayed echoes acknowledge what they show), send the rest again."""
        if self.state is LinkState.REPLAYING and not self._memory("resend").replaying:
            self._fire(LinkEvent.REPLAYED)
            self._flusher = asyncio.create_task(self._flush(connection))

    async def _flush(self, connection: Connection) -> None:
        """Send the unacknowledged again, same ids, in order; then what waited; then go live (beside the pump:
        echoes keep coming while the pacing spaces the resends)."""
        memory = self._memory("resend")
        for owed in memory.lines_to_resend():
            if memory.is_unacknowledged(owed):
                await self._send_quietly(connection, owed.frame())
        while (entry := memory.next_waiting()) is not None:  # typed during the resend
            await self._send_quietly(connection, entry.frame())
        if self.leaving:
            await self._send_farewell(connection)
        self._fire(LinkEvent.RESENT)

    async def _send_farewell(self, connection: Connection) -> None:
        if not self.parting:
            await self.membership.flush()
        await self._send_quietly(connection, Part() if self.parting else Leave())

    # --- helpers --------------------------------------------------------------------

    def _fire(self, event: LinkEvent) -> None:
        self._machine.fire(event)
        self._moved.set()  # wakes whoever waits for a state (say, joined)
        self._moved = asyncio.Event()

    async def _next_move_or(self, owner: asyncio.Task[None]) -> None:
        """Wait for the next transition, or for the owner to end."""
        mover = asyncio.ensure_future(self._moved.wait())
        try:
            await asyncio.wait({mover, owner}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            mover.cancel()

    async def _send_new(self, text: str, room: str | None, to: str | None) -> None:
        connection = self._connection
        entry = self._memory("send").sent(text, room, to)
        if connection is not None:
            await self._send_quietly(connection, entry.frame())

    @staticmethod
    async def _send_quietly(connection: Connection, message: ClientMessage) -> None:
        """Send; a failure is not reported here: the pump sees the loss, and a message stays owed."""
        with contextlib.suppress(SendFailed):
            await connection.send(message)

    async def _notify(self, text: str) -> None:
        await self._items.put(Notice(text))

    def _memory(self, operation: str) -> ResumeState:
        """What we remember, there from the first welcome on: before it, ``operation`` has no room to act in."""
        if self._resume is None:
            raise InvalidState(operation, self.state)
        return self._resume

    def _running(self, operation: str) -> asyncio.Task[None]:
        if self._owner is None:
            raise InvalidState(operation, self.state)  # before running()
        return self._owner
