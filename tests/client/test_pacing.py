"""The client's token bucket keeps sends under the tracker's announced rate."""

from __future__ import annotations

import pytest

from chat_client.pacing import TokenBucket
from chat_protocol import Limits


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_is_free_then_paced() -> None:
    """A full bucket lets a burst through at once, then spaces frames at the rate."""
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)


def test_refills_with_time() -> None:
    """Idle time refills the bucket, up to its capacity."""
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=2, clock=clock)
    bucket.reserve()
    bucket.reserve()
    clock.now += 10.0
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.5)


def test_sustained_rate_stays_below_limits() -> None:
    """Over a long run, frames scheduled by the bucket never exceed the tracker's bucket."""
    limits = Limits(rate_per_second=10.0, rate_burst=20)
    clock = FakeClock()
    ours = TokenBucket.below(limits, clock)
    theirs = TokenBucket(limits.rate_per_second, limits.rate_burst, clock)
    for _ in range(500):
        clock.now += ours.reserve()  # we send when our bucket says so...
        assert theirs.reserve() == 0.0  # ...and the tracker's bucket always has a token


def test_below_is_strictly_slower() -> None:
    """The client's pace leaves a margin under the announced rate and burst."""
    bucket = TokenBucket.below(Limits(rate_per_second=10.0, rate_burst=20))
    assert bucket.rate < 10.0
    assert 1 <= bucket.capacity < 20
