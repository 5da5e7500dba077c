"""``/ws``: one WebSocket connection's dialogue, from handshake to goodbye.

A raw ASGI endpoint (no framework in between) so that it talks to uvicorn's
WebSocket protocol directly. Each connection has two tasks: this reader, which
walks the dialogue (password, name, messages) and hands requests to the room;
and a writer, which drains the connection's outbox onto the socket. Everything
the tracker sends - prompts, errors, events, goodbyes - goes through the outbox,
so it reaches the peer in one order, and a peer that stops reading never blocks
anyone but itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from chat_protocol import (
    SUBPROTOCOL,
    Auth,
    Authenticated,
    CloseCode,
    Hello,
    Join,
    Leave,
    Members,
    NameRefused,
    ProtocolError,
    Say,
    Who,
    decode_client,
    encode,
    PROTOCOL_VERSION,
)

from .auth import password_from_authorization
from .dialects import JSON, NAME_PROMPT, PASSWORD_OK, PASSWORD_PROMPT, PLAIN, WRONG_PASSWORD, Dialect
from .outbox import Outbox
from .room import Kicked, Member, Refused
from .service import Closable, Tracker
from .wire import EXTENSION, Wire

log = logging.getLogger("chat_tracker")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Close codes the WebSocket layer uses when the peer broke the rules: the member
# was removed for cause, the connection was not "lost".
_PROTOCOL_VIOLATIONS = {1002, 1003, 1007, 1009}
# 1005 is not here: uvicorn reports a TCP connection that ended without a close
# frame (killed client, reset, ping timeout) as 1005.
_NORMAL_CLOSES = {1000, 1001}


class Disconnected(Exception):
    """The peer went away; ``code`` is the close code uvicorn reported."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Stop(Exception):
    """End this session now (the goodbye is already queued)."""


def leave_reason(code: int) -> str:
    """chat.log's leave reason for a connection that closed with ``code``."""
    if code in _NORMAL_CLOSES or code in _PROTOCOL_VIOLATIONS:
        return "closed"
    return "lost"


