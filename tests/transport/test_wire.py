"""The direct-write path: frames built once, written in order, and the per-message deflate path beside it."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from chat_protocol import ChatMessage
from chat_tracker.core.frames import text_frame
from chat_tracker.core.outbox import Outbox
from support.peers import json_member, plain_member
from support.timing import UNIT
from support.tracker import PASSWORD

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 100_000])
def test_text_frame_matches_websockets_serialisation(length: int) -> None:
    """Our pre-built frames are byte for byte what the websockets library would send."""
    text = "é" * (length // 2) + "x" * (length % 2)
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert text_frame(text) == expected


class FakeWire:
    def __init__(self) -> None:
        self.is_ready = True
        self.written: list[bytes] = []

    def ready(self) -> bool:
        return self.is_ready

    def write(self, frames: bytes) -> None:
        self.written.append(frames)


async def test_wired_outbox_writes_at_once_and_queues_while_the_socket_is_busy() -> None:
    """Frames go straight out when the socket keeps up, queue in order when not, and never overtake."""
    wire = FakeWire()
    outbox = Outbox(limit=10, wire=wire)
    outbox.push("one")
    assert wire.written == [text_frame("one")] and len(outbox) == 0
    wire.is_ready = False
    outbox.push("two")
    outbox.push_wire(text_frame("three") + text_frame("four"), 2)
    assert len(outbox) == 3 and len(wire.written) == 1
    wire.is_ready = True
    outbox.push("five")  # the socket is ready again, but queued frames go first
    assert len(wire.written) == 1
    await outbox.wait()
    data, close = outbox.take_wire_now()
    assert data == b"".join(text_frame(t) for t in ("two", "three", "four", "five"))
    assert close is None


def test_wired_outbox_overflow_counts_frames_not_writes() -> None:
    """A joined batch counts as the frames it holds toward the limit."""
    overflowed: list[bool] = []
    wire = FakeWire()
    wire.is_ready = False
    outbox = Outbox(limit=3, wire=wire, on_overflow=lambda: overflowed.append(True))
    outbox.push_wire(b"x", 3)
    assert not overflowed
    outbox.push_wire(b"y", 1)
    assert overflowed == [True] and outbox.overflowed


async def test_per_message_deflate_carries_the_same_dialogue(start_tracker: object) -> None:
    """With --ws-deflate a compressing peer's frames cannot be shared: its parser frames them, same dialogue."""
    tracker = start_tracker("--ws-deflate")  # type: ignore[operator]
    async with (
        plain_member(tracker.url, PASSWORD, "alpha") as alpha,
        json_member(tracker.url, PASSWORD, "beta") as (beta, _),
    ):
        assert await alpha.line() == "* beta joined the chat"
        await alpha.send("compressed hello")
        message = await beta.expect(ChatMessage)
        assert (message.name, message.text) == ("alpha", "compressed hello")
        await beta.send(type="message", text="and back")
        assert await alpha.line() == "beta: and back"


def test_oversized_handshake_header_is_answered_and_closed(tracker: object) -> None:
    """A handshake with a header line over 8 KiB gets an HTTP error and a close, instead of hanging."""
    import socket

    port = tracker.port  # type: ignore[attr-defined]
    request = (
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {'x' * 80_000}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=UNIT) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):  # ends when the tracker closes; the timeout fails the test
            answer += chunk
    assert answer.split(b"\r\n", 1)[0].split(b" ", 2)[1] in (b"400", b"431")
