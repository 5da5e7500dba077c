"""Direct writes of pre-built WebSocket frames, offered by our uvicorn protocol as an ASGI extension.

Fan-out sends the same text to many members. Through ASGI every recipient costs a
message dict, an awaited ``send`` and a fresh frame. A server-to-client text frame
(no mask, no compression) is the same bytes for every recipient, so the tracker
builds it once per event and writes it straight to each member's transport, the way
``websockets.broadcast()`` does. ``ChatWebSocketProtocol`` is uvicorn's sans-I/O
WebSocket protocol plus one thing: it puts a ``Wire`` for the connection into
``scope["extensions"]["chat.wire"]``. Without that extension (another server, the
test client, or per-message deflate on) the tracker falls back to plain ASGI sends.

It also carries the connection's place in the socket guard (``guard.Ticket``) and
the client address a trusted proxy named, handed over by ``http_guard`` at the
upgrade: the socket stays counted until it closes, and ``scope["client"]`` is the
established address.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from chat_tracker.transport.guard import Ticket

EXTENSION = "chat.wire"


class Wire:
    """One connection's socket, for frames built elsewhere."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    def ready(self) -> bool:
        """True when a write goes out now: open, not closing, and the peer is keeping up."""
        protocol = self._protocol
        return (
            protocol.writable.is_set()
            and not protocol.close_sent
            and not protocol.disconnected
            and not protocol.transport.is_closing()
        )

    @property
    def gone(self) -> bool:
        protocol = self._protocol
        return protocol.close_sent or protocol.disconnected or protocol.transport.is_closing()

    async def wait_ready(self) -> None:
        """Wait until the transport's buffer has drained below its low-water mark."""
        await self._protocol.writable.wait()

    def write(self, frames: bytes) -> None:
        self._protocol.transport.write(frames)

    def abort(self) -> None:
        """Drop the connection at once (a peer that reads nothing cannot be closed politely)."""
        self._protocol.transport.abort()


class ChatWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, offering a ``Wire`` to the app when frames may be pre-built.

    It also answers a handshake that the ``websockets`` parser refused (a header line
    over 8 KiB, too many headers): uvicorn's own class drops the parser's error
    response and leaves such a connection open forever, unseen by the app.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        ticket: Ticket | None = None,
        client: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.ticket = ticket
        self.established = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.established is not None:
            self.client = self.established  # what a trusted proxy named; the scope is built from it

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.ticket is not None:
            self.ticket.release()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.handshake_exc is not None and not self.handshake_initiated:
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        # With per-message deflate each frame is compressed per connection: no sharing.
        if scope is not None and not self.config.ws_per_message_deflate:
            scope["extensions"][EXTENSION] = Wire(self)
