"""What the Redis fault tests ask of a room kept in Redis: its last seq, the archiver's progress, an echo heard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from chat_tracker.journal.redis_keys import Keys
from support.checked_member import CheckedMember
from support.redis_server import POLL_SECONDS, RedisServer
from support.timing import UNIT
from support.tracker import RunningTracker


async def until(condition: Callable[[], bool], what: str, timeout: float = 4 * UNIT) -> None:
    """Poll ``condition`` (Redis and /healthz have no event to wait on) until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


def room_seq(server: RedisServer) -> int:
    """The room's last seq in Redis: every event appended so far, delivered anywhere or not yet."""
    with server.client() as client:
        value = client.hget(Keys().room, "seq")
    return int(value) if value is not None else 0


def room_epoch(server: RedisServer) -> str:
    """The room's epoch in Redis ('' while Redis holds no room: new, or restarted empty)."""
    with server.client() as client:
        value = client.hget(Keys().room, "epoch")
    return "" if value is None else value.decode()


def archived_seq(archiver: RunningTracker) -> int:
    """The last seq the archiver has written to chat.log, as its /healthz says (-1 while it does not answer)."""
    try:
        reply = httpx.get(f"{archiver.http_url}/healthz", timeout=UNIT / 5)
    except httpx.HTTPError:
        return -1
    return int(reply.json().get("archived_seq", -1)) if reply.status_code == 200 else -1


async def say_and_hear(speaker: CheckedMember, text: str) -> int:
    """``speaker`` says ``text`` and waits for its echo; the echo's seq."""
    msg_id = await speaker.say(text)
    await until(lambda: msg_id in speaker.acked, f"the echo of {text!r}")
    return speaker.acked[msg_id]
