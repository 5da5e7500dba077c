"""One ``/ws`` member's side of a connection: its ``Session`` and outbox, driven from socket callbacks.

The socket's side (``native.NativeWebSocket``) hands over what the peer sent, decoded
(``text``, ``binary``), and what became of the socket (``disconnected``, ``socket_closed``,
``drain`` when it can take more). The driver feeds the session, carries out what it asks
for, keeps its deadline, and ends it once. It is what the tracker knows the connection as
(``service.Closable``: goodbyes at shutdown, making room, waiting for the end).

Frames out go from the outbox to the ``Wire``: pre-built bytes, the same for every member,
written as they are; or, on a connection that negotiated permessage-deflate, texts that
the wire passes through the connection's parser, which compresses each with that
connection's own context. The outbox is made accordingly (``wire`` or none).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Protocol

from chat_protocol import CloseCode
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.session import (
    Action,
    CheckAccount,
    CheckPassword,
    CreateAccount,
    Errand,
    ListDevices,
    MarkRead,
    ReadHistory,
    Replay,
    Session,
    SessionState,
    SignOutDevice,
    Timeouts,
)
from chat_tracker.service.devices import answer_devices
from chat_tracker.service.tracker import Closable
from chat_tracker.transport.handshake import Opened
from chat_tracker.transport.replaying import replay
from chat_tracker.transport.wire import Wire

if TYPE_CHECKING:
    from chat_tracker.service.tracker import Tracker

log = logging.getLogger("chat_tracker")

NO_STATUS = 1005  # the code for a connection that ended without a close frame; the session expects it


class Socket(Protocol):
    """What the driver asks of its connection's socket side (``native.NativeWebSocket``)."""

    def send_close(self, code: int, reason: str, timeout: float = ..., abort: bool = ...) -> None:
        """Our close frame after what is written; the socket closed (or cut, ``abort``) after ``timeout``."""

    def resume_reading(self) -> None:
        """A replay is over: read again, and hand over the frames that waited for it."""


