"""Fast members for crowds: ``Bot``, a JSON member on the plain ``websockets`` client, and ways to open many."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL
from support.timing import UNIT


class Bot:
    """A JSON member on the plain ``websockets`` client: cheap enough to run a thousand at once."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name

    async def recv(self, timeout: float = UNIT) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(frame, str)
        return json.loads(frame)  # type: ignore[no-any-return]

    async def expect(self, kind: str, timeout: float = UNIT) -> dict[str, Any]:
        """Skip other frames until one of type ``kind``."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - time.monotonic()))
            if message["type"] == kind:
                return message

    async def say(self, text: str) -> None:
        await self.ws.send(json.dumps({"type": "message", "text": text}))

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def close_code(self, timeout: float = UNIT) -> int | None:
        try:
            async with asyncio.timeout(timeout):
                async for _ in self.ws:
                    pass
        except ConnectionClosed:
            pass
        rcvd = self.ws.protocol.close_rcvd
        return rcvd.code if rcvd is not None else None


async def talk(bot: Bot, prefix: str, count: int, pad: str = "x", pad_every: int = 300) -> int:
    """Send ``count`` numbered messages of varying length as fast as the socket takes them; how many went out."""
    sent = 0
    try:
        for index in range(count):
            await bot.say(f"{prefix} {index} " + pad * (index % pad_every))
            sent += 1
    except ConnectionClosed:
        pass
    return sent


async def connect_json(url: str, password: str, **kwargs: Any) -> ClientConnection:
    """A JSON-dialect connection with the password in the header (not yet joined)."""
    return await connect(
        url,
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers={"Authorization": f"Bearer {password}"},
        open_timeout=4 * UNIT,
        close_timeout=UNIT / 5,
        ping_interval=None,
        max_size=None,
        compression=None,
        **kwargs,
    )


async def open_bot(url: str, password: str, name: str, **kwargs: Any) -> Bot:
    """Connect with the password in the header, join as ``name``, return after the welcome."""
    ws = await connect_json(url, password, **kwargs)
    bot = Bot(ws, name)
    hello = await bot.recv(4 * UNIT)
    assert hello["type"] == "hello" and hello["authenticated"], hello
    await ws.send(json.dumps({"type": "join", "name": name}))
    welcome = await bot.expect("welcome", 4 * UNIT)
    assert welcome["name"] == name
    return bot


@asynccontextmanager
async def bots(url: str, password: str, names: list[str], batch: int = 100) -> AsyncIterator[list[Bot]]:
    """Many members joined ``batch`` at a time; all closed at the end."""
    opened: list[Bot] = []
    try:
        for start in range(0, len(names), batch):
            opened += await asyncio.gather(*(open_bot(url, password, n) for n in names[start : start + batch]))
        yield opened
    finally:
        await asyncio.gather(*(b.ws.close() for b in opened), return_exceptions=True)


async def open_plain(url: str, password: str, name: str) -> ClientConnection:
    """A plain-text member (no subprotocol), joined, welcome read."""
    ws = await connect(url, open_timeout=4 * UNIT, close_timeout=UNIT / 5, ping_interval=None, compression=None)
    assert await asyncio.wait_for(ws.recv(), 4 * UNIT) == "Enter server password..."
    await ws.send(password)
    for _ in range(2):
        await asyncio.wait_for(ws.recv(), 4 * UNIT)
    await ws.send(name)
    first = await asyncio.wait_for(ws.recv(), 4 * UNIT)
    assert first == f"Hi {name}, You have been added to the server.", first
    for _ in range(3):
        await asyncio.wait_for(ws.recv(), 4 * UNIT)
    return ws
