"""``/ws``: one asyncio protocol per connection, and no task while it idles.

uvicorn's HTTP protocol (``http_guard.GuardedHttpProtocol``) reads the upgrade request
and hands the socket to a ``NativeWebSocket``; uvicorn then only shuts it down at exit.
This is the socket's side: bytes in go through websockets' sans-I/O parser
(``handshake.parser``), and what they mean goes to the member's side, the
``driver.SessionDriver`` that runs its ``Session``; frames out leave through the
``wire.Wire``, written at once while the socket keeps up and drained from
``resume_writing`` when it did not. A task exists only while a resume's replay runs (it
may read chat.log); frames that arrive meanwhile wait in the parser's events, with
reading paused.

What the peer sees: the handshake (``handshake.answer``: ``Origin`` checked against
``--allowed-origins``, ``groupchat.v1`` chosen when offered, permessage-deflate with
``--ws-deflate``), keepalive pings (``keepalive.Keepalive``; no pong in time: dropped,
the member is ``lost``), close codes, 1009 for a message over ``--max-frame-bytes``
(compressed or not), 1007 for invalid UTF-8.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from chat_protocol import CloseCode
from chat_tracker.transport import handshake
from chat_tracker.transport.driver import NO_STATUS, SessionDriver
from chat_tracker.transport.framing import FrameCodec, InFrame
from chat_tracker.transport.guard import Ticket
from chat_tracker.transport.keepalive import Keepalive
from chat_tracker.transport.wire import Wire

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from chat_tracker.service.tracker import Tracker

log = logging.getLogger("chat_tracker")

CLOSE_TIMEOUT = 10.0  # seconds for the peer to answer our close frame before the socket is closed


class NativeWebSocket(asyncio.Protocol):
    """One ``/ws`` connection's socket, from the upgrade request to its end."""

    __slots__ = (
        "_fragments",
        "_pending",
        "address",
        "conn",
        "connections",
        "driver",
        "established",
        "keepalive",
        "ticket",
        "tracker",
        "wire",
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
        """Called as uvicorn calls its own WebSocket protocols, plus what ``http_guard`` hands over."""
        settings = tracker.settings
        self.tracker = tracker
        self.ticket = ticket
        self.established = client  # what a trusted proxy named (http_guard), else None
        self.connections: set[Any] = server_state.connections  # uvicorn's: it shuts them down at exit
        self.conn: ServerProtocol | FrameCodec = handshake.parser(settings.limits.max_frame_bytes, settings.ws_deflate)
        self.wire = Wire(self.conn)
        self.keepalive = Keepalive(settings.ping_interval, settings.ping_timeout, self)
        self.address = "unknown"
        self.driver: SessionDriver | None = None  # once the upgrade is accepted
        self._pending: list[Any] | None = None  # parsed events waiting while a replay runs
        self._fragments: list[bytes] | None = None  # a fragmented message being reassembled

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transport is no asyncio.Transport subclass, but it has the same methods.
        self.wire.transport = cast("asyncio.Transport", transport)
        self.connections.add(self)
        if self.established is not None:
            self.address = self.established[0]
        elif self.ticket is not None:
            self.address = self.ticket.peer  # the guard's own string: not a second copy per member
        else:
            peer = transport.get_extra_info("peername")
            self.address = str(peer[0]) if peer else "unknown"

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        conn.receive_data(data)
        self._handle(conn.events_received())
        if conn.parser_exc is not None and not self.wire.close_sent:
            self._protocol_error()
            return
        self.wire.flush()  # pongs, a close frame answered, a refused handshake's answer
        if self.driver is None and (conn.handshake_exc is not None or conn.close_expected()):
            self.wire.close()  # no valid upgrade request: answered (or not), and closed

    def eof_received(self) -> bool | None:
        return None  # close the socket (connection_lost follows)

    def pause_writing(self) -> None:
        self.wire.paused = True

    def resume_writing(self) -> None:
        self.wire.paused = False
        if self.driver is not None:
            self.driver.drain()
            self.driver.wake_ready()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.keepalive.stop()
        self.wire.cancel_close()
        if self.ticket is not None:
            self.ticket.release()
        if self.driver is not None:
            self.driver.socket_closed()

    def shutdown(self) -> None:
        """uvicorn's last step at exit, after the tracker's goodbyes: whatever is still open closes."""
        self.keepalive.stop()
        transport = self.wire.transport
        if transport is None or transport.is_closing():
            return
        if self.driver is not None and not self.wire.close_sent:
            self.send_close(CloseCode.SERVICE_RESTART, "")
        transport.close()

    # --- what the driver asks of the socket (driver.Socket) ---------------------------

    def send_close(self, code: int, reason: str, timeout: float = CLOSE_TIMEOUT, abort: bool = False) -> None:
        wire = self.wire
        if wire.close_sent:
            return
        self.keepalive.stop()
        wire.send_close(code, reason)
        wire.close_after(timeout, wire.abort if abort else wire.close)
        if self.driver is not None:
            # Once our close is sent, the session hears of it with our code. Soon, not now: a
            # close is often requested from inside the room (a resume taking this member over,
            # a leave being delivered), which must finish before hearing of it.
            asyncio.get_running_loop().call_soon(self.driver.disconnected, code)

    def resume_reading(self) -> None:
        pending, self._pending = self._pending, None
        transport = self.wire.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()
        if pending:
            self._handle(pending)
            self.wire.flush()

    # --- the handshake ---------------------------------------------------------------

    def _handshake(self, request: Request) -> None:
        settings = self.tracker.settings
        parser = self.conn
        if not isinstance(parser, ServerProtocol):
            return  # only websockets' parser reads a request: none comes once the codec took over
        opened = handshake.answer(parser, request, settings.allowed_origins, self._refused_origin)
        self.wire.flush()
        if opened is None:
            self.wire.close_sent = True
            self.wire.close()
            return
        if not opened.compressed:
            # websockets' parser answered the upgrade (nothing follows it in what uvicorn handed over): this
            # connection's frames are read and written by our lean codec from now on (framing.py).
            self.conn = self.wire.conn = FrameCodec(settings.limits.max_frame_bytes)
        self.keepalive.start()
        self.driver = SessionDriver(self.tracker, self, self.wire, opened, self.address)
        self.driver.start(opened)

    def _refused_origin(self, origin: str | None) -> None:
        self.tracker.warn_refused_origin(self.address, origin)

    # --- frames in -----------------------------------------------------------------

    def _handle(self, events: Sequence[Any]) -> None:
        for index, event in enumerate(events):
            if self._pending is not None or (self.driver is not None and self.driver.busy):
                # A replay is under way: the rest waits, in order.
                self._pending = [*(self._pending or ()), *events[index:]]
                if self.wire.transport is not None:
                    self.wire.transport.pause_reading()
                return
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, (Frame, InFrame)):
                self._frame(event)

    def _frame(self, frame: Frame | InFrame) -> None:
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
            if self.driver is not None:
                self.driver.binary()
        elif opcode is Opcode.PONG:
            self.keepalive.pong(bytes(frame.data))
        elif opcode is Opcode.CLOSE:
            self._peer_closed()
        # PING: the parser has queued the pong; data_received writes it.

    def _text(self, data: bytes | bytearray | memoryview) -> None:
        driver = self.driver
        if driver is None or driver.ended:
            return
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            log.info("Closed a connection that sent invalid UTF-8 (1007)")
            self.conn.fail(1007)
            self._protocol_error()
            return
        driver.text(text)

    def _peer_closed(self) -> None:
        """The peer's close frame: our answer is queued by the parser; the socket then closes."""
        wire = self.wire
        if wire.close_sent:
            wire.close()  # it answered ours: the closing handshake is complete
            return
        received = self.conn.close_rcvd
        wire.close_sent = True  # the parser answers it
        wire.flush()
        wire.close()
        if self.driver is not None:
            self.driver.disconnected(received.code if received is not None else NO_STATUS)

    def _protocol_error(self) -> None:
        """The parser failed the connection (1002, 1009, 1007...): its close frame goes out, then the socket."""
        sent = self.conn.close_sent
        self.wire.close_sent = True
        self.wire.flush()
        self.wire.close()
        if self.driver is not None:
            self.driver.disconnected(sent.code if sent is not None else 1002)

    # --- what keepalive asks of the socket (keepalive.Peer) ----------------------------

    def send_ping(self, payload: bytes) -> bool:
        if self.wire.gone:
            return False
        self.conn.send_ping(payload)
        self.wire.flush()
        return True

    def silent(self) -> None:
        """No pong in time: the peer is gone without a word (the session hears ``lost``)."""
        wire = self.wire
        if wire.gone:
            return
        self.conn.fail(1011, "keepalive ping timeout")
        wire.flush()
        wire.close_sent = True
        wire.close()
