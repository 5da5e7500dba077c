"""Helpers of the rotation tests: every line of every segment, checked as one sequence."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import os
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed

from chat_tracker.records import LogEntry
from chat_tracker.storage.chatlog import parse_line
from chat_tracker.storage.segments import list_segments
from support.bots import Bot
from support.bots import talk as talk_fast
from support.campaign import RAW_CONTROLS
from support.timing import UNIT
from support.tracker import RunningTracker
from support.tracker_hooks.rotation_hooks import KILL_POINTS

__all__ = ["KILL_POINTS"]

LOAD_FLAGS = ("--rate", "100000", "--burst", "100000", "--queue-size", "100000")
HOOKS = Path(__file__).resolve().parent / "tracker_hooks"


def hooked(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a tracker with the rotation tests' hooks (tracker_hooks/: kill points, a shifted clock)."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(HOOKS), os.environ.get("PYTHONPATH")]))}


def segment_files(data_dir: Path) -> list[Path]:
    """The tracker's rotated segments, oldest first, then chat.log (absent after a kill mid-rotation)."""
    current = data_dir / "chat.log"
    return [s.path for s in list_segments(data_dir)] + ([current] if current.exists() else [])


def file_lines(path: Path, torn_ok: bool = False) -> list[str]:
    """A segment's (or chat.log's) lines, compressed or not; a torn tail fails unless ``torn_ok``."""
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    if data and not data.endswith(b"\n"):
        assert torn_ok, f"torn last line in {path.name}: {data[-60:]!r}"
        data = data[: data.rfind(b"\n") + 1]
    return data.decode("utf-8").splitlines()


def all_entries(data_dir: Path, torn_ok: bool = False, first: int | None = 1) -> list[LogEntry]:
    """Every line over the union of the segments and chat.log: whole, no raw controls, seq +1 per line.

    ``first`` is the seq the union must start at (None: wherever retention left it).
    """
    entries = []
    for path in segment_files(data_dir):
        lines = file_lines(path, torn_ok=torn_ok and path.name == "chat.log")
        for line in lines:
            assert RAW_CONTROLS.search(line) is None, line
        file_entries = [parse_line(line) for line in lines]
        if file_entries and path.name != "chat.log":
            assert path.name.split(".")[2] == f"{file_entries[0].seq:012d}", f"{path.name} starts at another seq"
        entries += file_entries
    seqs = [e.seq for e in entries]
    start = seqs[0] if first is None and seqs else (first or 1)
    assert seqs == list(range(start, start + len(seqs))), _first_gap(seqs)
    return entries


def _first_gap(seqs: list[int]) -> str:
    for before, after in itertools.pairwise(seqs):
        if after != before + 1:
            return f"seq {before} is followed by {after}"
    return f"the seqs start at {seqs[0] if seqs else None}"


async def talk(bot: Bot, prefix: str, count: int) -> int:
    """``support.bots.talk`` with this module's padding (lengths cycle every 97 messages)."""
    return await talk_fast(bot, prefix, count, pad="y", pad_every=97)


async def collect(bot: Bot, seen: list[tuple[int, str]], until: int | None = None) -> None:
    """Record every chat message received, until ``until`` of them or the connection dies."""
    try:
        async for frame in bot.ws:
            message = json.loads(frame)
            if message["type"] == "message":
                seen.append((message["seq"], message["text"]))
                if until is not None and len(seen) >= until:
                    return
    except ConnectionClosed:
        pass


async def echo(bot: Bot, text: str) -> dict[str, Any]:
    """Send ``text`` and return its echo (skipping other frames)."""
    await bot.say(text)
    while True:
        message = await bot.recv(2 * UNIT)
        assert message["type"] != "error", message
        if message["type"] == "message" and message["text"] == text:
            return message


async def get_json(tracker: RunningTracker, path: str) -> Any:
    async with httpx.AsyncClient(trust_env=False, timeout=2 * UNIT, auth=("", tracker.password)) as client:
        response = await client.get(tracker.http_url + path)
        response.raise_for_status()
        return response.json()


async def metrics(tracker: RunningTracker) -> dict[str, float]:
    async with httpx.AsyncClient(trust_env=False, timeout=2 * UNIT) as client:
        text = (await client.get(tracker.http_url + "/metrics")).text
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("chat_log_") and "{" not in line
    }


async def wait_until(predicate: Any, timeout: float = 4 * UNIT, step: float = 0.05) -> None:
    """Poll ``predicate`` (a condition on files, which send no event) until true, or fail."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)
