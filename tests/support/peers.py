"""Real WebSocket peers for tests: plain text through ``websockets``, JSON through httpx-ws."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from httpx_ws import WebSocketDisconnect, aconnect_ws
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from chat_protocol import SUBPROTOCOL, ServerMessage, decode_server
from support.timing import UNIT

WELCOME_LINES = 4  # "Hi ...", "Online now ...", "Limits ...", "Just type ..."


class PlainPeer:
    """A generic WebSocket client, as wscat or websocat would be."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def line(self, timeout: float = UNIT) -> str:
        """The next frame; fails the test if none arrives in time."""
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(frame, str)
        return frame

    async def lines(self, count: int, timeout: float = UNIT) -> list[str]:
        return [await self.line(timeout) for _ in range(count)]

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def closed(self, timeout: float = UNIT) -> tuple[int | None, list[str]]:
        """Read until the tracker closes; return its close code and the frames read meanwhile."""
        seen: list[str] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    seen.append(str(await self.ws.recv()))
        except ConnectionClosed:
            pass
        rcvd = self.ws.protocol.close_rcvd
        return (rcvd.code if rcvd is not None else None), seen


@asynccontextmanager
async def plain_peer(url: str, **kwargs: Any) -> AsyncIterator[PlainPeer]:
    async with connect(url, open_timeout=UNIT, close_timeout=UNIT / 5, **kwargs) as ws:
        yield PlainPeer(ws)


@asynccontextmanager
async def plain_member(url: str, password: str, name: str, **kwargs: Any) -> AsyncIterator[PlainPeer]:
    """A plain-text peer that has given the password and a name and read the welcome."""
    async with plain_peer(url, **kwargs) as peer:
        assert await peer.line() == "Enter server password..."
        await peer.send(password)
        assert await peer.lines(2) == ["Welcome to our server...", "Enter your username..."]
        await peer.send(name)
        welcome = await peer.lines(WELCOME_LINES)
        assert welcome[0] == f"Hi {name}, You have been added to the server.", welcome
        yield peer


class JsonPeer:
    """Our structured protocol, spoken through httpx-ws like the real client."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def recv(self, timeout: float = UNIT) -> ServerMessage:
        return decode_server(await self.ws.receive_text(timeout=timeout))

    async def expect(self, kind: type, timeout: float = UNIT) -> Any:
        message = await self.recv(timeout)
        assert isinstance(message, kind), f"expected {kind.__name__}, got {message!r}"
        return message

    async def send(self, **body: Any) -> None:
        await self.ws.send_text(json.dumps(body))

    async def closed(self, timeout: float = UNIT) -> tuple[int, list[ServerMessage]]:
        """Read until the tracker closes; return the close code and the messages read meanwhile."""
        seen: list[ServerMessage] = []
        try:
            while True:
                seen.append(await self.recv(timeout))
        except WebSocketDisconnect as gone:
            return gone.code, seen


@asynccontextmanager
async def json_peer(
    url: str, password: str | None = None, source: str | None = None, **kwargs: Any
) -> AsyncIterator[JsonPeer]:
    """Connect in JSON mode; ``password`` goes in the Authorization header when given; from ``source`` if given."""
    headers = {"Authorization": f"Bearer {password}"} if password is not None else {}
    transport = httpx.AsyncHTTPTransport(local_address=source) if source is not None else None
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(trust_env=False, timeout=UNIT, transport=transport))
        ws = await stack.enter_async_context(
            aconnect_ws(url, client, subprotocols=[SUBPROTOCOL], headers=headers, **kwargs)
        )
        yield JsonPeer(ws)


@asynccontextmanager
async def json_member(url: str, password: str, name: str) -> AsyncIterator[tuple[JsonPeer, Any]]:
    """A JSON peer that is in the room; yields (peer, welcome)."""
    from chat_protocol import Hello, Welcome

    async with json_peer(url, password) as peer:
        hello = await peer.expect(Hello)
        assert hello.authenticated
        await peer.send(type="join", name=name)
        welcome = await peer.expect(Welcome)
        yield peer, welcome


async def until_type(peer: Any, kind: type, timeout: float = UNIT) -> Any:
    """Read ``peer``'s messages (a ``JsonPeer``) until one of type ``kind``; return it."""
    deadline = time.monotonic() + timeout
    while True:
        message = await peer.recv(max(0.01, deadline - time.monotonic()))
        if isinstance(message, kind):
            return message


class SilentMember:
    """A member that joins and then neither reads nor answers pings: a frozen or vanished peer.

    Built on a raw socket with the websockets sans-I/O client, so nothing in the
    background reads or answers for it. ``receive_buffer`` shrinks its kernel buffer.
    """

    def __init__(self, url: str, password: str, name: str, receive_buffer: int | None = None) -> None:
        import socket
        from urllib.parse import urlparse

        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        parsed = urlparse(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(UNIT)
        self.sock.connect((parsed.hostname, parsed.port))
        self.protocol = ClientProtocol(parse_uri(url))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self._read_until(lambda: self.protocol.handshake_exc is not None or self.protocol.state.name == "OPEN")
        prompts = self._read_texts(1)
        assert prompts == ["Enter server password..."], prompts
        self.send(password)
        self._read_texts(2)
        self.send(name)
        welcome = self._read_texts(4)
        assert welcome[0].startswith(f"Hi {name},"), welcome

    def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _read_until(self, done: object) -> None:
        while not done():  # type: ignore[operator]
            self.protocol.receive_data(self.sock.recv(65536))

    def _read_texts(self, count: int) -> list[str]:
        texts: list[str] = []
        while len(texts) < count:
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    texts.append(bytes(event.data).decode())
            if len(texts) < count:
                self.protocol.receive_data(self.sock.recv(65536))
        return texts

    def close_abruptly(self) -> None:
        """Vanish: reset the TCP connection without a close frame."""
        import socket
        import struct

        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
