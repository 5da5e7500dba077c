"""--ws-deflate on the one /ws adapter: permessage-deflate for a client that offers it, and only then.

The websockets client offers permessage-deflate by default; httpx-ws (the JSON peers) does not,
so one room holds a compressed and an uncompressed member side by side.
"""

from __future__ import annotations

import asyncio
import json
import socket
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL, ChatMessage, CloseCode, Joined, Left
from support.peers import PlainPeer, json_member, plain_member
from support.rawhttp import head
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio

StartTracker = Callable[..., RunningTracker]
LIMIT = 4096  # --max-frame-bytes for the oversized-message test: small, so the bomb stays small too


def negotiated(peer: PlainPeer) -> bool:
    """Whether the tracker accepted the client's permessage-deflate offer for this connection."""
    return any(isinstance(extension, PerMessageDeflate) for extension in peer.ws.protocol.extensions)


def watch_compression(ws: ClientConnection) -> list[bool]:
    """For each text frame the client receives from now on, whether it came compressed (RSV1 set).

    What a browser's developer tools show per frame; read here as the client's extension decodes it.
    """
    extension = next(e for e in ws.protocol.extensions if isinstance(e, PerMessageDeflate))
    seen: list[bool] = []
    decode = extension.decode

    def watching(frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode is Opcode.TEXT:
            seen.append(frame.rsv1)
        return decode(frame, max_size=max_size)

    extension.decode = watching  # type: ignore[method-assign]
    return seen


async def test_deflate_is_negotiated_with_ws_deflate_and_carries_the_chat_both_ways(
    start_tracker: StartTracker,
) -> None:
    """With --ws-deflate a client offering compression gets it; it chats with an uncompressed member both ways."""
    tracker = start_tracker("--ws-deflate")
    async with (
        plain_member(tracker.url, PASSWORD, "alpha") as alpha,
        json_member(tracker.url, PASSWORD, "beta") as (beta, _),
    ):
        assert negotiated(alpha)
        assert alpha.ws.response is not None
        assert "permessage-deflate" in alpha.ws.response.headers.get("Sec-WebSocket-Extensions", "")
        compressed = watch_compression(alpha.ws)
        assert await alpha.line() == "* beta joined the chat"
        long = "compressed hello " * 110  # under the 2,000 characters a message may have; compressed, a few dozen bytes
        await alpha.send(long)
        message = await beta.expect(ChatMessage)
        assert (message.name, message.text) == ("alpha", long)
        for index in range(15):  # context takeover: each frame is compressed against the ones before
            await beta.send(type="message", text=f"and back {index}")
            assert await alpha.line() == f"beta: and back {index}"
        # The 15 answers at least (the join notice may have been read before the watch began): none pre-built.
        assert len(compressed) >= 15 and all(compressed), compressed
    messages = [line for line in tracker.log_lines() if " msg " in line]
    assert len(messages) == 16


async def test_without_ws_deflate_an_offer_of_compression_is_declined(start_tracker: StartTracker) -> None:
    """Without --ws-deflate the same client offer gets no compression, and the chat runs uncompressed."""
    tracker = start_tracker()
    async with (
        plain_member(tracker.url, PASSWORD, "alpha") as alpha,
        plain_member(tracker.url, PASSWORD, "beta") as beta,
    ):
        assert not negotiated(alpha) and not negotiated(beta)
        assert alpha.ws.response is not None
        assert "Sec-WebSocket-Extensions" not in alpha.ws.response.headers
        assert await alpha.line() == "* beta joined the chat"
        await alpha.send("plain hello")
        assert await beta.line() == "alpha: plain hello"
        await beta.send("and back")
        assert await alpha.line() == "beta: and back"


async def test_a_compressed_message_that_inflates_past_the_limit_is_closed_with_1009(
    start_tracker: StartTracker,
) -> None:
    """A small compressed frame that inflates past --max-frame-bytes: close 1009, one leave `closed`, room intact."""
    tracker = start_tracker("--ws-deflate", "--max-frame-bytes", str(LIMIT))
    bomb = "x" * (LIMIT * 50)
    assert len(zlib.compress(bomb.encode())) < LIMIT // 4  # what goes over the wire is far under the limit
    async with (
        plain_member(tracker.url, PASSWORD, "watcher") as watcher,
        json_member(tracker.url, PASSWORD, "other") as (other, _),
        plain_member(tracker.url, PASSWORD, "bomber") as bomber,
    ):
        assert negotiated(bomber)
        assert await watcher.lines(2) == ["* other joined the chat", "* bomber joined the chat"]
        assert (await other.expect(Joined)).name == "bomber"
        await bomber.send(bomb)
        code, _ = await bomber.closed()
        assert code == CloseCode.TOO_BIG
        left = await other.expect(Left)
        assert (left.name, left.reason) == ("bomber", "closed")
        assert await watcher.line() == "* bomber left the chat"
        await watcher.send("still here")
        message = await other.expect(ChatMessage)
        assert (message.name, message.text) == ("watcher", "still here")
    assert not [line for line in tracker.log_lines() if " msg bomber " in line]


@pytest.mark.parametrize("flags", [(), ("--ws-deflate",)], ids=["plain", "deflate"])
def test_an_upgrade_on_another_path_gets_404(start_tracker: StartTracker, flags: tuple[str, ...]) -> None:
    """Every upgrade goes to the /ws adapter: on any other path it answers 404, says where the chat is, and closes."""
    tracker = start_tracker(*flags)
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
    }
    with socket.create_connection(("127.0.0.1", tracker.port), timeout=UNIT) as sock:
        sock.sendall(head("GET", "/chat", f"127.0.0.1:{tracker.port}", headers))
        answer = b""
        while chunk := sock.recv(65536):  # ends when the tracker closes; the timeout fails the test
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split(b" ", 2)[1] == b"404", answer
    assert b"the chat is at /ws" in rest.partition(b"\r\n\r\n")[2]


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), UNIT))
    return message


