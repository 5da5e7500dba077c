"""/ws on websockets' sans-I/O protocols: a client (as a browser or the websockets library would be) and
the tracker's parser, past the handshake or not, with no socket and no event loop."""

from __future__ import annotations

import asyncio

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, PerMessageDeflate
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from chat_protocol import SUBPROTOCOL
from chat_tracker.core.origins import AllowedOrigins
from chat_tracker.transport.handshake import answer, parser

LIMIT = 4096
SELF = AllowedOrigins()  # the default: a page from the tracker's own origin only


def client(*, deflate: bool, json: bool = False) -> ClientProtocol:
    """A client offering permessage-deflate (as the websockets library does by default) or nothing."""
    extensions = [ClientPerMessageDeflateFactory()] if deflate else None
    subprotocols = [Subprotocol(SUBPROTOCOL)] if json else None
    return ClientProtocol(parse_uri("ws://127.0.0.1:8000/ws"), extensions=extensions, subprotocols=subprotocols)


def request_of(server: ServerProtocol, peer: ClientProtocol, path: str = "/ws", **headers: str) -> Request:
    """``peer``'s upgrade request (on ``path``, with ``headers`` added), as ``server`` parsed it off the wire."""
    request = Request(path, peer.connect().headers)
    for name, value in headers.items():
        request.headers[name] = value
    server.receive_data(request.serialize())
    [parsed] = server.events_received()
    assert isinstance(parsed, Request)
    return parsed


def open_pair(limit: int = LIMIT, *, deflate: bool = True) -> tuple[ServerProtocol, ClientProtocol]:
    """The tracker's parser and a client both offering deflate (or neither), past the handshake."""
    peer = client(deflate=deflate)
    server = parser(limit, deflate=deflate)
    result = answer(server, request_of(server, peer), SELF, lambda origin: None)
    assert result is not None and result.compressed is deflate
    peer.receive_data(b"".join(server.data_to_send()))
    assert [type(extension) for extension in peer.extensions] == ([PerMessageDeflate] if deflate else [])
    return server, peer


class Socket(asyncio.Transport):
    """Records what is written; closes and aborts on request; no socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True