class SessionDriver(Closable):
    """A connection's session from the accepted upgrade to its end."""

    __slots__ = (
        "_deadline",
        "_done",
        "_ready",
        "_task",
        "ended",
        "lost",
        "outbox",
        "session",
        "socket",
        "tracker",
        "wire",
    )

    def __init__(self, tracker: Tracker, socket: Socket, wire: Wire, opened: Opened, address: str) -> None:
        settings = tracker.settings
        self.tracker = tracker
        self.socket = socket
        self.wire = wire
        # Compressed, a connection's frames are built by its own parser, one at a time: its
        # outbox holds texts. Otherwise it takes the frames the room built once for everyone.
        direct = None if opened.compressed else wire
        outbox = Outbox(
            settings.limits.queue_size, on_overflow=self._on_overflow, wire=direct, coalescer=tracker.coalescer
        )
        outbox.on_wake = self.drain
        self.outbox = outbox
        timeouts = _timeouts(settings.auth_timeout, settings.join_timeout)
        self.session = Session(
            tracker.room,
            opened.dialect,
            outbox,
            address,
            timeouts,
            tracker.entries,
            accounts=tracker.accounts.kept,
            rooms=tracker.rooms,
        )
        self.lost = False  # the socket is closed
        self.ended = False  # the session has been told the connection is over
        self._task: asyncio.Task[None] | None = None  # a replay under way
        self._deadline: asyncio.TimerHandle | None = None
        self._ready: asyncio.Future[None] | None = None  # a replay waiting for the socket to drain
        self._done: asyncio.Future[None] | None = None  # shutdown waiting for the socket's end

    def start(self, opened: Opened) -> None:
        """Admitted (or refused: the tracker is full), the session says its first words."""
        if not self.tracker.admit(self, self.session):
            self.ended = True  # never admitted: nothing to release
            return
        self._act(self.session.start(opened.query, opened.authorization))
        self._after_input()

    @property
    def busy(self) -> bool:
        """A replay is under way: what the peer sends meanwhile waits, in order."""
        return self._task is not None

    # --- from the socket ------------------------------------------------------------

    def text(self, text: str) -> None:
        session = self.session
        if session.state is SessionState.CHATTING:
            action = session.receive_text(text)  # the hot path: no deadline; an action only to register
            if action is not None:
                self._act(action)
            if session.state is not SessionState.CHATTING:
                self._after_input()
            return
        if not session.reading:
            return
        self._act(session.receive_text(text))
        self._after_input()

    def binary(self) -> None:
        if self.session.reading:
            self.session.receive_binary()
            self._after_input()

    def disconnected(self, code: int) -> None:
        """The connection is over for the session, with the close ``code`` sent or received."""
        if self.ended:
            return
        if self.session.state is not SessionState.CLOSED:
            self.session.disconnected(code)
        self._end()

    def socket_closed(self) -> None:
        self.lost = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.disconnected(NO_STATUS)
        self.wake_ready()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def drain(self) -> None:
        """Write what the outbox holds, and its close request once that is out."""
        outbox, wire = self.outbox, self.wire
        if outbox.closing:
            self.wake_ready()  # a replay waiting for this socket stops now, not once the peer reads again
        if outbox.overflowed or not wire.ready():
            return
        if outbox.wired:
            data, close = outbox.take_wire_now()
            if data:
                wire.write(data)
        else:
            texts, close = outbox.take_now()
            if texts:
                wire.send_texts(texts)  # compressed, each with this connection's context
        if close is not None:
            self.socket.send_close(close.code, close.reason)

    def wake_ready(self) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    # --- shutdown and admission (service.Closable) ----------------------------------

    def say_goodbye(self, code: int, message: str, reason: str) -> None:
        self.session.say_goodbye(code, message, reason)

    def make_room(self) -> None:
        log.debug("Dropped an unauthenticated connection from %s to make room", self.session.address)
        self.session.refuse_full()
        self._after_input()

    async def finished(self, timeout: float) -> None:
        if self.lost:
            return
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout + 0.5):
                await asyncio.shield(self._done)
        except TimeoutError:
            pass

    # --- the session's actions ---------------------------------------------------------

    def _act(self, action: Action | Errand | None) -> None:
        session = self.session
        if isinstance(action, MarkRead):
            self.tracker.mark_read(action)
        elif isinstance(action, ReadHistory):  # the member's next frame is read once the page is out
            self._task = asyncio.get_running_loop().create_task(self._answer_history(action))
        elif isinstance(action, (ListDevices, SignOutDevice)):
            self._task = asyncio.get_running_loop().create_task(self._answer_devices(action))
        elif isinstance(action, CheckPassword):
            # Answered now, right or wrong or refused: a password check never waits (auth.PasswordGate).
            session.password_checked(self.tracker.gate.check(session.address, action.candidate))
            if session.state is SessionState.AWAIT_NAME:
                self.tracker.connections.authenticated(self)  # a member now: never dropped for room
        elif isinstance(action, Replay):
            self.tracker.connections.authenticated(self)  # resumed (also after a paused check)
            self._task = asyncio.get_running_loop().create_task(self._carry_out(action))
        elif action is not None:  # off the loop (a store, a hash): what the peer sends meanwhile waits
            self._task = asyncio.get_running_loop().create_task(self._ask_accounts(action))

    async def _ask_accounts(self, action: CheckAccount | CreateAccount) -> None:
        accounts, session = self.tracker.accounts, self.session
        try:
            if isinstance(action, CheckAccount):
                session.account_checked(await accounts.check(session.address, action))
            else:
                done = await accounts.register(action.name, action.passphrase, action.device)
                if done.ok:
                    self.tracker.memberships.begin(done.name)
                session.registration_done(done)
        finally:
            self._task = None
        if self.ended:
            return
        self._after_input()
        self.socket.resume_reading()

    async def _answer_history(self, request: ReadHistory) -> None:
        try:
            member = self.session.member
            self.outbox.push(await self.tracker.history_page(request, member.name if member is not None else ""))
        finally:
            self._task = None
        if not self.ended:
            self.socket.resume_reading()

    async def _answer_devices(self, errand: ListDevices | SignOutDevice) -> None:
        tracker = self.tracker
        try:
            await answer_devices(tracker.accounts, tracker.room, self.session.dialect, self.outbox, errand)
        finally:
            self._task = None
        if not self.ended:
            self.socket.resume_reading()

    async def _carry_out(self, action: Replay) -> None:
        tracker = self.tracker
        try:
            history = tracker.settings.history_size
            await replay(tracker.room, tracker.journal, history, action.resuming, self.outbox, self._wait_ready)
            self.session.replayed()
        finally:
            self._task = None
        if self.ended:
            return
        self._after_input()
        self.socket.resume_reading()

    async def _wait_ready(self) -> None:
        if self.wire.ready() or self.lost or self.outbox.closing:
            return
        if self._ready is None or self._ready.done():
            self._ready = asyncio.get_running_loop().create_future()
        await self._ready

    def _after_input(self) -> None:
        """After the session took a frame (or a timeout, an answer): a new deadline, or the end."""
        session = self.session
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if session.state is SessionState.CLOSED:
            self._end()
            return
        if session.state is SessionState.CHATTING:
            # In the room, however it got there (a join, a resume, or a join again after a lost epoch
            # while password checks were paused, which carries no Replay): a member, never dropped for room.
            self.tracker.connections.authenticated(self)
        deadline = session.deadline if session.reading and self._task is None else None
        if deadline is not None:
            self._deadline = asyncio.get_running_loop().call_later(deadline, self._timed_out)

    def _timed_out(self) -> None:
        self._deadline = None
        if self.session.reading and self._task is None:
            self.session.timed_out()
            self._after_input()

    # --- the end -----------------------------------------------------------------------

    def _end(self) -> None:
        """The session reads nothing more: out of the room and the tracker's connections (once)."""
        if self.ended:
            return
        self.ended = True
        if self._task is not None and self.lost:
            self._task.cancel()
        self.tracker.connections.close(self)
        self.session.end()
        wire = self.wire
        if not self.outbox.closing and not wire.close_sent and not self.lost:
            # Its goodbye is on its way (a leave is delivered with the next batch): it gets
            # the grace to arrive, then the socket is cut.
            wire.close_after(self.tracker.settings.shutdown_grace, wire.abort)

    def _on_overflow(self) -> None:
        member = self.session.member
        if member is not None:
            queued = self.tracker.settings.limits.queue_size
            log.warning("%s removed: too slow, more than %d events queued", member.name, queued)
        # A peer that reads nothing would never take the close frame: cut it off after the grace.
        grace = self.tracker.settings.shutdown_grace
        self.socket.send_close(CloseCode.SLOW_CONSUMER, "slow", timeout=grace, abort=True)


@functools.lru_cache(maxsize=4)
def _timeouts(auth: float, join: float) -> Timeouts:
    """The sessions' timeouts: one frozen object for every connection rather than one each."""
    return Timeouts(auth=auth, join=join)
