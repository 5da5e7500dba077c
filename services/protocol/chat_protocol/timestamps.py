"""Timestamps as chat.log and every frame write them: UTC ISO-8601 with milliseconds and a ``Z``."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime


def format_ts(epoch_seconds: float) -> str:
    """UTC ISO-8601 with milliseconds and a ``Z``: ``2026-11-24T01:50:38.123Z``."""
    # As datetime.fromtimestamp rounds: to the microsecond, half to even, then milliseconds truncated.
    fraction, whole = math.modf(epoch_seconds)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    return f"{_second_prefix(int(whole))}{micro // 1000:03d}Z"


@functools.lru_cache(maxsize=4)
def _second_prefix(second: int) -> str:
    """``2026-11-24T01:50:38.`` for one second: every event of a busy second shares it (strftime costs 2 us)."""
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def parse_ts(text: str) -> datetime:
    """Parse a timestamp written by ``format_ts`` into an aware datetime (3.11 reads the ``Z``)."""
    return datetime.fromisoformat(text)
