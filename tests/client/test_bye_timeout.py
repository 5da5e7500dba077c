"""Scripted mode's wait for ``bye`` is bounded, yet never cuts off a tracker that is still acknowledging.

The tracker here is a fake on 127.0.0.1 that speaks just enough of ``groupchat.v1``:
hello, welcome, an echo per message. One never answers ``leave``; the other answers it
slowly, one echo at a time, then says bye.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL, Bye, ChatMessage, Hello, Limits, Welcome, encode
from support.clients import StartClient
from support.timing import UNIT

TS = "2026-11-24T12:00:00.000Z"
ECHO_DELAY = 0.6  # seconds between the slow tracker's late echoes: each under --timeout, together over it


def greet(ws: ServerConnection) -> str:
    """hello, the join, the welcome; returns the name."""
    ws.send(encode(Hello(1, True)))
    name = str(json.loads(ws.recv(UNIT))["name"])
    ws.send(encode(Welcome(seq=1, ts=TS, name=name, greeting="hi", members=[name], limits=Limits())))
    return name


def ignores_leave(ws: ServerConnection) -> None:
    """Echo each message at once; take ``leave`` and say nothing, ever."""
    name = greet(ws)
    seq = 1
    try:
        for frame in ws:
            request = json.loads(frame)
            if request["type"] == "message":
                seq += 1
                ws.send(encode(ChatMessage(seq=seq, ts=TS, name=name, text=request["text"])))
    except ConnectionClosed:
        pass


def acknowledges_late(ws: ServerConnection) -> None:
    """Hold every echo until ``leave``, then send them ECHO_DELAY apart, then bye and close 1000."""
    name = greet(ws)
    held: list[str] = []
    for frame in ws:
        request = json.loads(frame)
        if request["type"] == "message":
            held.append(request["text"])
        elif request["type"] == "leave":
            break
    for seq, text in enumerate(held, 2):
        time.sleep(ECHO_DELAY)  # the fake's own slowness, not a wait in the test
        ws.send(encode(ChatMessage(seq=seq, ts=TS, name=name, text=text)))
    ws.send(encode(Bye(reason="left", message=f"Bye, {name}.")))
    ws.close()


@pytest.fixture
def fake_tracker() -> Iterator[Callable[[Callable[[ServerConnection], None]], str]]:
    """Start a fake tracker with a given handler; returns its ws:// URL. Stopped at the end."""
    servers = []

    def start(handler: Callable[[ServerConnection], None]) -> str:
        server = serve(handler, "127.0.0.1", 0, subprotocols=[Subprotocol(SUBPROTOCOL)])
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"ws://127.0.0.1:{server.socket.getsockname()[1]}/ws"

    yield start
    for server in servers:
        server.shutdown()


def test_leave_never_answered_ends_with_status_3(fake_tracker, clients: StartClient) -> None:  # type: ignore[no-untyped-def]
    """A tracker that takes ``leave`` and then says nothing: the client gives up after --timeout, exit 3."""
    url = fake_tracker(ignores_leave)
    alpha = clients("--json", "--timeout", "1", "--username", "alpha", url)
    alpha.event("welcome", name="alpha")
    alpha.send("last words")
    alpha.event("message", text="last words")
    started = time.monotonic()
    alpha.close_stdin()
    status, _, stderr = alpha.finish(timeout=3 * UNIT)
    assert status == 3
    assert stderr == "chat-client: the tracker went away: no answer from the tracker within 1 s of leaving\n"
    assert 1 <= time.monotonic() - started < 1 + UNIT


def test_acknowledgements_after_leave_are_waited_for(fake_tracker, clients: StartClient) -> None:  # type: ignore[no-untyped-def]
    """Echoes still trickling in after ``leave`` keep the client waiting past --timeout in total: nothing lost."""
    url = fake_tracker(acknowledges_late)
    alpha = clients("--json", "--timeout", "1", "--username", "alpha", url)
    alpha.event("welcome", name="alpha")
    alpha.send("one", "two", "three")
    alpha.close_stdin()
    status, _, stderr = alpha.finish(timeout=3 * UNIT)
    assert (status, stderr) == (0, "")
    events = alpha.events()
    assert [e.get("text") for e in events if e["type"] == "message"] == ["one", "two", "three"]
    assert events[-1] == {"type": "bye", "reason": "left", "message": "Bye, alpha."}
