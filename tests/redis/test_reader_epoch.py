"""A replica's reader, reconnected to a Redis restarted empty, delivers nothing of the new room before it is told.

Found by the nemesis (seed 3 of tests/redis/test_nemesis.py): after a wipe, the replica that opened
the new room registered again as replica 1, and its first member took the id the first member of a
replica still in the old epoch had. That replica's reader went on reading from its last entry (the
new room's seqs continue above the old ones), read the newcomer's join as its own member's, and that
member never received it, with no gap announced. The reader now checks the room's epoch with every
read and reads nothing until the link has seen the new epoch (``restart_at``). Checking it only after
an error was not enough (seed 10): a connection Redis closed while the reader was between two reads
(its gather pause, or the replica SIGSTOPped) is opened again by redis-py without an error.
"""

from __future__ import annotations

import pytest

from support.redis_journal import started_journal
from support.redis_room import until
from support.redis_server import RedisServer, add_events, event
from support.timing import UNIT

pytestmark = pytest.mark.anyio


def reading(server: RedisServer) -> bool:
    """Some client asked for the room's epoch, or is blocked reading the stream: the reader is on this Redis."""
    with server.client() as client:
        return any(entry.get("cmd") in ("hget", "xread") for entry in client.client_list())


async def the_new_room_waits_for_restart_at(redis_server: RedisServer, gather: float) -> None:
    """A reader in room "old" delivers seq 4; Redis restarts empty with a room "new" holding 5 and 6: nothing of it
    is delivered until ``restart_at``, then both are. ``gather``: the reader's pause after each page it delivers."""
    add_events(redis_server.url, [event(seq) for seq in (1, 2, 3)], epoch="old")
    journal, delivered = started_journal(redis_server.url, "old", 3, gather)
    try:
        add_events(redis_server.url, [event(4, "in the old room")], epoch="old")
        await until(lambda: [e.seq for e in delivered] == [4], "the reader to deliver seq 4", 2 * UNIT)
        redis_server.wipe()
        redis_server.start()
        add_events(redis_server.url, [event(5, "in the new room"), event(6, "also new")], epoch="new")
        await until(lambda: reading(redis_server) or len(delivered) > 1, "the reader back on Redis", gather + 2 * UNIT)
        assert [e.seq for e in delivered] == [4], f"delivered events of a room it does not know: {delivered[1:]}"
        journal.restart_at("new", 4)  # what the replica's link does once its heartbeat sees the new epoch
        await until(lambda: [e.seq for e in delivered] == [4, 5, 6], "the new room's events, once told", 2 * UNIT)
        assert [e.text for e in delivered[1:]] == ["in the new room", "also new"]
    finally:
        await journal.close()


async def test_a_reader_reconnected_to_a_room_redis_lost_reads_nothing_of_the_new_one_until_restart_at(
    redis_server: RedisServer,
) -> None:
    """Redis restarts while the reader is blocked in its read: the read fails, and the reader reconnects."""
    await the_new_room_waits_for_restart_at(redis_server, gather=0.0)


async def test_a_reader_whose_idle_connection_redis_closed_reads_nothing_of_the_new_room_until_restart_at(
    redis_server: RedisServer,
) -> None:
    """Redis restarts while the reader pauses between two reads: its next read goes out on a new connection
    with no error at all, and must still see that the room is another."""
    await the_new_room_waits_for_restart_at(redis_server, gather=UNIT / 2)
