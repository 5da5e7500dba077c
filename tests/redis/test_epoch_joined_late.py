"""A replica late to a new epoch (Redis restarted empty) reads that epoch from its start, not from where it stands.

Replica B is frozen (SIGSTOP) while Redis restarts empty; replica A opens the new room and zed joins it there.
B, thawed, finds the room open and joins that epoch. It used to read on from the room's seq at that moment,
so zed's join was never delivered on B: B's room did not list her (its welcomes and ``who`` left her out) until
she spoke. The room now keeps the seq its epoch started after, and a replica arriving late reads from there.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from support.redis_room import room_epoch, until
from support.redis_server import RedisServer
from support.replicas import join, replicas, welcomed
from support.timing import UNIT
from support.tracker import StartTracker

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def welcome_on(url: str, name: str, timeout: float) -> dict[str, object]:
    """``name`` joins on ``url`` until welcomed (a replica between two epochs refuses, or closes, a join)."""
    deadline = time.monotonic() + timeout
    while True:
        member = await join(url, name)
        welcome = welcomed(member)
        await member.close()
        if welcome is not None:
            return welcome
        assert time.monotonic() < deadline, f"{name}: no welcome within {timeout:g} s: {member.frames[-1]}"


async def test_a_replica_late_to_a_new_epoch_lists_who_joined_it_before(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    a, b = replicas(start_tracker, redis_server, 2)
    first = room_epoch(redis_server)
    assert first, "the replicas opened no room"
    os.kill(b.process.pid, signal.SIGSTOP)
    try:
        redis_server.wipe()
        redis_server.start()
        await until(lambda: room_epoch(redis_server) not in ("", first), "replica A to open a new room")
        zed = await join(a.url, "zed")
        assert welcomed(zed) is not None, zed.frames[-1]  # zed stays, in the new room, on A
    finally:
        os.kill(b.process.pid, signal.SIGCONT)
    welcome = await welcome_on(b.url, "yan", 4 * UNIT)
    await zed.close()
    assert "zed" in welcome["members"], welcome  # type: ignore[operator]
