"""A replica's reader, reconnected to a Redis restarted empty, delivers nothing of the new room before it is told.

Found by the nemesis (seed 3 of tests/redis/test_nemesis.py): after a wipe, the replica that opened
the new room registered again as replica 1, and its first member took the id the first member of a
replica still in the old epoch had. That replica's reader went on reading from its last entry (the
new room's seqs continue above the old ones), read the newcomer's join as its own member's, and that
member never received it, with no gap announced. The reader now checks the room's epoch after every
reconnect and reads nothing until the link has seen the new epoch (``restart_at``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import pytest

from chat_tracker.core.events import Event
from chat_tracker.journal.redis_keys import Keys
from chat_tracker.journal.redis_stream import RedisJournal
from support.redis_server import POLL_SECONDS, RedisServer, add_events, event
from support.timing import UNIT

pytestmark = pytest.mark.anyio


async def until(condition: Callable[[], bool], what: str, timeout: float = 2 * UNIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


def checked_the_epoch(server: RedisServer) -> bool:
    """Some client's last command was HGET: the reader asked for the room's epoch on its new connection."""
    with server.client() as client:
        return any(entry.get("cmd") == "hget" for entry in client.client_list())


async def test_a_reader_reconnected_to_a_room_redis_lost_reads_nothing_of_the_new_one_until_restart_at(
    redis_server: RedisServer,
) -> None:
    add_events(redis_server.url, [event(seq) for seq in (1, 2, 3)], epoch="old")
    journal = RedisJournal(
        redis_server.url, Keys(), replica=1, epoch="old", last_seq=3, history_size=8, gather=0.0, password=None
    )
    delivered: list[Event] = []

    def deliver(run: Sequence[Event]) -> None:
        delivered.extend(run)

    journal.subscribe(deliver)
    journal.start()
    try:
        add_events(redis_server.url, [event(4, "in the old room")], epoch="old")
        await until(lambda: [e.seq for e in delivered] == [4], "the reader to deliver seq 4")
        redis_server.wipe()
        redis_server.start()
        add_events(redis_server.url, [event(5, "in the new room"), event(6, "also new")], epoch="new")
        await until(lambda: checked_the_epoch(redis_server) or len(delivered) > 1, "the reader back on Redis")
        assert [e.seq for e in delivered] == [4], f"delivered events of a room it does not know: {delivered[1:]}"
        journal.restart_at("new", 4)  # what the replica's link does once its heartbeat sees the new epoch
        await until(lambda: [e.seq for e in delivered] == [4, 5, 6], "the new room's events, once told")
        assert [e.text for e in delivered[1:]] == ["in the new room", "also new"]
    finally:
        await journal.close()
