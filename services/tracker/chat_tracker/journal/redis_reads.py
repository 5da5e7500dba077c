"""Reads of the Redis stream on a member's behalf (a resume's replay from before the replica's ring).

Only events the replica has delivered are read: an entry it has not read yet (its reader
is behind) is no member's business until it has been handed on in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from chat_tracker.core.events import Event
from chat_tracker.journal.redis_keys import entries_of, event_of, seq_of

SLACK = 16  # entries asked for beyond ``limit``: control entries between the events take their place


async def delivered_range(
    client: aioredis.Redis, events_key: str, seq: int, limit: int, delivered: Callable[[], int]
) -> list[Event]:
    """Up to ``limit`` room events after ``seq`` from the stream, none past ``delivered()`` (read at each page)."""
    events: list[Event] = []
    cursor = f"{seq + 1}-0"
    while len(events) < limit:
        entries: Any = await client.xrange(events_key, min=cursor, max="+", count=limit - len(events) + SLACK)
        if not entries:
            break
        last_delivered = delivered()
        for entry_seq, sub, fields in entries_of(entries):
            if sub == 0 and entry_seq <= last_delivered and len(events) < limit:
                events.append(event_of(entry_seq, fields))
        last_seq, last_sub = seq_of(entries[-1][0])
        if last_seq > last_delivered:
            break  # the rest is not delivered yet: never read the stream to its end for it
        cursor = f"({last_seq}-{last_sub}"
    return events
