"""``/ws``: the thin adapter between uvicorn's WebSocket and one connection's ``Session``.

A raw ASGI endpoint (no framework in between) so that it talks to uvicorn's
WebSocket protocol directly. The dialogue itself is the sans-I/O ``Session``
(``session.py``); this module only carries frames to it, carries out what it asks
(a password check), and runs two tasks per connection: this reader, and a writer
that drains the connection's outbox onto the socket. Everything the tracker sends -
prompts, errors, events, goodbyes - goes through the outbox, so it reaches the peer
in one order, and a peer that stops reading never blocks anyone but itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from chat_protocol import SUBPROTOCOL, CloseCode
from chat_tracker.core.dialects import JSON, PLAIN, Dialect
from chat_tracker.core.origins import handshake_allowed
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room import Resuming
from chat_tracker.core.session import CheckPassword, Replay, Session, SessionState, Timeouts
from chat_tracker.service.tracker import Closable, Tracker
from chat_tracker.transport.asgi import Message, Receive, Scope, Send
from chat_tracker.transport.replaying import replay
from chat_tracker.transport.wire import EXTENSION, Wire

log = logging.getLogger("chat_tracker")


class WebSocketEndpoint:
    """The ASGI app for ``/ws``."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await Connection(self.tracker, scope, receive, send).run()


