"""The reconnection backoff waits the numbers docs/client.md promises."""

from __future__ import annotations

import pytest

from chat_client.backoff import delay

# (low, high) seconds before attempts 0, 1, 2...: the table of docs/client.md "Reconnecting".
DOCUMENTED = [(0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (5.0, 10.0), (5.0, 10.0)]


def test_documented_ranges() -> None:
    """Each attempt's wait spans exactly the documented range: the jitter's ends give its ends."""
    for attempt, expected in enumerate(DOCUMENTED):
        low = delay(attempt, draw=lambda a, b: a)
        high = delay(attempt, draw=lambda a, b: b)
        assert (low, high) == pytest.approx(expected), attempt


def test_capped_forever() -> None:
    """However long the outage, no wait exceeds 10 s (and a huge attempt number does not overflow)."""
    assert delay(10_000, draw=lambda a, b: b) == 10.0
    assert delay(10_000, draw=lambda a, b: a) == 5.0


def test_jitter_is_random_within_range() -> None:
    """The real draw stays inside the range and varies, so clients that lost one tracker spread out."""
    waits = [delay(2) for _ in range(200)]
    assert all(1.0 <= wait <= 2.0 for wait in waits)
    assert len(set(waits)) > 100
