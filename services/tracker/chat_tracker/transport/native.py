"""``/ws`` without ASGI: one asyncio protocol per connection, and no task while it idles.

The ASGI adapter (``websocket.py``) costs every connection two tasks (its reader and
its writer), uvicorn's receive queue and events, an ASGI scope with a copy of the
request's headers: about 25 KB per idle member. This adapter drives the same sans-I/O
``Session`` straight from the transport's callbacks: bytes in go through the
``websockets`` sans-I/O parser to the session, frames out go from the member's
outbox to the transport, written at once while the socket keeps up and drained from
``resume_writing`` when it did not. A task exists only while the session waits for
something slow: a resume's replay (it may read chat.log); a password check is answered
at once, right, wrong or refused (``auth.PasswordGate``). Its frames meanwhile wait in the parser's events,
with reading paused, exactly as uvicorn's queue holds them for the ASGI adapter.

What the peer sees is the same as through uvicorn: the handshake (``Origin`` checked
against ``--allowed-origins``, the ``groupchat.v1`` subprotocol chosen when offered),
keepalive pings (``--ping-interval``/``--ping-timeout``; no pong in time: dropped, the
member is ``lost``), close codes, 1009 for a frame over ``--max-frame-bytes``, 1007 for
invalid UTF-8. ``server.build_server`` uses it unless per-message deflate is on
(``--ws-deflate``: each frame compressed per connection, which the ASGI adapter does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL, WEBSOCKET_PATH, CloseCode
from chat_tracker.core.dialects import JSON, PLAIN, Dialect
from chat_tracker.core.origins import handshake_allowed
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.session import CheckPassword, Replay, Session, SessionState, Timeouts
from chat_tracker.service.tracker import Closable
from chat_tracker.transport.guard import Ticket
from chat_tracker.transport.replaying import replay

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from chat_tracker.service.tracker import Tracker

log = logging.getLogger("chat_tracker")

CLOSE_TIMEOUT = 10.0  # seconds for the peer to answer our close frame before the socket is closed
NO_STATUS = 1005  # how uvicorn reports a connection that ended without a close frame; the session expects it
_SUBPROTOCOLS = (Subprotocol(SUBPROTOCOL),)
_QUIET = logging.getLogger("uvicorn.error")  # the websockets parser's own lines, at uvicorn's level


def _select_subprotocol(_: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """``groupchat.v1`` when offered (the JSON dialect); otherwise none, and the plain dialect."""
    return _SUBPROTOCOLS[0] if _SUBPROTOCOLS[0] in offered else None


class NativeWebSocket(asyncio.Protocol, Closable):
    """One ``/ws`` connection, from the upgrade request to the socket's end."""

    __slots__ = (
        "_close_timer",
        "_deadline",
        "_done",
        "_fragments",
        "_pending",
        "_ping_payload",
        "_ping_timer",
        "_pong_timer",
        "_ready",
        "_task",
        "address",
        "close_sent",
        "conn",
        "connections",
        "ended",
        "established",
        "lost",
        "outbox",
        "paused",
        "session",
        "ticket",
        "tracker",
        "transport",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        tracker: Tracker,
        ticket: Ticket | None = None,
        client: tuple[str, int] | None = None,
    ) -> None:
        self.tracker = tracker
        self.ticket = ticket
        self.established = client  # what a trusted proxy named (http_guard), else None
        self.connections: set[Any] = server_state.connections  # uvicorn's: it shuts them down at exit
        self.conn = ServerProtocol(
            max_size=tracker.settings.limits.max_frame_bytes, select_subprotocol=_select_subprotocol, logger=_QUIET
        )
        self.transport: asyncio.Transport | None = None
        self.address = "unknown"
        self.session: Session | None = None
        self.outbox: Outbox | None = None
        self.paused = False  # the transport's buffer is over its high-water mark
        self.close_sent = False
        self.lost = False
        self.ended = False  # the session has been told the connection is over
        self._pending: list[Any] | None = None  # parsed events waiting while a task runs
        self._fragments: list[bytes] | None = None  # a fragmented message being reassembled
        self._task: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._ready: asyncio.Future[None] | None = None  # a replay waiting for the socket to drain
        self._done: asyncio.Future[None] | None = None  # shutdown waiting for the socket's end

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transport is no asyncio.Transport subclass, but it has the same methods.
        self.transport = cast("asyncio.Transport", transport)
        self.connections.add(self)
        if self.established is not None:
            self.address = self.established[0]
        else:
            peer = transport.get_extra_info("peername")
            self.address = str(peer[0]) if peer else "unknown"

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        conn.receive_data(data)
        self._handle(conn.events_received())
        if conn.parser_exc is not None and not self.close_sent:
            self._protocol_error()
            return
        self._flush_conn()  # pongs, a close frame answered, a refused handshake's answer
        if self.session is None and (conn.handshake_exc is not None or conn.close_expected()):
            self._close_transport()  # no valid upgrade request: answered (or not), and closed

    def eof_received(self) -> bool | None:
        return None  # close the socket (connection_lost follows)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._drain()
        self._wake_ready()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.connections.discard(self)
        self._stop_keepalive()
        for timer in (self._deadline, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._deadline = self._close_timer = None
        if self.ticket is not None:
            self.ticket.release()
        if self.session is not None:
            self._disconnected(NO_STATUS)
        self._wake_ready()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # --- what outboxes need of a socket (outbox.WireLike) ---------------------------

    def ready(self) -> bool:
        transport = self.transport
        return not self.paused and not self.close_sent and transport is not None and not transport.is_closing()

    def write(self, frames: bytes) -> None:
        assert self.transport is not None
        self.transport.write(frames)

    # --- shutdown and admission (service.Closable) ----------------------------------

    def say_goodbye(self, code: int, message: str, reason: str) -> None:
        if self.session is not None:
            self.session.say_goodbye(code, message, reason)

    def make_room(self) -> None:
        log.debug("Dropped an unauthenticated connection from %s to make room", self.address)
        if self.session is not None:
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

    def shutdown(self) -> None:
        """uvicorn's last step at exit, after the tracker's goodbyes: whatever is still open closes."""
        self._stop_keepalive()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.session is not None and not self.close_sent:
            self._send_close(CloseCode.SERVICE_RESTART, "")
        transport.close()

    # --- the handshake ---------------------------------------------------------------

    def _handshake(self, request: Request) -> None:
        conn, settings = self.conn, self.tracker.settings
        raw_path, _, query = request.path.partition("?")
        headers = request.headers
        origin_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1", "replace"))
            for name, value in headers.raw_items()
            if name.lower() in ("origin", "host")
        ]
        authorization = headers.get("Authorization")
        if unquote(raw_path) != WEBSOCKET_PATH:
            self._reject(404)
            return
        allowed, origin = handshake_allowed(settings.allowed_origins, origin_headers)
        if not allowed:
            self.tracker.warn_refused_origin(self.address, origin)
            self._reject(403)
            return
        response = conn.accept(request)
        headers.clear()  # the parser keeps the request object: do not keep its headers too
        if response.status_code != 101:  # not a valid upgrade (websockets says why in the body)
            conn.send_response(response)
            self._flush_conn()
            self._close_transport()
            return
        for name in ("Date", "Server"):  # as uvicorn (server_header=False) sends them: neither
            if name in response.headers:
                del response.headers[name]
        dialect = JSON if "Sec-WebSocket-Protocol" in response.headers else PLAIN
        conn.send_response(response)
        self._flush_conn()
        self._start_keepalive()
        self._open_session(dialect, query.encode("latin-1", "replace"), authorization)

    def _reject(self, status: int) -> None:
        response = self.conn.reject(status, "")
        self.conn.send_response(response)
        self._flush_conn()
        self.close_sent = True
        self._close_transport()

    def _open_session(self, dialect: Dialect, query: bytes, authorization: str | None) -> None:
        tracker, settings = self.tracker, self.tracker.settings
        outbox = Outbox(
            settings.limits.queue_size, on_overflow=self._on_overflow, wire=self, coalescer=tracker.coalescer
        )
        outbox.on_wake = self._drain
        self.outbox = outbox
        timeouts = Timeouts(auth=settings.auth_timeout, join=settings.join_timeout)
        session = Session(tracker.room, dialect, outbox, self.address, timeouts, tracker.entries)
        self.session = session
        if not tracker.admit(self, session):
            self.ended = True  # never admitted: nothing to release
            return
        self._act(session.start(query, authorization))
        self._after_input()

    # --- frames in -----------------------------------------------------------------

    def _handle(self, events: list[Any]) -> None:
        for index, event in enumerate(events):
            if self._task is not None or self._pending is not None:
                # A password check or a replay is under way: the rest waits, in order.
                self._pending = [*(self._pending or ()), *events[index:]]
                if self.transport is not None:
                    self.transport.pause_reading()
                return
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event)

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.CONT:
            if opcode is Opcode.TEXT:
                if frame.fin:
                    self._text(frame.data)
                    return
                self._fragments = [bytes(frame.data)]
                return
            if self._fragments is None:
                return  # a continuation of a binary message: refused already
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), None
                self._text(data)
        elif opcode is Opcode.BINARY:
            session = self.session
            if session is not None and session.reading:
                session.receive_binary()
                self._after_input()
        elif opcode is Opcode.PONG:
            self._pong(bytes(frame.data))
        elif opcode is Opcode.CLOSE:
            self._peer_closed()
        # PING: the parser has queued the pong; data_received writes it.

    def _text(self, data: bytes | bytearray | memoryview) -> None:
        session = self.session
        if session is None or self.ended:
            return
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            log.info("Closed a connection that sent invalid UTF-8 (1007)")
            self.conn.fail(1007)
            self._protocol_error()
            return
        if session.state is SessionState.CHATTING:
            session.receive_text(text)  # the hot path: no deadline, no action
            if session.state is not SessionState.CHATTING:
                self._after_input()
            return
        if not session.reading:
            return
        self._act(session.receive_text(text))
        self._after_input()

    def _peer_closed(self) -> None:
        """The peer's close frame: our answer is queued by the parser; the socket then closes."""
        if self.close_sent:
            self._close_transport()  # it answered ours: the closing handshake is complete
            return
        received = self.conn.close_rcvd
        self.close_sent = True  # the parser answers it
        self._flush_conn()
        self._close_transport()
        if self.session is not None:
            self._disconnected(received.code if received is not None else NO_STATUS)

    def _protocol_error(self) -> None:
        """The parser failed the connection (1002, 1009, 1007...): its close frame goes out, then the socket."""
        sent = self.conn.close_sent
        self.close_sent = True
        self._flush_conn()
        self._close_transport()
        if self.session is not None:
            self._disconnected(sent.code if sent is not None else 1002)

    # --- the session's actions ---------------------------------------------------------

    def _act(self, action: CheckPassword | Replay | None) -> None:
        session = self.session
        if isinstance(action, CheckPassword) and session is not None:
            # Answered now, right or wrong or refused: a password check never waits (auth.PasswordGate).
            session.password_checked(self.tracker.gate.check(self.address, action.candidate))
            if session.state is SessionState.AWAIT_NAME:
                self.tracker.connections.authenticated(self)  # a member now: never dropped for room
        elif isinstance(action, Replay):
            self.tracker.connections.authenticated(self)  # resumed (also after a paused check)
            self._task = asyncio.get_running_loop().create_task(self._carry_out(action))

    async def _carry_out(self, action: Replay) -> None:
        session, tracker = self.session, self.tracker
        assert session is not None and self.outbox is not None
        try:
            settings = tracker.settings
            await replay(
                tracker.room, tracker.journal, settings.history_size, action.resuming, self.outbox, self._wait_ready
            )
            session.replayed()
        finally:
            self._task = None
        if self.ended:
            return
        self._after_input()
        pending, self._pending = self._pending, None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        if pending:
            self._handle(pending)
            self._flush_conn()

    async def _wait_ready(self) -> None:
        if self.ready() or self.lost or (self.outbox is not None and self.outbox.closing):
            return
        if self._ready is None or self._ready.done():
            self._ready = asyncio.get_running_loop().create_future()
        await self._ready

    def _wake_ready(self) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _after_input(self) -> None:
        """After the session took a frame (or a timeout, an answer): a new deadline, or the end."""
        session = self.session
        if session is None:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if session.state is SessionState.CLOSED:
            self._end()
            return
        deadline = session.deadline if session.reading and self._task is None else None
        if deadline is not None:
            self._deadline = asyncio.get_running_loop().call_later(deadline, self._timed_out)

    def _timed_out(self) -> None:
        self._deadline = None
        if self.session is not None and self.session.reading and self._task is None:
            self.session.timed_out()
            self._after_input()

    # --- the end -----------------------------------------------------------------------

    def _disconnected(self, code: int) -> None:
        """The connection is over for the session (``code`` as uvicorn would report it)."""
        session = self.session
        if session is None or self.ended:
            return
        if session.state is not SessionState.CLOSED:
            session.disconnected(code)
        self._end()

    def _end(self) -> None:
        """The session reads nothing more: out of the room and the tracker's connections (once)."""
        if self.ended or self.session is None:
            return
        self.ended = True
        if self._task is not None and self.lost:
            self._task.cancel()
        self.tracker.connections.close(self)
        self.session.end()
        outbox = self.outbox
        if outbox is not None and not outbox.closing and not self.close_sent and not self.lost:
            # Its goodbye is on its way (a leave is delivered with the next batch): it gets
            # the grace to arrive, then the socket is cut, as the ASGI adapter waits for its writer.
            self._set_close_timer(self.tracker.settings.shutdown_grace, self._abort)

    # --- frames out -----------------------------------------------------------------

    def _drain(self) -> None:
        """Write what the outbox holds, and its close request once that is out (the writer's job)."""
        outbox = self.outbox
        if outbox is not None and outbox.closing:
            self._wake_ready()  # a replay waiting for this socket stops now, not once the peer reads again
        if outbox is None or outbox.overflowed or not self.ready():
            return
        data, close = outbox.take_wire_now()
        if data:
            self.write(data)
        if close is not None:
            self._send_close(close.code, close.reason)

    def _send_close(self, code: int, reason: str, timeout: float = CLOSE_TIMEOUT, abort: bool = False) -> None:
        if self.close_sent:
            return
        self.close_sent = True
        self._stop_keepalive()
        with contextlib.suppress(InvalidState):
            self.conn.send_close(code, reason)
        self._flush_conn()
        self._set_close_timer(timeout, self._abort if abort else self._close_transport)
        # As through uvicorn: once our close is sent, the session hears of it with our code. Soon,
        # not now: a close is often requested from inside the room (a resume taking this
        # member over, a leave being delivered), which must finish before hearing of it.
        asyncio.get_running_loop().call_soon(self._disconnected, code)

    def _on_overflow(self) -> None:
        session = self.session
        member = session.member if session is not None else None
        if member is not None:
            log.warning(
                "%s removed: too slow, more than %d events queued", member.name, self.tracker.settings.limits.queue_size
            )
        # A peer that reads nothing would never take the close frame: cut it off after the grace.
        self._send_close(CloseCode.SLOW_CONSUMER, "slow", timeout=self.tracker.settings.shutdown_grace, abort=True)

    def _flush_conn(self) -> None:
        output = self.conn.data_to_send()
        transport = self.transport
        if output and transport is not None and not transport.is_closing():
            transport.write(b"".join(output))

    def _set_close_timer(self, timeout: float, then: Callable[[], None]) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        self._close_timer = asyncio.get_running_loop().call_later(timeout, then)

    def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # --- keepalive -------------------------------------------------------------------

    def _start_keepalive(self) -> None:
        interval = self.tracker.settings.ping_interval
        if interval > 0:
            self._ping_timer = asyncio.get_running_loop().call_later(interval, self._ping)

    def _stop_keepalive(self) -> None:
        for timer in (self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = None
        self._ping_payload = None

    def _ping(self) -> None:
        self._ping_timer = None
        if self.close_sent or self.transport is None or self.transport.is_closing():
            return
        self._ping_payload = struct.pack("!I", random.getrandbits(32))
        self.conn.send_ping(self._ping_payload)
        self._flush_conn()
        loop = asyncio.get_running_loop()
        timeout = self.tracker.settings.ping_timeout
        if timeout > 0:
            self._pong_timer = loop.call_later(timeout, self._ping_unanswered)
        else:
            self._start_keepalive()

    def _pong(self, payload: bytes) -> None:
        if self._ping_payload is None or payload != self._ping_payload:
            return  # unsolicited, or an answer to an older ping
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._start_keepalive()

    def _ping_unanswered(self) -> None:
        """No pong in time: the peer is gone without a word (the session hears ``lost``)."""
        self._pong_timer = None
        self._ping_payload = None
        if self.close_sent or self.transport is None or self.transport.is_closing():
            return
        self.conn.fail(1011, "keepalive ping timeout")
        self._flush_conn()
        self.close_sent = True
        self._close_transport()
