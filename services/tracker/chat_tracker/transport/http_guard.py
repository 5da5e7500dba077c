"""uvicorn's HTTP protocol with the socket guard, a header deadline and trusted proxies.

uvicorn has no deadline for the request line and headers: a client that sends
``GET / HTTP/1.1`` and then nothing keeps its socket forever (slowloris). Every
connection, HTTP or WebSocket, begins as an HTTP request in this protocol (the
upgrade is handed to ``native.NativeWebSocket`` once the headers are in), so
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
  it in the ASGI scope, so the throttle, the caps and the log lines all see it;
- answers ``400`` to a request whose ``Host`` is not on ``--allowed-hosts`` (``core/hosts.py``:
  DNS rebinding), before the app or the WebSocket sees it;
- hands every WebSocket upgrade, whatever its path, to the one ``/ws`` adapter
  (``native.NativeWebSocket``), whatever uvicorn's ``ws`` setting: it answers 101 on
  ``/ws`` and 404 on any other path, so no upgrade ever reaches the ASGI app;
- bounds request bodies before anything reads them (``--max-body-bytes``): a
  ``Content-Length`` over the limit is answered ``413`` with the body unread, streamed
  (chunked) bytes are counted as they arrive and ``413`` stops them at the limit, and a
  body gets ``--body-timeout`` seconds to arrive in full (else ``408``). A response given
  before its request's body has arrived (a 401 from ``/admin``, a 404) closes the
  connection after it instead of reading the rest of the body.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from asyncio import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import is_ssl

from chat_tracker.core.hosts import AllowedHosts
from chat_tracker.transport.guard import SocketGuard, SocketRefusal, Ticket

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
BODY_TIMEOUT = _response(b"408 Request Timeout", "the request body did not arrive in time")
HOST_NOT_ALLOWED = _response(b"400 Bad Request", "this tracker does not answer to that host name (--allowed-hosts)")


def body_too_large(limit: int) -> bytes:
    """The answer to a body over ``--max-body-bytes``."""
    return _response(b"413 Content Too Large", f"the request body is larger than {limit} bytes")


def _host_port(address: object) -> tuple[str, int] | None:
    """An IPv4 or IPv6 socket address as the ASGI scope has it: (host, port)."""
    if isinstance(address, tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return None


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, guarded (bind it to a guard with ``guarded_protocol``)."""

    guard: ClassVar[SocketGuard]
    header_timeout: ClassVar[float]
    # Builds the protocol an upgraded socket switches to (``native.NativeWebSocket`` bound to
    # the tracker); called as uvicorn calls its own WebSocket protocols.
    websocket: ClassVar[Callable[..., asyncio.Protocol]]
    allowed_hosts: ClassVar[AllowedHosts]
    max_body_bytes: ClassVar[int]
    body_timeout: ClassVar[float]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn upgrades only when it has a WebSocket protocol: ours, not the one its config names.
        self.ws_protocol_class = cast("type[asyncio.Protocol]", type(self).websocket)
        self.ticket: Ticket | None = None
        self.established: tuple[str, int] | None = None  # the client, as a trusted proxy named it
        self._deadline: TimerHandle | None = None
        self._mid_request = False  # part of a request has arrived, its headers not all
        self._refusing = False  # answered and closing: what the peer sends is discarded
        self._linger: TimerHandle | None = None
        self._body_deadline: TimerHandle | None = None
        self._body_bytes = 0  # of the current request, as they arrive

    # --- the socket's life -------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._opened(transport)
        verdict = self.guard.admit(self.client[0] if self.client else "unknown", transport.abort)
        if verdict is SocketRefusal.FULL:
            log.debug("At the descriptor ceiling: closed a connection from %s at once", self.client)
            transport.abort()
        elif verdict is SocketRefusal.ADDRESS:
            self._warn_refused(self.client[0] if self.client else "unknown")
            self._refuse(too_many_from_address(self.guard.per_address))
        else:
            assert isinstance(verdict, Ticket)
            self.ticket = verdict
            self._arm_deadline()

    def _opened(self, transport: asyncio.Transport) -> None:
        """uvicorn's own ``connection_made``, the addresses read as ``peername`` and ``sockname``.

        uvicorn's helpers ask the transport for its ``socket``: uvloop then builds a socket object,
        keeps it on the transport and caches both addresses in it, about 360 bytes per connection
        for the connection's life (a WebSocket keeps the transport). Asked by name, uvloop hands
        the addresses over and keeps nothing.
        """
        self.connections.add(self)
        self.transport = transport
        self.flow = FlowControl(transport)
        self.server = _host_port(transport.get_extra_info("sockname"))
        self.client = _host_port(transport.get_extra_info("peername"))
        self.scheme = "https" if is_ssl(transport) else "http"

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        self._disarm_body_deadline()
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
        self._body_bytes = 0

    def on_headers_complete(self) -> None:
        if self._refusing:
            return
        self._mid_request = False
        self._disarm_deadline()
        ticket = self.ticket
        assert ticket is not None
        ticket.headers_done()
        if ticket.trusted_peer and not self._establish_client(ticket):
            self.guard.note_refused(SocketRefusal.ADDRESS)
            self._warn_refused(self.guard.proxies.client_address(ticket.peer, self._forwarded_for()))
            self._refuse(too_many_from_address(self.guard.per_address))
            return
        if not self.allowed_hosts.allows(self._header(b"host")):
            log.debug("Refused a request from %s: Host %.100r is not allowed", self.client, self._header(b"host"))
            self._refuse(HOST_NOT_ALLOWED)
            return
        declared = self._content_length()
        if declared is not None and declared > self.max_body_bytes:
            self._refuse(body_too_large(self.max_body_bytes))  # unread: not one byte of it is buffered
            return
        super().on_headers_complete()
        if (declared or self._header(b"transfer-encoding")) and not self.parser.should_upgrade():
            self._body_deadline = self.loop.call_later(self.body_timeout, self._body_too_late)

    def on_body(self, body: bytes) -> None:
        if self._refusing:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self.max_body_bytes:  # a chunked body, counted as it streams
            self._abandon_request(body_too_large(self.max_body_bytes))
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refusing:
            self._disarm_body_deadline()
            super().on_message_complete()

    def on_response_complete(self) -> None:
        # Answered before the body was all in (a 401 from /admin, a 404): reading the rest would only
        # spend time on bytes nobody wants, so the connection closes after the answer instead.
        unread = not self.transport.is_closing() and self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        if unread:
            self._refuse(None)
            return
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

    def _header(self, name: bytes) -> str | None:
        """The first value of a request header (lower-case ``name``), or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def _content_length(self) -> int | None:
        """The declared body length; None if absent or not a number (httptools refuses the latter)."""
        value = self._header(b"content-length")
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

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

    def _disarm_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _body_too_late(self) -> None:
        self._body_deadline = None
        if self.transport.is_closing():
            return
        self.guard.timed_out += 1
        self._abandon_request(BODY_TIMEOUT)

    def _abandon_request(self, answer: bytes) -> None:
        """Stop a request whose body broke a bound: the app sees a disconnect, the peer ``answer``."""
        cycle = self.cycle
        if cycle is not None and cycle.response_started:
            self.transport.abort()  # the app already answered part of it: no room for another answer
            return
        if cycle is not None:
            cycle.disconnected = True  # its receive() says http.disconnect, its send() does nothing
            cycle.message_event.set()
        self._refuse(answer)

    def _refuse(self, answer: bytes | None) -> None:
        """Answer (unless already answered) and close, reading and discarding what the peer still sends for a moment."""
        self._refusing = True
        self._disarm_deadline()
        self._disarm_body_deadline()
        if self.ticket is not None:
            self.ticket.release()
        if not self.guard.linger():
            self.transport.abort()
            return
        if answer is not None:
            self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)


ANY_HOST = AllowedHosts(any=True)


@dataclass(frozen=True)
class RequestBounds:
    """What a request may be: its Host, its body's size and the time its body may take."""

    allowed_hosts: AllowedHosts = ANY_HOST
    max_body_bytes: int = 65_536
    body_timeout: float = 10.0


def guarded_protocol(
    guard: SocketGuard,
    header_timeout: float,
    websocket: Callable[..., asyncio.Protocol],
    bounds: RequestBounds = RequestBounds(),
) -> type[GuardedHttpProtocol]:
    """A ``GuardedHttpProtocol`` class bound to ``guard``, for ``uvicorn.Config(http=...)``."""

    class BoundGuardedHttpProtocol(GuardedHttpProtocol):
        pass

    BoundGuardedHttpProtocol.guard = guard
    BoundGuardedHttpProtocol.header_timeout = header_timeout
    BoundGuardedHttpProtocol.websocket = staticmethod(websocket)
    BoundGuardedHttpProtocol.allowed_hosts = bounds.allowed_hosts
    BoundGuardedHttpProtocol.max_body_bytes = bounds.max_body_bytes
    BoundGuardedHttpProtocol.body_timeout = bounds.body_timeout
    return BoundGuardedHttpProtocol
