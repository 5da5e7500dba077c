"""uvicorn's HTTP protocol with the socket guard, a header deadline and trusted proxies.

uvicorn has no deadline for the request line and headers: a client that sends
``GET / HTTP/1.1`` and then nothing keeps its socket forever (slowloris). Every
connection, HTTP or WebSocket, begins as an HTTP request in this protocol (the
upgrade is handed to ``wire.ChatWebSocketProtocol`` once the headers are in), so
this is the one place to enforce it: ``GuardedHttpProtocol`` subclasses uvicorn's
httptools protocol (given to ``uvicorn.Config(http=...)``) and

- counts the socket in the ``SocketGuard`` when it is accepted; over the
  per-address cap it answers ``429`` with ``Retry-After`` at once and closes;
- arms a timer of ``--header-timeout`` seconds when the connection opens and after
  each response (for the next request on a keep-alive connection), disarmed when
  the headers are complete; when it fires the socket is closed (with ``408`` if part
  of a request had arrived). Idle keep-alive connections are still closed by
  uvicorn's own keep-alive timeout;
- from a trusted proxy, takes the client's address from ``X-Forwarded-For`` and puts
  it in the ASGI scope, so the throttle, the caps and the log lines all see it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from asyncio import TimerHandle
from collections.abc import Callable
from typing import Any, ClassVar, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .guard import Refusal, SocketGuard, Ticket
from .wire import ChatWebSocketProtocol

log = logging.getLogger("chat_tracker")

RETRY_AFTER_SECONDS = 10
# How long a refused socket stays open so the client can read the answer: closing a
# socket with unread input sends a reset, which can destroy the answer in flight.
LINGER_SECONDS = 1.0


def _response(status: bytes, text: str, extra: bytes = b"") -> bytes:
    body = text.encode("ascii") + b"\n"
    return (
        b"HTTP/1.1 " + status + b"\r\n" + extra + b"content-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(body)).encode("ascii") + b"\r\nconnection: close\r\n\r\n" + body
    )


def too_many_from_address(limit: int) -> bytes:
    """The answer to a socket over ``--max-connections-per-address``."""
    text = f"too many connections from your address (at most {limit}); try again later"
    return _response(b"429 Too Many Requests", text, b"retry-after: %d\r\n" % RETRY_AFTER_SECONDS)


REQUEST_TIMEOUT = _response(b"408 Request Timeout", "the request headers did not arrive in time")


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, guarded (bind it to a guard with ``guarded_protocol``)."""

    guard: ClassVar[SocketGuard]
    header_timeout: ClassVar[float]
    # Builds the protocol an upgraded socket switches to (``native.NativeWebSocket`` bound to
    # the tracker, or ``wire.ChatWebSocketProtocol`` for ASGI); called as uvicorn calls its own.
    websocket: ClassVar[Callable[..., asyncio.Protocol]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ticket: Ticket | None = None
        self.established: tuple[str, int] | None = None  # the client, as a trusted proxy named it
        self._deadline: TimerHandle | None = None
        self._mid_request = False  # part of a request has arrived, its headers not all
        self._refusing = False  # answered and closing: what the peer sends is discarded
        self._linger: TimerHandle | None = None

    # --- the socket's life -------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        verdict = self.guard.admit(self.client[0] if self.client else "unknown", transport.abort)
        if verdict is Refusal.FULL:
            log.debug("At the descriptor ceiling: closed a connection from %s at once", self.client)
            transport.abort()
        elif verdict is Refusal.ADDRESS:
            self._warn_refused(self.client[0] if self.client else "unknown")
            self._refuse(too_many_from_address(self.guard.per_address))
        else:
            assert isinstance(verdict, Ticket)
            self.ticket = verdict
            self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        if self.ticket is not None:
            self.ticket.release()  # never called after an upgrade: the WebSocket protocol releases it
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
            self.guard.lingered()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refusing:
            super().data_received(data)

    # --- parser callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._mid_request = True

    def on_headers_complete(self) -> None:
        if self._refusing:
            return
        self._mid_request = False
        self._disarm_deadline()
        ticket = self.ticket
        assert ticket is not None
        ticket.headers_done()
        if ticket.trusted_peer and not self._establish_client(ticket):
            self.guard.note_refused(Refusal.ADDRESS)
            self._warn_refused(self.guard.proxies.client_address(ticket.peer, self._forwarded_for()))
            self._refuse(too_many_from_address(self.guard.per_address))
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refusing:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refusing:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn armed its keep-alive timer: nothing is pipelined, the next request may begin.
        if self.timeout_keep_alive_task is not None and self.ticket is not None:
            self.ticket.awaiting_headers()
            self._arm_deadline()

    def handle_websocket_upgrade(self) -> None:
        if self._refusing:
            return
        # The WebSocket protocol takes over the socket, its ticket and the established client.
        upgraded = functools.partial(type(self).websocket, ticket=self.ticket, client=self.established)
        self.ws_protocol_class = cast("type[asyncio.Protocol]", upgraded)
        super().handle_websocket_upgrade()

    # --- helpers -----------------------------------------------------------------------

    def _establish_client(self, ticket: Ticket) -> bool:
        """Take the client's address from a trusted proxy's X-Forwarded-For; False if over its cap."""
        client = self.guard.proxies.client_address(ticket.peer, self._forwarded_for())
        if not ticket.attribute(client):
            return False
        self.established = (client, 0)
        self.scope["client"] = self.established
        return True

    def _forwarded_for(self) -> list[str]:
        return [value.decode("latin-1") for name, value in self.headers if name == b"x-forwarded-for"]

    def _warn_refused(self, address: str) -> None:
        if self.guard.should_warn(address, self.loop.time()):
            log.warning(
                "Refusing connections from %s: more than %d open (HTTP 429; logged once a minute per address)",
                address,
                self.guard.per_address,
            )

    def _arm_deadline(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout, self._headers_too_late)

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self.guard.timed_out += 1
        if self._mid_request:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    def _refuse(self, answer: bytes) -> None:
        """Answer and close, reading (and discarding) what the peer still sends for a moment."""
        self._refusing = True
        self._disarm_deadline()
        if self.ticket is not None:
            self.ticket.release()
        if not self.guard.linger():
            self.transport.abort()
            return
        self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)


def guarded_protocol(
    guard: SocketGuard, header_timeout: float, websocket: Callable[..., asyncio.Protocol] = ChatWebSocketProtocol
) -> type[GuardedHttpProtocol]:
    """A ``GuardedHttpProtocol`` class bound to ``guard``, for ``uvicorn.Config(http=...)``."""

    class BoundGuardedHttpProtocol(GuardedHttpProtocol):
        pass

    BoundGuardedHttpProtocol.guard = guard
    BoundGuardedHttpProtocol.header_timeout = header_timeout
    BoundGuardedHttpProtocol.websocket = staticmethod(websocket)
    return BoundGuardedHttpProtocol
