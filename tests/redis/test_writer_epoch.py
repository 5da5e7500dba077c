"""A replica's writer, still resending a batch of a room Redis lost when it is told of the new one, drops that batch
and writes what is queued since in the new room; that batch's connection failing late says nothing of the new room.

The writer resends a failed batch as it was made: under its epoch (and its number). ``restart_at`` empties the
queue for the new room; the old batch, resent to the new room and refused (EPOCH), used to take as many requests
off the front of the queue as it had, which were the new room's by then (a join never answered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from chat_tracker.core.events import START
from chat_tracker.errors import LogWriteError
from chat_tracker.journal.redis_reader import ScriptCall
from support.redis_journal import registered_room, started_journal
from support.redis_room import until
from support.redis_server import RedisServer
from support.timing import UNIT

pytestmark = pytest.mark.anyio


async def test_a_batch_of_the_lost_room_takes_nothing_of_the_new_room_s_queue(redis_server: RedisServer) -> None:
    registered_room(redis_server, "old", 3)
    journal, delivered = started_journal(redis_server.url, "old", 3)
    try:
        journal.append(START, text="in the old room")
        await until(lambda: [e.text for e in delivered] == ["in the old room"], "the old room's write", 2 * UNIT)
        redis_server.wipe()
        journal.append(START, text="lost with the room")
        await until(lambda: not journal.writable, "the writer to fail (it resends the batch)", 2 * UNIT)
        journal.restart_at("new", 10)  # what the replica's link does once it has opened the new room
        journal.append(START, text="in the new room")
        redis_server.start()
        registered_room(redis_server, "new", 10)
        await until(lambda: len(delivered) > 1, "the new room's write", 2 * UNIT)
        assert [(e.seq, e.text) for e in delivered[1:]] == [(11, "in the new room")]
    finally:
        await journal.close()


class StalledOnce:
    """The writer's script call, the armed call held until released, then failing as a dropped connection would."""

    def __init__(self, script: ScriptCall) -> None:
        self.script = script
        self.armed = False
        self.stalled = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        if not self.armed:
            return await self.script(keys=keys, args=args)
        self.armed = False
        self.stalled.set()
        await self.release.wait()
        raise RedisConnectionError("Connection closed by server.")


async def test_the_lost_room_s_connection_failing_late_leaves_the_new_room_writable(redis_server: RedisServer) -> None:
    """A call made in the lost room that fails after the new room opened: the journal stays writable (it used to
    refuse requests, ``log_unavailable``, until its next write succeeded, a backoff later)."""
    registered_room(redis_server, "old", 3)
    journal, delivered = started_journal(redis_server.url, "old", 3)
    troubles: list[LogWriteError | None] = []
    journal.on_trouble = troubles.append
    stalling: list[StalledOnce] = []
    real_append_script = journal._append_script

    def stalling_script() -> ScriptCall:
        stalling.append(StalledOnce(real_append_script()))
        return stalling[0]

    journal._append_script = stalling_script  # type: ignore[method-assign]  # before the writer's task first runs
    try:
        journal.append(START, text="in the old room")
        await until(lambda: [e.text for e in delivered] == ["in the old room"], "the old room's write", 2 * UNIT)
        stalling[0].armed = True
        journal.append(START, text="lost with the room")
        await asyncio.wait_for(stalling[0].stalled.wait(), 2 * UNIT)
        with redis_server.client() as client:
            client.flushall()  # the room is lost (as if Redis restarted empty; its connections stay up) ...
        registered_room(redis_server, "new", 10)  # ... and the link opens the new one
        journal.restart_at("new", 10)  # what the replica's link does once it has opened the new room
        journal.append(START, text="in the new room")
        stalling[0].release.set()
        await until(lambda: len(delivered) > 1, "the new room's write", 2 * UNIT)
        assert [(e.seq, e.text) for e in delivered[1:]] == [(11, "in the new room")]
        assert troubles == [] and journal.writable
    finally:
        await journal.close()
