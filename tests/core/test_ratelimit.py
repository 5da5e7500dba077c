"""Rate limits with a fake clock: token buckets, the password throttle (refuse, never park), warnings."""

from __future__ import annotations

import pytest

from chat_tracker.core.addresses import address_key
from chat_tracker.core.ratelimit import AuthThrottle, KeyedBuckets, TokenBucket, WarnLimiter, wide_network
from support.fakes import FakeClock


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
    """Guess wrong as soon as the throttle lets ``address`` in; returns how long that was (0: at once)."""
    wait = throttle.admit(address)
    waited = 0.0 if wait is None else wait.seconds
    clock.advance(waited)
    assert throttle.admit(address) is None
    throttle.failed(address)
    return waited


def test_free_failures_cost_nothing_then_delays_double_to_the_max() -> None:
    """The first ``free_failures`` mistakes are free; after them the address is closed for 0.5, 1, 2, 4... s."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=0.5, max_delay=4.0, free_failures=3, per_minute=1000, clock=clock)
    waits = [_fail(throttle, clock, "10.0.0.1") for _ in range(9)]
    assert waits == [0, 0, 0, 0.5, 1, 2, 4, 4, 4]
    assert throttle.failures("10.0.0.1") == 9


def test_a_guess_too_soon_is_refused_at_once_and_costs_nothing() -> None:
    """Inside its delay a guess is refused unchecked with the time left; refusals never extend the delay."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=1.0, max_delay=30.0, free_failures=1, clock=clock)
    throttle.failed("a")  # its one free failure: "a" is closed for 1 s
    for _ in range(1000):
        wait = throttle.admit("a")
        assert wait is not None and wait.own and wait.retry_after == 1
    assert throttle.failures("a") == 1
    clock.advance(0.6)
    wait = throttle.admit("a")
    assert wait is not None and wait.seconds == pytest.approx(0.4)
    clock.advance(0.4)
    assert throttle.admit("a") is None  # its turn came as announced, however many were refused meanwhile


def test_waiting_out_the_delay_is_not_punished() -> None:
    """A guess made after its delay has passed is admitted."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=0.5, max_delay=30.0, free_failures=1, clock=clock)
    _fail(throttle, clock, "a")
    clock.advance(0.5)
    assert _fail(throttle, clock, "a") == 0
    clock.advance(1.0)
    assert throttle.admit("a") is None


def test_another_address_is_unaffected() -> None:
    """A guessing address never refuses anyone else while the shared budget lasts."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=1.0, free_failures=0, clock=clock)
    for _ in range(10):
        _fail(throttle, clock, "10.0.0.1")
    assert throttle.admit("10.0.0.1") is not None
    assert throttle.admit("10.0.0.2") is None
    assert throttle.failures("10.0.0.2") == 0


def test_success_resets_the_address() -> None:
    """A right password forgets the address's failures: its next mistake is free again."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=1.0, free_failures=1, clock=clock)
    for _ in range(5):
        _fail(throttle, clock, "a")
    throttle.succeeded("a")
    assert throttle.failures("a") == 0
    assert throttle.admit("a") is None


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
    assert throttle.admit("a") is None


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


def test_the_shared_budget_refuses_new_guesses_from_everyone_then_refills() -> None:
    """Wrong guesses from many addresses spend one budget: past it every address is refused, then it refills."""
    clock = FakeClock()
    throttle = AuthThrottle(free_failures=3, per_minute=60, clock=clock)
    for n in range(60):
        assert throttle.admit(f"10.1.0.{n}") is None
        throttle.failed(f"10.1.0.{n}")
    wait = throttle.admit("10.2.0.1")
    assert wait is not None and not wait.own and wait.retry_after == 1
    clock.advance(1.0)  # 60 a minute: one more guess a second
    assert throttle.admit("10.2.0.1") is None


def test_guesses_refused_unchecked_do_not_spend_the_shared_budget() -> None:
    """One address hammering inside its delay leaves the shared budget whole for everyone else."""
    clock = FakeClock()
    throttle = AuthThrottle(base_delay=30.0, free_failures=3, per_minute=60, clock=clock)
    for _ in range(4):
        throttle.failed("10.0.0.1")
    for _ in range(20_000):
        assert throttle.admit("10.0.0.1") is not None
    assert throttle.everyone.wait() == 0  # 56 of 60 left
    assert throttle.admit("10.0.0.2") is None


def test_an_ipv6_48_shares_a_quarter_of_the_budget() -> None:
    """The /64s of one /48 together get a quarter of the shared budget; another /48 is unaffected."""
    clock = FakeClock()
    throttle = AuthThrottle(free_failures=3, per_minute=60, clock=clock)
    for n in range(15):
        key = address_key(f"2001:db8:1:{n:x}::1")
        assert throttle.admit(key) is None, n
        throttle.failed(key)
    wait = throttle.admit(address_key("2001:db8:1:ffff::1"))
    assert wait is not None and not wait.own
    assert throttle.admit(address_key("2001:db8:2::1")) is None
    assert wide_network(address_key("2001:db8:1:ffff::1")) == "2001:db8:1::/48"
    assert wide_network("192.0.2.1") is None


def test_keyed_buckets_are_per_key_and_bounded() -> None:
    """Each key has its own bucket; the table keeps at most ``limit`` keys."""
    clock = FakeClock()
    buckets = KeyedBuckets(rate=1.0, burst=2, limit=2, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [True, True, False]
    assert buckets.wait("a") == pytest.approx(1.0)
    assert buckets.take("b") and buckets.take("c")
    assert buckets.wait("a") == 0  # forgotten: a full bucket again, at most ``limit`` kept
    assert len(buckets._table) == 2


def test_warnings_once_a_minute_per_kind_and_address() -> None:
    """One line per kind of refusal per address per minute; other kinds and addresses are logged."""
    warnings = WarnLimiter(every=60.0)
    assert warnings.should_warn("origin", "10.0.0.1", 0.0)
    assert not warnings.should_warn("origin", "10.0.0.1", 59.0)
    assert warnings.should_warn("wrong", "10.0.0.1", 59.0)
    assert warnings.should_warn("origin", "10.0.0.2", 59.0)
    assert warnings.should_warn("origin", "10.0.0.1", 60.0)