async def test_a_compressed_member_resumes_and_gets_what_it_missed(start_tracker: StartTracker) -> None:
    """A resume's replay on a compressed connection goes through its parser too: every missed message, then live."""
    tracker = start_tracker("--ws-deflate", resume_grace=60)
    auth = {"Authorization": f"Bearer {PASSWORD}"}
    options: dict[str, Any] = {"subprotocols": [Subprotocol(SUBPROTOCOL)], "additional_headers": auth}
    async with plain_member(tracker.url, PASSWORD, "beta") as beta:
        async with connect(tracker.url, open_timeout=UNIT, **options) as alpha:
            assert (await recv_json(alpha))["type"] == "hello"
            await alpha.send(json.dumps({"type": "join", "name": "alpha"}))
            welcome = await recv_json(alpha)
            assert welcome["type"] == "welcome", welcome
            alpha.transport.abort()  # gone without a close frame: away, and may resume
        missed = [f"missed {index} " + "x" * 200 for index in range(15)]  # within the rate limit's burst
        for text in missed:
            await beta.send(text)
        async with connect(tracker.url, open_timeout=UNIT, **options) as again:
            assert any(isinstance(e, PerMessageDeflate) for e in again.protocol.extensions)
            assert (await recv_json(again))["type"] == "hello"
            resume = {"type": "resume", "token": welcome["token"], "epoch": welcome["epoch"], "after": welcome["seq"]}
            await again.send(json.dumps(resume))
            resumed = await recv_json(again)
            assert resumed["type"] == "resumed" and resumed["messages"] == len(missed), resumed
            replayed = [await recv_json(again) for _ in range(resumed["replayed"])]
            assert [m["text"] for m in replayed if m["type"] == "message"] == missed
            await beta.send("live")
            live = await recv_json(again)
            assert (live["type"], live["text"]) == ("message", "live"), live
