"""Members of a room shared by replicas on Redis: real ``websockets`` connections, every frame kept.

``join`` opens a JSON member on one replica; ``replicas`` starts several replicas on one
redis-server; ``admin`` calls a replica's /admin with the moderators' password.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from support.redis_server import RedisServer
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, StartTracker

ADMIN_PASSWORD = "moderator-secret"


class Member:
    """A JSON member on one replica: every frame it receives, kept in order."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.frames: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self.closed: int | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                assert isinstance(frame, str)
                self.frames.append(json.loads(frame))
                self._new.set()
        except ConnectionClosed:
            pass
        rcvd = self.ws.protocol.close_rcvd
        self.closed = rcvd.code if rcvd is not None else 1006
        self._new.set()

    async def wait_for(
        self, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 2 * UNIT
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for frame in self.frames[seen:]:
                if check(frame):
                    return frame
            seen = len(self.frames)
            if self.closed is not None:
                raise AssertionError(f"{self.name}: closed ({self.closed}) before {what}: {self.frames[-3:]}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: no {what} within {timeout} s; last frames {self.frames[-3:]}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), remaining)

    async def closed_with(self, timeout: float = 2 * UNIT) -> int:
        async with asyncio.timeout(timeout):
            await self._reader
        assert self.closed is not None
        return self.closed

    def messages(self) -> list[tuple[int, str, str]]:
        return [(f["seq"], f["name"], f["text"]) for f in self.frames if f["type"] == "message"]

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


async def open_ws(url: str) -> ClientConnection:
    return await connect(
        url,
        subprotocols=[Subprotocol("groupchat.v1")],
        additional_headers={"Authorization": f"Bearer {PASSWORD}"},
        open_timeout=4 * UNIT,
        close_timeout=UNIT / 5,
        ping_interval=None,
    )


async def join(url: str, name: str) -> Member:
    member = Member(await open_ws(url), name)
    await member.wait_for(lambda f: f["type"] == "hello", "hello")
    await member.send(type="join", name=name)
    await member.wait_for(lambda f: f["type"] in ("welcome", "error"), "welcome")
    return member


def welcomed(member: Member) -> dict[str, Any] | None:
    return next((f for f in member.frames if f["type"] == "welcome"), None)


def replicas(start_tracker: StartTracker, redis_server: RedisServer, count: int, *flags: str) -> list[RunningTracker]:
    return [start_tracker("--redis-url", redis_server.url, *flags) for _ in range(count)]


async def admin(tracker: RunningTracker, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=UNIT) as client:
        return await client.post(
            tracker.http_url + path, json=body, headers={"Authorization": f"Bearer {ADMIN_PASSWORD}"}
        )