class Connection(Closable):
    """One WebSocket connection: its session, its outbox and its writer task."""

    def __init__(self, tracker: Tracker, scope: Scope, receive: Receive, send: Send) -> None:
        self.tracker = tracker
        self.settings = tracker.settings
        self.scope = scope
        self.receive = receive
        self.send = send
        client = scope.get("client")
        self.address = client[0] if client else "unknown"
        dialect: Dialect = JSON if SUBPROTOCOL in scope.get("subprotocols", ()) else PLAIN
        self.wire: Wire | None = scope.get("extensions", {}).get(EXTENSION)
        self.outbox = Outbox(
            self.settings.limits.queue_size, on_overflow=self._on_overflow, wire=self.wire, coalescer=tracker.coalescer
        )
        timeouts = Timeouts(auth=self.settings.auth_timeout, join=self.settings.join_timeout)
        self.session = Session(tracker.room, dialect, self.outbox, self.address, timeouts, tracker.entries)
        self.writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._peer_gone = False
        self._done = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------

    async def run(self) -> None:
        if (await self.receive())["type"] != "websocket.connect":
            return
        # A browser page from an origin not on --allowed-origins is refused before
        # accept, which uvicorn answers with HTTP 403: no WebSocket, no password tried.
        allowed, origin = handshake_allowed(self.settings.allowed_origins, self.scope.get("headers", []))
        if not allowed:
            self.tracker.warn_refused_origin(self.address, origin)
            await self.send({"type": "websocket.close", "code": 1008})
            return
        subprotocol = SUBPROTOCOL if self.session.dialect is JSON else None
        await self.send({"type": "websocket.accept", "subprotocol": subprotocol})
        self.writer = asyncio.create_task(self._pump())
        if not self.tracker.admit(self, self.session):
            await self._wait_writer()
            return
        try:
            await self._converse()
        finally:
            self.tracker.connections.close(self)
            self.session.end()
            if self._closer is not None:
                # Dropped as too slow: returning now would let uvicorn close the socket
                # before the 4007 close frame is out. The closer ends within the grace.
                await asyncio.shield(self._closer)
            elif self._peer_gone and self.writer is not None:
                self.writer.cancel()
            else:
                await self._wait_writer()
            self._done.set()

    async def _converse(self) -> None:
        """Feed the session until it stops reading; run the password checks it asks for."""
        session = self.session
        action: CheckPassword | Replay | None = session.start(
            self.scope.get("query_string", b""), _header(self.scope, b"authorization")
        )
        while True:
            if isinstance(action, CheckPassword):
                session.password_checked(self.tracker.gate.check(self.address, action.candidate))
                if session.state is SessionState.AWAIT_NAME:
                    self.tracker.connections.authenticated(self)  # a member now: never dropped for room
            elif isinstance(action, Replay):
                self.tracker.connections.authenticated(self)  # resumed (also after a paused check)
                await self._replay(action.resuming)
                session.replayed()
            if session.state is SessionState.CHATTING:
                await self._chat()
                return
            if not session.reading:
                return
            action = await self._feed_next_frame()

    async def _chat(self) -> None:
        """The hot path: every frame straight to the chatting session, no deadline, no action to run."""
        session, receive = self.session, self.receive
        while session.state is SessionState.CHATTING:
            self._hand_over(await receive())

    # --- resuming -----------------------------------------------------------------

    async def _replay(self, resuming: Resuming) -> None:
        wire = self.wire
        wait_ready = None if wire is None else (lambda: _wait_unless_gone(wire))
        tracker = self.tracker
        await replay(tracker.room, tracker.journal, self.settings.history_size, resuming, self.outbox, wait_ready)

    async def _feed_next_frame(self) -> CheckPassword | Replay | None:
        session = self.session
        deadline = session.deadline
        if deadline is None:
            message = await self.receive()  # chatting: no deadline, and no timer on the hot path
        else:
            try:
                async with asyncio.timeout(deadline):
                    message = await self.receive()
            except TimeoutError:
                session.timed_out()
                return None
        return self._hand_over(message)

    def _hand_over(self, message: Message) -> CheckPassword | Replay | None:
        """One ASGI receive event to the session: a text frame, a binary frame, or the peer gone."""
        text = message.get("text")
        if text is not None:
            return self.session.receive_text(str(text))
        if message["type"] == "websocket.disconnect":
            self._peer_gone = True
            self.session.disconnected(int(message.get("code", 1005)))
        else:
            self.session.receive_binary()
        return None

    def make_room(self) -> None:
        log.debug("Dropped an unauthenticated connection from %s to make room", self.address)
        self.session.refuse_full()

    # --- writing -----------------------------------------------------------------

    def say_goodbye(self, code: int, message: str, reason: str) -> None:
        self.session.say_goodbye(code, message, reason)

    async def _pump(self) -> None:
        """Drain the outbox onto the socket until a close is sent or the peer is gone."""
        try:
            if self.wire is not None:
                await self._pump_wire(self.wire)
            else:
                await self._pump_asgi()
        except OSError:
            return  # the peer is gone; the reader learns it from receive()

    async def _pump_wire(self, wire: Wire) -> None:
        outbox = self.outbox
        while True:
            await outbox.wait()
            # Frames stay queued while the socket drains, so later ones line up behind them.
            await wire.wait_ready()
            data, close = outbox.take_wire_now()
            if outbox.overflowed or wire.gone:
                return
            if data:
                wire.write(data)
            if close is not None:
                await self.send({"type": "websocket.close", "code": close.code, "reason": close.reason})
                return

    async def _pump_asgi(self) -> None:
        send, outbox = self.send, self.outbox
        while True:
            frames, close = await outbox.take()
            if outbox.overflowed:
                return
            for frame in frames:
                await send({"type": "websocket.send", "text": frame})
            if close is not None:
                await send({"type": "websocket.close", "code": close.code, "reason": close.reason})
                return

    def _on_overflow(self) -> None:
        member = self.session.member
        if member is not None:
            log.warning("%s removed: too slow, more than %d events queued", member.name, self.outbox.limit)
        self._closer = asyncio.get_running_loop().create_task(self._close_slow())

    async def _close_slow(self) -> None:
        """Close a member that fell behind with 4007, or cut it off if it reads nothing at all."""
        if self.writer is not None:
            self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.writer
        try:
            async with asyncio.timeout(self.settings.shutdown_grace):
                await self.send({"type": "websocket.close", "code": CloseCode.SLOW_CONSUMER, "reason": "slow"})
        except (TimeoutError, OSError):
            self._abort()

    async def _wait_writer(self) -> None:
        writer = self.writer
        if writer is None or writer.done():
            return
        try:
            async with asyncio.timeout(self.settings.shutdown_grace):
                await asyncio.shield(writer)
        except TimeoutError:
            writer.cancel()
            self._abort()

    def _abort(self) -> None:
        """Drop the TCP connection at once: a peer that reads nothing cannot be closed politely."""
        if self.wire is not None:
            self.wire.abort()

    async def finished(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout + 0.5):
                await self._done.wait()


async def _wait_unless_gone(wire: Wire) -> None:
    if not wire.gone:
        await wire.wait_ready()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
