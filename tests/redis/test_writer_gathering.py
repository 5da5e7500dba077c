"""A replica's writer gathers before every APPEND call, not only after an idle spell.

Under steady traffic the writer used to send, right after each answer, whatever had come during that
round trip: about one script call per round trip (and one fsync in Redis with ``appendfsync always``).
It now waits its gathering time before each call, so a steady stream costs one call per gathering.
Counted by Redis itself (``INFO commandstats``), against the time the stream took.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from chat_tracker.core.events import MESSAGE
from support.redis_journal import registered_room, started_journal
from support.redis_room import until
from support.redis_server import RedisServer
from support.timing import UNIT

pytestmark = pytest.mark.anyio

GATHER = 0.020  # seconds: long against a loopback round trip, so each call's gathering shows
MESSAGES = 300
SPACING = 0.0002  # seconds between two appends: many arrive during each round trip


def script_calls(server: RedisServer) -> int:
    with server.client() as client:
        stats = client.info("commandstats")
    return sum(int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval"))


async def test_a_steady_stream_costs_one_script_call_per_gathering(redis_server: RedisServer) -> None:
    registered_room(redis_server, "steady", 1)
    with redis_server.client() as client:
        client.config_resetstat()
    journal, delivered = started_journal(redis_server.url, "steady", 1, GATHER)
    try:
        started = time.monotonic()
        for number in range(MESSAGES):
            journal.append(MESSAGE, "ann", f"steady {number}")
            await asyncio.sleep(SPACING)  # the traffic's pace, not a wait for anything
        left = started + 10 * UNIT - time.monotonic()
        await until(lambda: len(delivered) == MESSAGES, f"all {MESSAGES} delivered", left)
        took = time.monotonic() - started
    finally:
        await journal.close()
    assert [e.text for e in delivered] == [f"steady {number}" for number in range(MESSAGES)]
    calls = script_calls(redis_server)
    # One call per gathering at most (the first gathering starts with the first append), a load (NOSCRIPT) besides.
    assert 1 <= calls <= took / GATHER + 2, f"{calls} script calls for {MESSAGES} messages in {took:.3f} s"
