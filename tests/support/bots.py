"""Shared pieces of the reliability campaign: CI-or-skip, figures, chat.log checks, fast bots.

Figures: each test adds what it tried to ``results/figures.jsonl`` (one JSON object per
line, gitignored); ``report.py`` sums them into the tables of docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL
from chat_testing import UNIT, in_ci
from chat_tracker.storage.chatlog import LogFormatError, parse_line

FULL = os.environ.get("RELIABILITY_FULL", "") == "1"
RESULTS = Path(os.environ.get("RELIABILITY_RESULTS", Path(__file__).parent / "results"))
FIGURES = RESULTS / "figures.jsonl"

# Raw control bytes that must never reach chat.log: C0 (except the newline ending
# each line), DEL, C1 (as UTF-8), U+2028/2029, bidi overrides.
RAW_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def require(condition: bool, why: str) -> None:
    """Skip locally when something the test needs is missing; fail in CI, where it must run."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"cannot run in CI: {why}")
    pytest.skip(why)


def require_root_tool(tool: str) -> None:
    require(os.geteuid() == 0, "needs root (mount, unshare, iptables)")
    require(shutil.which(tool) is not None, f"{tool} is not installed")


def record(figure: str, **counts: Any) -> None:
    """Add one test's counts to the figures file (summed by report.py)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as file:
        file.write(json.dumps({"figure": figure, "at": time.time(), **counts}) + "\n")


def check_log_file(path: Path) -> list[Any]:
    """Parse chat.log strictly: whole lines, no raw controls, seq +1 each line. Returns the entries."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"torn last line in {path}: {data[-80:]!r}"
    text = data.decode("utf-8")  # raises on a torn multi-byte character
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        assert RAW_CONTROLS.search(line) is None, f"raw control in line {number}: {line!r}"
        try:
            entries.append(parse_line(line))
        except LogFormatError as error:
            raise AssertionError(f"line {number} of {path} does not parse: {error}") from None
    seqs = [entry.seq for entry in entries]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True, "sequence gap or repeat"
    return entries


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
        close_timeout=1,
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


def rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident set size of a process, KiB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(value.split()[0])
    return values["VmRSS"], values["VmHWM"]


def error_lines(output: list[str]) -> list[str]:
    """Tracker log lines at ERROR or worse, and tracebacks."""
    return [line for line in output if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]


async def open_plain(url: str, password: str, name: str) -> ClientConnection:
    """A plain-text member (no subprotocol), joined, welcome read."""
    ws = await connect(url, open_timeout=4 * UNIT, close_timeout=1, ping_interval=None, compression=None)
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
