"""Rate limits with a fake clock: the per-member token bucket and the per-address password throttle."""

from __future__ import annotations

import pytest

from chat_tracker.ratelimit import AuthThrottle, TokenBucket

from .helpers import FakeClock


def test_bucket_allows_a_burst_then_the_rate() -> None:
    """A full bucket allows ``burst`` events at once, then one per 1/rate seconds."""
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=5, clock=clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(0.49)
    assert not bucket.take()
    clock.advance(0.01)
    assert bucket.take() and not bucket.take()
    clock.advance(1.0)
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_bucket_never_saves_more_than_the_burst() -> None:
    """However long it is idle, the bucket holds at most ``burst`` tokens."""
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=3, clock=clock)
    clock.advance(3600)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_refused_takes_cost_nothing() -> None:
    """A refused take does not push the next allowed one further away."""
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
    assert bucket.take()
    for _ in range(10):
        clock.advance(0.05)
        assert not bucket.take()
    clock.advance(0.5)
    assert bucket.take()


def _fail(throttle: AuthThrottle, clock: FakeClock, address: str) -> float:
    """One wrong attempt as PasswordGate makes it: wait for the turn, then fail. Returns the wait."""
    wait = throttle.reserve(address)
    clock.advance(wait)
    throttle.failed(address)
    return wait


def test_free_failures_cost_nothing_then_delays_double_to_the_max() -> None:
    """The first ``free_failures`` mistakes are free; after them each attempt waits 0.5, 1, 2, 4... s up to the max."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=0.5, max_delay=4.0, free_failures=3, clock=clock)
    waits = [_fail(throttle, clock, "10.0.0.1") for _ in range(9)]
    assert waits == [0, 0, 0, 0.5, 1, 2, 4, 4, 4]
    assert throttle.failures("10.0.0.1") == 9


def test_waiting_out_the_delay_is_not_punished() -> None:
    """An attempt made after its delay has passed waits nothing more."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=0.5, max_delay=30.0, free_failures=1, clock=clock)
    _fail(throttle, clock, "a")
    clock.advance(0.5)
    assert _fail(throttle, clock, "a") == 0
    clock.advance(1.0)
    assert throttle.reserve("a") == 0


def test_concurrent_attempts_take_successive_turns() -> None:
    """Attempts from one address made at the same moment are spaced out, not all let through."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=1.0, max_delay=30.0, free_failures=1, clock=clock)
    throttle.failed("a")
    assert [throttle.reserve("a") for _ in range(3)] == [1.0, 3.0, 5.0]


def test_another_address_is_unaffected() -> None:
    """A guessing address never slows down anyone else."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=1.0, free_failures=0, clock=clock)
    for _ in range(10):
        _fail(throttle, clock, "10.0.0.1")
    assert throttle.reserve("10.0.0.1") > 0
    assert throttle.reserve("10.0.0.2") == 0
    assert throttle.failures("10.0.0.2") == 0


def test_success_resets_the_address() -> None:
    """A right password forgets the address's failures: its next mistake is free again."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=1.0, free_failures=1, clock=clock)
    for _ in range(5):
        _fail(throttle, clock, "a")
    throttle.succeeded("a")
    assert throttle.failures("a") == 0
    assert throttle.reserve("a") == 0


def test_failures_are_forgotten_after_forget_after() -> None:
    """An address is forgotten ``forget_after`` seconds after its last failure, not sooner."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=1.0, free_failures=0, forget_after=60.0, clock=clock)
    for _ in range(4):
        _fail(throttle, clock, "a")
    clock.advance(60.0)
    assert throttle.failures("a") == 4
    clock.advance(0.001)
    assert throttle.failures("a") == 0
    assert throttle.reserve("a") == 0


def test_address_table_is_bounded() -> None:
    """Past ``max_addresses`` the least recently failing address is dropped, so memory stays bounded."""
    clock = FakeClock()
    throttle = AuthThrottle(free_failures=0, max_addresses=3, clock=clock)
    for address in ("a", "b", "c", "a", "d"):
        throttle.failed(address)
    assert [throttle.failures(x) for x in "abcd"] == [2, 0, 1, 1]


@pytest.mark.parametrize(
    ("failures", "delay"), [(0, 0.0), (2, 0.0), (3, 0.5), (4, 1.0), (8, 16.0), (9, 30.0), (10**6, 30.0)]
)
def test_delay_after(failures: int, delay: float) -> None:
    """delay_after is 0 within the free failures, then doubles from base_delay, capped at max_delay."""
    assert AuthThrottle(base_delay=0.5, max_delay=30.0, free_failures=3).delay_after(failures) == delay
