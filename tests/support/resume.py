"""Members that remember what a resume needs, for the tests that kill connections and trackers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from support.bots import Bot, connect_json
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, launch_tracker

EVENT_TYPES = ("message", "joined", "left")


class Member(Bot):
    """A JSON member that records every event it receives, and can come back with ``resume``."""

    def __init__(self, bot: Bot, welcome: dict[str, Any]) -> None:
        super().__init__(bot.ws, bot.name)
        self.welcome = welcome
        self.token: str = welcome["token"]
        self.epoch: str = welcome["epoch"]
        self.last_seq: int = welcome["seq"]
        self.events: list[dict[str, Any]] = []  # every room event, in the order received
        self.other: list[dict[str, Any]] = []  # everything else (errors, bye, resumed...)

    async def pump(self, until: float = 30 * UNIT) -> bool:
        """Record frames until the connection ends: True; False if ``until`` seconds passed first (still open).

        Callers assert which they expect, so a connection that should have ended and did not is a failure.
        """
        try:
            async with asyncio.timeout(until):
                async for frame in self.ws:
                    self.note(json.loads(frame))
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False
        return True  # the iteration ended: closed normally

    def note(self, message: dict[str, Any]) -> None:
        if message["type"] in EVENT_TYPES:
            assert message["seq"] > self.last_seq, f"{self.name}: seq {message['seq']} after {self.last_seq}"
            self.last_seq = message["seq"]
            self.events.append(message)
        else:
            self.other.append(message)

    async def wait_for(self, predicate: Any, timeout: float = 4 * UNIT) -> dict[str, Any]:
        """Receive (and record) frames until one satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - time.monotonic()))
            self.note(message)
            if predicate(message):
                return message

    async def resume(self, url: str, *, after: int | None = None, token: str | None = None) -> dict[str, Any]:
        """A new connection that sends ``resume``; the tracker's answer (``resumed`` or ``error``)."""
        self.ws = await connect_json(url, PASSWORD)
        hello = await self.recv(4 * UNIT)
        assert hello["type"] == "hello" and hello["authenticated"], hello
        request = {
            "type": "resume",
            "token": self.token if token is None else token,
            "epoch": self.epoch,
            "after": self.last_seq if after is None else after,
        }
        await self.ws.send(json.dumps(request))
        answer = await self.recv(4 * UNIT)
        if answer["type"] == "resumed":
            self.token, self.epoch = answer["token"], answer["epoch"]
        return answer

    async def say_until_closed(self, prefix: str, most: int = 100_000) -> int:
        """Send numbered messages, 1 ms apart, until the connection is closed; how many went out."""
        sent = 0
        try:
            while sent < most:
                await self.say(f"{prefix} {sent}")
                sent += 1
                await asyncio.sleep(0.001)  # pacing (well under the rate limit), not synchronisation
        except ConnectionClosed:
            pass
        return sent

    async def drop(self) -> None:
        """Cut the TCP connection with no close frame: what a dropped network looks like to the tracker."""
        self.ws.transport.abort()
        await self.ws.wait_closed()  # the socket is closed on the loop's next turn


async def join(url: str, name: str) -> Member:
    ws = await connect_json(url, PASSWORD)
    bot = Bot(ws, name)
    hello = await bot.recv(4 * UNIT)
    assert hello["type"] == "hello" and hello["authenticated"], hello
    await ws.send(json.dumps({"type": "join", "name": name}))
    welcome = await bot.expect("welcome", 4 * UNIT)
    return Member(bot, welcome)


def restart(tracker: RunningTracker, data_dir: Path, *args: str, grace: float = 60) -> RunningTracker:
    """A new tracker on the same port and data dir as ``tracker`` (which must have exited)."""
    return launch_tracker(data_dir, "--port", str(tracker.port), *args, resume_grace=grace)


def log_entries(data_dir: Path) -> list[tuple[int, str, str, str]]:
    """chat.log as (seq, kind, name, text)."""
    rows = []
    for line in (data_dir / "chat.log").read_text(encoding="utf-8").splitlines():
        seq, _, kind, name, *rest = line.split(" ", 4)
        rows.append((int(seq), kind, name, rest[0] if rest else ""))
    return rows