class WebSocketEndpoint:
    """The ASGI app for ``/ws``."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await Session(self.tracker, scope, receive, send).run()


class Session(Closable):
    """One connection, joined or not."""

    def __init__(self, tracker: Tracker, scope: Scope, receive: Receive, send: Send) -> None:
        self.tracker = tracker
        self.room = tracker.room
        self.settings = tracker.settings
        self.scope = scope
        self.receive = receive
        self.send = send
        client = scope.get("client")
        self.address = client[0] if client else "unknown"
        self.dialect: Dialect = JSON if SUBPROTOCOL in scope.get("subprotocols", ()) else PLAIN
        self.wire: Wire | None = scope.get("extensions", {}).get(EXTENSION)
        self.outbox = Outbox(self.settings.limits.queue_size, on_overflow=self._on_overflow, wire=self.wire)
        self.member: Member | None = None
        self.writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._peer_gone = False
        self._done = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------

    async def run(self) -> None:
        if (await self.receive())["type"] != "websocket.connect":
            return
        subprotocol = SUBPROTOCOL if self.dialect is JSON else None
        await self.send({"type": "websocket.accept", "subprotocol": subprotocol})
        self.writer = asyncio.create_task(self._pump())
        if not self.tracker.connections.try_open(self):
            self._refuse("server_full", "the tracker is full; try again later", CloseCode.TOO_MANY_CONNECTIONS)
            await self._wait_writer()
            return
        try:
            await self._dialogue()
        except Disconnected as gone:
            self._peer_gone = True
            self._leave_room(leave_reason(gone.code))
        except Stop:
            pass
        finally:
            self.tracker.connections.close(self)
            self._leave_room("closed")
            if self._closer is not None:
                # Dropped as too slow: returning now would let uvicorn close the socket
                # before the 4007 close frame is out. The closer ends within the grace.
                await asyncio.shield(self._closer)
            elif self._peer_gone and self.writer is not None:
                self.writer.cancel()
            else:
                await self._wait_writer()
            self._done.set()

    async def _dialogue(self) -> None:
        if self.scope.get("query_string"):
            self._refuse("password_in_url", "never put the password in the URL", CloseCode.PASSWORD_IN_URL)
            raise Stop
        if not await self._authenticate():
            raise Stop
        self.member = await self._choose_name()
        await self._chat(self.member)

    def _leave_room(self, reason: str) -> None:
        if self.member is not None:
            self.room.leave(self.member, reason)  # no-op if it already left

    # --- reading -----------------------------------------------------------------

    async def _next_text(self) -> str:
        """The next text frame. Binary frames close the connection with 1003."""
        message = await self.receive()
        if message["type"] == "websocket.disconnect":
            raise Disconnected(int(message.get("code", 1005)))
        text = message.get("text")
        if text is None:
            self._refuse("binary_not_accepted", "binary frames are not accepted", CloseCode.UNSUPPORTED_DATA)
            raise Stop
        return str(text)

    async def _next_text_within(self, seconds: float, what: str) -> str:
        try:
            async with asyncio.timeout(seconds):
                return await self._next_text()
        except TimeoutError:
            self._refuse("handshake_timeout", f"no {what} within {seconds:g} s", CloseCode.HANDSHAKE_TIMEOUT)
            raise Stop from None

    # --- stage 1: password -------------------------------------------------------

    async def _authenticate(self) -> bool:
        if self.dialect is PLAIN:
            self.outbox.push(PASSWORD_PROMPT)
            typed = await self._next_text_within(self.settings.auth_timeout, "password")
            return await self._check_password(typed.rstrip("\r\n"), then=(PASSWORD_OK, NAME_PROMPT))
        header = _header(self.scope, b"authorization")
        if header is not None:
            from_header = password_from_authorization(header)
            return await self._check_password(from_header, then=(encode(Hello(PROTOCOL_VERSION, True)),))
        self.outbox.push(encode(Hello(PROTOCOL_VERSION, False)))
        frame = await self._next_text_within(self.settings.auth_timeout, "password")
        try:
            request = decode_client(frame)
        except ProtocolError as error:
            self._refuse(error.code, error.message, CloseCode.PROTOCOL_ERROR)
            return False
        if not isinstance(request, Auth):
            self._refuse("not_authenticated", "send 'auth' with the password first", CloseCode.PROTOCOL_ERROR)
            return False
        return await self._check_password(request.password, then=(encode(Authenticated()),))

    async def _check_password(self, candidate: str | None, then: tuple[str, ...]) -> bool:
        if await self.tracker.gate.check(self.address, candidate):
            self.outbox.push_texts(then)
            return True
        log.warning("Wrong password from %s", self.address)
        message = WRONG_PASSWORD if self.dialect is PLAIN else "wrong password"
        self._refuse("bad_password", message, CloseCode.BAD_PASSWORD, plain_prefix=False)
        return False

    # --- stage 2: name -----------------------------------------------------------

    async def _choose_name(self) -> Member:
        while True:
            frame = await self._next_text_within(self.settings.join_timeout, "accepted name")
            name = self._requested_name(frame)
            if name is None:
                continue
            try:
                return self.room.join(name, self.dialect, self.outbox, self.address)
            except (NameRefused, Refused) as refusal:
                self._name_refused(refusal.code, str(refusal))

    def _requested_name(self, frame: str) -> str | None:
        if self.dialect is PLAIN:
            name = frame.rstrip("\r\n")
            if name == "exit":
                self.outbox.close(CloseCode.NORMAL, "left", ("Bye.",))
                raise Stop
            return name
        try:
            request = decode_client(frame)
        except ProtocolError as error:
            self._error(error.code, error.message)
            return None
        if isinstance(request, Join):
            return request.name
        if isinstance(request, Auth):
            self._error("already_authenticated", "already authenticated; send 'join'")
        else:
            self._error("not_joined", "join the room first")
        return None

    def _name_refused(self, code: str, reason: str) -> None:
        if self.dialect is PLAIN:
            self.outbox.push_texts([f"Name refused: {reason}", NAME_PROMPT])
        else:
            self._error(code, reason)

    # --- stage 3: chat -----------------------------------------------------------

    async def _chat(self, member: Member) -> None:
        handle = self._handle_plain if self.dialect is PLAIN else self._handle_json
        while not member.left:
            handle(member, await self._next_text())
        raise Stop

    def _handle_plain(self, member: Member, frame: str) -> None:
        text = frame.rstrip("\r\n")
        if text == "exit":
            self._leave(member)
        else:
            self._say(member, text)

    def _handle_json(self, member: Member, frame: str) -> None:
        try:
            request = decode_client(frame)
        except ProtocolError as error:
            self._error(error.code, error.message)
            return
        if isinstance(request, Say):
            self._say(member, request.text)
        elif isinstance(request, Who):
            self.outbox.push(encode(Members(self.room.who())))
        elif isinstance(request, Leave):
            self._leave(member)
        elif isinstance(request, Join):
            self._error("already_joined", f"already joined as {member.name}")
        else:
            self._error("already_authenticated", "already authenticated")

    def _say(self, member: Member, text: str) -> None:
        try:
            self.room.say(member, text)
        except Kicked:
            log.warning("%s removed for flooding", member.name)
        except Refused as refusal:
            self._error(refusal.code, refusal.message)

    def _leave(self, member: Member) -> None:
        goodbye = self.dialect.bye("left", f"Bye, {member.name}.")
        self.room.leave(member, "exit", close=(CloseCode.NORMAL, "left", (goodbye,)))

    # --- writing -----------------------------------------------------------------

    def _error(self, code: str, message: str) -> None:
        self.outbox.push(self.dialect.error(code, message))

    def _refuse(self, code: str, message: str, close_code: int, plain_prefix: bool = True) -> None:
        """Send an error, then close with ``close_code``."""
        frame = message if (self.dialect is PLAIN and not plain_prefix) else self.dialect.error(code, message)
        self.outbox.close(close_code, code, (frame,))

    def say_goodbye(self, code: int, message: str) -> None:
        self.outbox.close(code, "shutdown", (self.dialect.bye("shutdown", message),))

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
            frames, close = outbox.take_now()
            if outbox.overflowed or wire.gone:
                return
            if frames:
                wire.write(b"".join(frames))  # type: ignore[arg-type]
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
        member = self.member
        if member is not None:
            log.warning("%s removed: too slow, more than %d events queued", member.name, self.outbox.limit)
            self.room.drop_slow(member)
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


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
