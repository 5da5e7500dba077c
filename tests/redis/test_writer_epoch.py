"""A replica's writer, still resending a batch of a room Redis lost when it is told of the new one, drops that batch
and writes what is queued since in the new room.

The writer resends a failed batch as it was made: under its epoch (and its number). ``restart_at`` empties the
queue for the new room; the old batch, resent to the new room and refused (EPOCH), used to take as many requests
off the front of the queue as it had, which were the new room's by then (a join never answered).
"""

from __future__ import annotations

import pytest

from chat_tracker.core.events import START
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
