"""A thousand rooms of ten on one real tracker: every message reaches exactly its room's members.

250 members are in 40 rooms each (10,000 memberships in all): room ``r`` holds the members
``(10 r + j) mod 250`` for ``j`` in 0..9. One member of each room (``speaker_of``) says the room's name in it;
each member must then receive exactly one message per room it is in (its own echo included)
and none from any other room, and each room's log must hold its message alone. Each member
speaks in four rooms, so no message meets the rate limit.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from support.bots import Bot, bots
from support.rooms import logged
from support.timing import UNIT
from support.tracker import PASSWORD, launch_tracker

pytestmark = pytest.mark.anyio

ROOMS, SIZE, MEMBERS = 1000, 10, 250
PER_MEMBER = ROOMS * SIZE // MEMBERS


def members_of(room: int) -> list[int]:
    return [(room * SIZE + j) % MEMBERS for j in range(SIZE)]


def speaker_of(room: int) -> int:
    """The member who speaks in ``room``: each member speaks in ROOMS / MEMBERS rooms, well within her rate."""
    return members_of(room)[(room // (MEMBERS // SIZE)) % SIZE]


def rooms_of(member: int) -> list[int]:
    return [member // SIZE + (MEMBERS // SIZE) * k for k in range(PER_MEMBER)]


async def enter_all(bot: Bot, rooms: list[int]) -> None:
    """Ask for every room at once, then read the answers: each must be an ``entered``."""
    for room in rooms:
        await bot.ws.send(json.dumps({"type": "join", "room": f"#r{room}"}))
    entered: set[str] = set()
    while len(entered) < len(rooms):
        frame = await bot.recv(10 * UNIT)
        assert frame["type"] != "error", frame
        if frame["type"] == "entered":
            entered.add(frame["room"])
    assert entered == {f"#r{room}" for room in rooms}


async def messages(bot: Bot, count: int) -> list[dict[str, object]]:
    """The next ``count`` messages ``bot`` receives (joins and presence skipped)."""
    got: list[dict[str, object]] = []
    while len(got) < count:
        frame = await bot.recv(10 * UNIT)
        if frame["type"] == "message":
            got.append(frame)
    return got


async def test_a_thousand_rooms_of_ten_each_message_reaches_exactly_its_room(tmp_path: Path) -> None:
    assert sorted(m for r in range(ROOMS) for m in members_of(r)) == sorted(
        m for m in range(MEMBERS) for _ in range(PER_MEMBER)
    )  # the layout: every member in PER_MEMBER rooms
    assert all(sorted(r for r in range(ROOMS) if m in members_of(r)) == rooms_of(m) for m in range(MEMBERS))
    assert sorted(speaker_of(r) for r in range(ROOMS)) == sorted(
        m for m in range(MEMBERS) for _ in range(ROOMS // MEMBERS)
    )
    data = tmp_path / "data"
    tracker = launch_tracker(data, "--room-creations-per-hour", str(PER_MEMBER))
    try:
        async with bots(tracker.url, PASSWORD, [f"m{n}" for n in range(MEMBERS)]) as crowd:
            await asyncio.gather(*(enter_all(bot, rooms_of(n)) for n, bot in enumerate(crowd)))
            for room in range(ROOMS):
                speaker = crowd[speaker_of(room)]
                await speaker.ws.send(json.dumps({"type": "message", "room": f"#r{room}", "text": f"r{room}"}))
            received = await asyncio.gather(*(messages(bot, PER_MEMBER) for bot in crowd))
            for n, got in enumerate(received):
                assert sorted(str(m["room"]) for m in got) == sorted(f"#r{r}" for r in rooms_of(n)), n
                assert all(m["text"] == str(m["room"])[1:] for m in got), got
        for room in (0, ROOMS // 2, ROOMS - 1):
            said = [(n, t) for _, k, n, t in logged(data / "rooms" / f"r{room}" / "chat.log") if k == "msg"]
            assert said == [(f"m{speaker_of(room)}", f"r{room}")], said
    finally:
        tracker.stop()
