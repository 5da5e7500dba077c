"""The terminal client's half of test_link_parity.py: its ``Link`` on a scripted fake connection.

``run`` feeds a scenario's steps (see link_parity.js for their meaning) to a real
``chat_client.link.Link`` whose ``connect`` is replaced by ``fake_connect``: every
frame the Link sends is recorded, every frame the tracker "sends" comes from the
script. After each step it waits until the Link is settled (its owner task waits for
the script again, or the session ended, and no resend is under way), then takes the
same snapshot as the web half.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from chat_client.connection import Incoming
from chat_client.errors import HandshakeRefused, InvalidState, NameRejected, ResumeRefused, Unreachable, session_closed
from chat_client.link import Link
from chat_client.link_state import LinkState
from chat_client.resume import ResumeState, message_ids
from chat_protocol import ClientMessage, Error, Join, Resume, Resumed, ServerMessage, Welcome, decode_server, encode
from support.timing import UNIT

ACCEPT = "accept"  # in the script: the tracker answers a new connection
Snapshot = dict[str, Any]


class Script:
    """What the fake tracker says next (frames, closes, accepted connections) and what it was sent."""

    def __init__(self) -> None:
        self.inbound: asyncio.Queue[dict[str, Any] | int | str] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self._readers = 0

    async def next(self) -> dict[str, Any] | int | str:
        self._readers += 1
        try:
            return await self.inbound.get()
        finally:
            self._readers -= 1

    @property
    def waited_on(self) -> bool:
        """The Link's owner waits for the script: everything fed so far has been taken in."""
        return self._readers > 0 and self.inbound.empty()

    def record(self, message: ClientMessage) -> None:
        self.sent.append(json.loads(encode(message)))


class FakeConnection:
    """The few calls of ``chat_client.connection.Connection`` the Link makes, answered from the script."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self.password = "secret"

    async def join(self, name: str) -> Incoming:
        self._script.record(Join(name))
        while True:
            message = await self._answer()
            if isinstance(message, Welcome):
                return Incoming(encode(message), message)
            if isinstance(message, Error):
                raise NameRejected(message.code, message.message)

    async def resume(self, request: Resume) -> Incoming:
        self._script.record(request)
        while True:
            message = await self._answer()
            if isinstance(message, Resumed):
                return Incoming(encode(message), message)
            if isinstance(message, Error):
                raise ResumeRefused(message.code, message.message)

    async def send(self, message: ClientMessage) -> None:
        self._script.record(message)

    async def receive(self) -> Incoming | None:
        item = await self._script.next()
        if isinstance(item, int):
            if item == 1000:
                return None
            raise session_closed(None if item == 1006 else item)  # 1006: no close frame
        assert isinstance(item, dict), f"{item!r} while in the room"
        message = decode_server(json.dumps(item))
        return Incoming(json.dumps(item), message)

    async def _answer(self) -> ServerMessage:
        item = await self._script.next()
        if isinstance(item, int):
            raise HandshakeRefused("connection lost during the handshake")
        assert isinstance(item, dict), f"{item!r} during the handshake"
        return decode_server(json.dumps(item))


def fake_connect(script: Script) -> Callable[..., contextlib.AbstractAsyncContextManager[FakeConnection]]:
    """A stand-in for ``chat_client.connection.connect``: the connection is up once the script accepts it."""

    @contextlib.asynccontextmanager
    async def connect(url: str, password: str | None, *, timeout: float) -> AsyncIterator[FakeConnection]:
        if await script.next() != ACCEPT:
            raise Unreachable("cannot reach the tracker")
        yield FakeConnection(script)

    return connect


def known_ids(welcome: Welcome) -> ResumeState:
    """The memory with message ids 00000000-1, -2...: the page's, with its random bytes all zero."""
    return ResumeState(welcome, message_ids("00000000"))


async def _enter(name: str, connection: FakeConnection) -> Incoming:
    return await connection.join(name)


async def _rejoin(connection: FakeConnection, name: str) -> Incoming:
    return await connection.join(name)


async def _apply(link: Link, script: Script, step: dict[str, Any]) -> Any:
    if "frame" in step:
        script.inbound.put_nowait(step["frame"])
    elif "accept" in step:
        script.inbound.put_nowait(ACCEPT)
    elif "close" in step:
        script.inbound.put_nowait(step["close"])
    elif "say" in step:
        return await link.offer(step["say"])  # the page's say: now when live, else kept
    elif "leave" in step:
        return await link.leave()
    elif "who" in step:
        return await link.who()
    else:
        raise AssertionError(f"unknown step {step}")
    return None


async def _settled(link: Link, script: Script) -> None:
    """Yield to the Link's tasks until it waits on the script (or has ended) with no resend under way."""
    deadline = time.monotonic() + 4 * UNIT
    while not ((script.waited_on or link.state is LinkState.ENDED) and link.state is not LinkState.RESENDING):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Link did not settle: {link.state}")
        await asyncio.sleep(0)


async def _snapshot(link: Link, script: Script, step: dict[str, Any] | None) -> Snapshot:
    try:
        result = await _apply(link, script, step) if step is not None else None
    except InvalidState as refused:
        result = {"raised": "InvalidState", "state": refused.state}
    await _settled(link, script)
    return {"state": str(link.state), "sent": [dict(frame) for frame in script.sent], "result": result}


async def _drain(link: Link) -> None:
    """Read what the Link hands the mode, as a mode does, so its queue never fills."""
    with contextlib.suppress(Exception):
        while await link.receive() is not None:
            pass


async def run(script: Script, name: str, steps: list[dict[str, Any]]) -> list[Snapshot]:
    """The scenario through the terminal client's Link: a snapshot after the start and after each step.

    The caller has replaced what ``patches(script)`` names in chat_client.link.
    """
    link = Link(
        "ws://tracker.invalid/ws",
        "secret",
        timeout=UNIT,
        reconnect_for=60.0,
        rejoin=cast(Any, _rejoin),
        delay=lambda _: 0.0,
    )
    script.inbound.put_nowait(ACCEPT)
    async with link.running(lambda connection: _enter(name, cast(FakeConnection, connection))):
        drain = asyncio.create_task(_drain(link))
        snapshots = [await _snapshot(link, script, None)]
        for step in steps:
            snapshots.append(await _snapshot(link, script, step))
        drain.cancel()
    return snapshots


def patches(script: Script) -> dict[str, object]:
    """What ``run`` needs replaced in chat_client.link, by attribute name."""
    return {"connect": fake_connect(script), "ResumeState": known_ids}
