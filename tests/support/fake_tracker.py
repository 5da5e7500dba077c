"""A scripted fake tracker: the handler for the n-th connection is the test's, every frame the client sends is kept.

Speaks just enough of ``groupchat.v1`` (hello, welcome, resumed, echoes, bye) for
the client's reconnect paths, with each refusal exactly as the protocol has it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL, Bye, ChatMessage, Hello, Limits, ServerMessage, Welcome, encode
from support.timing import UNIT

TS = "2026-12-02T01:00:00.000Z"
Handler = Callable[["Peer"], None]


class Peer:
    """One connection to the fake, with what the client sent on it."""

    def __init__(self, ws: ServerConnection, log: list[dict[str, Any]]) -> None:
        self.ws = ws
        self._log = log

    def send(self, message: ServerMessage) -> None:
        self.ws.send(encode(message))

    def recv(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.ws.recv(2 * UNIT))
        self._log.append(body)
        return body

    def hello(self) -> dict[str, Any]:
        """hello (the header's password taken as right); returns the client's first request."""
        self.send(Hello(1, True))
        return self.recv()

    def welcome(self, seq: int, name: str = "alpha", token: str = "t1") -> None:
        self.send(Welcome(seq, TS, name, "hi", [name], Limits(), epoch="e1", token=token, resume_grace=60))

    def echo_until_leave(self, seq: int, name: str = "alpha") -> None:
        """Echo every message (with its id) from ``seq`` on; on ``leave``, bye and a normal close."""
        while (request := self.recv())["type"] != "leave":
            if request["type"] == "message":
                seq += 1
                self.send(ChatMessage(seq, TS, name, request["text"], request.get("id")))
        self.send(Bye("left", f"Bye, {name}."))
        self.ws.close()


class FakeTracker:
    """Connection n runs handlers[n]; ``sent`` is every frame the client sent, on any connection."""

    def __init__(self, handlers: list[Handler]) -> None:
        self.handlers = handlers
        self.sent: list[dict[str, Any]] = []
        self.connections = 0
        self.server = serve(self._serve, "127.0.0.1", 0, subprotocols=[Subprotocol(SUBPROTOCOL)])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/ws"

    def _serve(self, ws: ServerConnection) -> None:
        handler = self.handlers[min(self.connections, len(self.handlers) - 1)]
        self.connections += 1
        with contextlib.suppress(ConnectionClosed):
            handler(Peer(ws, self.sent))

    def messages(self) -> list[tuple[str, str | None]]:
        return [(frame["text"], frame.get("id")) for frame in self.sent if frame["type"] == "message"]
