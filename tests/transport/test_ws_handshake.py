"""transport/handshake.py: what the /ws adapter answers to an upgrade, and the message bound under deflate.

Sans-I/O on both sides: websockets' own client protocol makes the requests and the frames,
exactly as a client offering permessage-deflate would send them.
"""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace
from typing import Any, cast

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import PayloadTooBig
from websockets.frames import Frame
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from chat_protocol import CloseCode
from chat_tracker.core.dialects import JSON, PLAIN
from chat_tracker.transport.handshake import NOT_HERE, Opened, answer, parser
from support.wskit import LIMIT, SELF, Socket, client, open_pair, request_of


def opened(server: ServerProtocol, request: Request) -> tuple[Opened | None, Response, list[str | None]]:
    """Answer ``request``; what ``answer`` said, the response that went out, and the origins reported refused."""
    refused: list[str | None] = []
    result = answer(server, request, SELF, refused.append)
    out = b"".join(server.data_to_send())
    peer = ClientProtocol(parse_uri("ws://127.0.0.1:8000/ws"))
    peer.connect()  # a response is parsed only by a client that sent a request
    peer.receive_data(out)
    events = peer.events_received()
    assert len(events) == 1 and isinstance(events[0], Response), events
    return result, events[0], refused


def test_an_upgrade_opens_with_the_dialect_the_peer_chose() -> None:
    """groupchat.v1 offered: JSON; not offered: plain text. The query and Authorization reach the session."""
    for json, dialect in ((True, JSON), (False, PLAIN)):
        server = parser(LIMIT, deflate=False)
        request = request_of(server, client(deflate=False, json=json), "/ws?password=p", Authorization="Bearer p")
        result, response, refused = opened(server, request)
        assert response.status_code == 101 and not refused
        assert result == Opened(dialect, b"password=p", "Bearer p", compressed=False)
        assert "Date" not in response.headers and "Server" not in response.headers


def test_a_repeated_authorization_header_is_read_as_the_first() -> None:
    """Two Authorization headers: the first counts (as through ASGI), instead of the handshake failing unanswered."""
    server = parser(LIMIT, deflate=False)
    request = request_of(server, client(deflate=False), Authorization="Bearer first")
    request.headers["Authorization"] = "Bearer second"
    result, response, _ = opened(server, request)
    assert response.status_code == 101 and result is not None and result.authorization == "Bearer first"


@pytest.mark.parametrize(("enabled", "offered"), [(True, True), (True, False), (False, True), (False, False)])
def test_deflate_is_negotiated_only_when_enabled_and_offered(enabled: bool, offered: bool) -> None:
    """--ws-deflate and a client that offers it: compressed. Either missing: no extension at all."""
    server = parser(LIMIT, deflate=enabled)
    result, response, _ = opened(server, request_of(server, client(deflate=offered)))
    assert result is not None and result.compressed is (enabled and offered)
    assert ("Sec-WebSocket-Extensions" in response.headers) is (enabled and offered)
    assert bool(server.extensions) is (enabled and offered)


@pytest.mark.parametrize("deflate", [False, True])
def test_an_upgrade_on_another_path_gets_404_saying_where_the_chat_is(deflate: bool) -> None:
    server = parser(LIMIT, deflate)
    result, response, refused = opened(server, request_of(server, client(deflate=True), "/chat"))
    assert result is None and not refused
    assert response.status_code == 404 and response.body == NOT_HERE.encode()


def test_a_page_of_a_foreign_origin_gets_403_and_is_reported() -> None:
    server = parser(LIMIT, deflate=False)
    result, response, refused = opened(server, request_of(server, client(deflate=False), Origin="https://evil.example"))
    assert result is None and response.status_code == 403
    assert refused == ["https://evil.example"]


def test_a_compressed_message_within_the_limit_arrives_inflated() -> None:
    server, peer = open_pair(LIMIT)
    text = "hello " * (LIMIT // 8)
    peer.send_text(text.encode())
    server.receive_data(b"".join(peer.data_to_send()))
    [frame] = server.events_received()
    assert isinstance(frame, Frame)
    assert bytes(frame.data).decode() == text and server.parser_exc is None


@pytest.mark.parametrize("pieces", [1, 8], ids=["one-frame", "fragmented"])
def test_a_small_compressed_message_that_inflates_past_the_limit_is_closed_1009(pieces: int) -> None:
    """A deflate bomb: a few hundred bytes on the wire, far more inflated. zlib stops at the limit: close 1009."""
    server, peer = open_pair(LIMIT)
    bomb = b"x" * (LIMIT * 100)
    step = len(bomb) // pieces
    for index in range(pieces):
        piece, last = bomb[index * step : (index + 1) * step], index == pieces - 1
        if index == 0:
            peer.send_text(piece, fin=last)
        else:
            peer.send_continuation(piece, fin=last)
    wire = b"".join(peer.data_to_send())
    assert len(wire) < LIMIT // 4  # it really is small as sent
    server.receive_data(wire)
    assert isinstance(server.parser_exc, PayloadTooBig)
    assert server.close_sent is not None and server.close_sent.code == CloseCode.TOO_BIG
    assert sum(len(e.data) for e in server.events_received() if isinstance(e, Frame)) <= LIMIT  # never inflated past it


def test_the_native_adapter_answers_a_handshake_the_parser_refused() -> None:
    """A header line over 8 KiB: websockets refuses it, and its HTTP 400/431 goes out before the close."""
    from uvicorn.server import ServerState

    from chat_tracker.service.settings import Settings
    from chat_tracker.transport.native import NativeWebSocket

    tracker = SimpleNamespace(settings=Settings(password="x" * 12))  # before a handshake only settings are read

    async def scenario() -> Socket:
        socket = Socket()
        native = NativeWebSocket(cast(Any, None), ServerState(), {}, tracker=cast(Any, tracker))
        native.connection_made(socket)
        upgrade = Request("/ws", client(deflate=False).connect().headers)
        upgrade.headers["Authorization"] = f"Bearer {'x' * 80_000}"
        native.data_received(upgrade.serialize())
        native.connection_lost(None)
        return socket

    socket = asyncio.run(scenario())
    status = bytes(socket.written).split(b"\r\n", 1)[0]
    assert re.fullmatch(rb"HTTP/1\.1 4(00|31) .*", status), f"answered {status!r}, not 400/431"
    assert socket.closed, "the refused connection was left open"
