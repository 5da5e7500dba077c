"""Registered members on a real tracker, as the tests drive them: register, sign in, answers read past live events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from support.bots import Bot, connect_json
from support.peers import PlainPeer
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

PASSPHRASE = "correct horse battery"


async def joined(tracker: RunningTracker, name: str, passphrase: str | None = None) -> tuple[Bot, dict[str, Any]]:
    """A JSON connection that sent ``join`` (with ``passphrase``); the tracker's answer to it."""
    bot = Bot(await connect_json(tracker.url, PASSWORD), name)
    assert (await bot.recv(2 * UNIT))["type"] == "hello"
    join: dict[str, object] = {"type": "join", "name": name}
    if passphrase is not None:
        join["passphrase"] = passphrase
    await bot.ws.send(json.dumps(join))
    answer = await bot.recv(2 * UNIT)
    return bot, answer


async def register(tracker: RunningTracker, name: str, passphrase: str = PASSPHRASE) -> dict[str, Any]:
    bot, welcome = await joined(tracker, name)
    assert welcome["type"] == "welcome" and welcome["registered"] is False, welcome
    await bot.ws.send(json.dumps({"type": "register", "passphrase": passphrase}))
    answer = await bot.recv(2 * UNIT)
    while answer["type"] not in ("registered", "error"):
        answer = await bot.recv(2 * UNIT)
    await bot.ws.close()
    return answer


async def plain_name(peer: PlainPeer, name: str) -> list[str]:
    """Give the room password and ``name``; the lines up to the next prompt."""
    assert await peer.line(2 * UNIT) == "Enter server password..."
    await peer.send(PASSWORD)
    assert await peer.lines(2, 2 * UNIT) == ["Welcome to our server...", "Enter your username..."]
    await peer.send(name)
    return [await peer.line(2 * UNIT)]


async def members(tracker: RunningTracker) -> list[dict[str, Any]]:
    """``GET /members``: the room's members, then its registered members who are offline."""
    async with httpx.AsyncClient(base_url=tracker.http_url, trust_env=False, timeout=UNIT) as http:
        answer = await http.get("/members", headers={"Authorization": f"Bearer {PASSWORD}"})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["members"]
    return found


async def until_listed(
    tracker: RunningTracker, name: str, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Wait for ``/members`` to list ``name`` as ``check`` wants it (``what``, for the failure); its entry."""
    deadline = time.monotonic() + 2 * UNIT
    while True:
        entry = next((m for m in await members(tracker) if m["name"] == name), None)
        if entry is not None and check(entry):
            return entry
        assert time.monotonic() < deadline, f"{name} is not listed {what} on {tracker.http_url}: {entry}"
        await asyncio.sleep(0.05)  # polling the REST answer: there is no event to wait on


async def until_listed_offline(tracker: RunningTracker, name: str) -> dict[str, Any]:
    """Wait for ``/members`` to list ``name`` as offline (her leave is delivered); her entry."""
    return await until_listed(tracker, name, lambda entry: entry["online"] is False, "offline")
