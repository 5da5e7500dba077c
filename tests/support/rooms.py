"""Members in several rooms on a real tracker: entering rooms, saying things in them, reading their logs over REST."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from support.bots import Bot
from support.peers import PlainPeer
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker


async def enter(bot: Bot, room: str, **extra: Any) -> dict[str, Any]:
    """``bot`` enters ``room``; the tracker's answer (``entered``, or an ``error``)."""
    await bot.ws.send(json.dumps({"type": "join", "room": room, **extra}))
    while True:
        answer = await bot.recv(2 * UNIT)
        if answer["type"] in ("entered", "error"):
            return answer


async def say_in(bot: Bot, room: str | None, text: str, **extra: Any) -> dict[str, Any]:
    """Say ``text`` in ``room`` (None: the default room) and wait for its echo (or an error); that frame."""
    body: dict[str, Any] = {"type": "message", "text": text, **extra}
    if room is not None:
        body["room"] = room
    await bot.ws.send(json.dumps(body))
    while True:
        answer = await bot.recv(2 * UNIT)
        if answer["type"] == "error" or (answer["type"] == "message" and answer["text"] == text):
            return answer


async def direct(bot: Bot, to: str, text: str) -> dict[str, Any]:
    """Send ``text`` to ``to`` alone; its echo (or an error)."""
    await bot.ws.send(json.dumps({"type": "message", "to": to, "text": text, "id": text[:60]}))
    while True:
        frame = await bot.recv(2 * UNIT)
        if frame["type"] == "error" or (frame["type"] == "message" and frame.get("text") == text):
            return frame


async def frames_until(bot: Bot, text: str) -> list[dict[str, Any]]:
    """Every frame ``bot`` receives up to and including the message whose text is ``text``."""
    seen: list[dict[str, Any]] = []
    while True:
        frame = await bot.recv(2 * UNIT)
        seen.append(frame)
        if frame["type"] == "message" and frame.get("text") == text:
            return seen


async def lines_until(peer: PlainPeer, last: str) -> list[str]:
    """Every line ``peer`` receives up to and including one that ends with ``last``."""
    seen: list[str] = []
    while not seen or not seen[-1].endswith(last):
        seen.append(await peer.line(2 * UNIT))
    return seen


async def rest(tracker: RunningTracker, path: str) -> httpx.Response:
    """``GET path`` with the server password."""
    async with httpx.AsyncClient(base_url=tracker.http_url, trust_env=False, timeout=UNIT) as http:
        return await http.get(path, headers={"Authorization": f"Bearer {PASSWORD}"})


def logged(path: Path) -> list[tuple[int, str, str, str]]:
    """A chat.log's lines as (seq, kind, name, text)."""
    entries = []
    for line in path.read_text().splitlines():
        seq, _ts, kind, name, *text = line.split(" ", 4)
        entries.append((int(seq), kind, name, text[0] if text else ""))
    return entries
