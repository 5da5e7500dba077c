"""Rate limits: token buckets, the password throttle (refuse, never park) and rate-limited warnings."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

Clock = Callable[[], float]
V = TypeVar("V")

IPV6_SITE_PREFIX = 48  # one site's IPv6 allocation: 65,536 /64s, all one guesser's for the shared budget
WARN_EVERY_SECONDS = 60.0  # one log line per kind of refusal per address per minute, however hard it tries


class TokenBucket:
    """Allows ``burst`` events at once and ``rate`` per second on average."""

    __slots__ = ("_clock", "_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._clock = clock
        self._updated = clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait(self) -> float:
        """Seconds until a token is there (0: one is there now); nothing is spent."""
        tokens = min(self.burst, self._tokens + (self._clock() - self._updated) * self.rate)
        if tokens >= 1.0:
            return 0.0
        return (1.0 - tokens) / self.rate if self.rate > 0 else math.inf

    def spend(self) -> None:
        """Spend a token if there is one, else empty the bucket (what was done is done; the bucket never owes)."""
        if not self.take():
            self._tokens = 0.0


class LruTable(Generic[V]):
    """A dict of at most ``limit`` entries: the least recently used one goes first, so memory stays bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class KeyedBuckets:
    """A token bucket per key (an address key, a network), made full on first use, in a bounded table.

    A key dropped from the table comes back with a full bucket: the table's size bounds
    memory, and an attacker with more keys than that gains nothing it would not get
    from fresh keys anyway.
    """

    def __init__(self, rate: float, burst: float, limit: int = 100_000, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._table: LruTable[TokenBucket] = LruTable(limit)

    def take(self, key: str) -> bool:
        return self._bucket(key).take()

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a token (0: it has one now); nothing is spent."""
        bucket = self._table.get(key)
        return 0.0 if bucket is None else bucket.wait()

    def spend(self, key: str) -> None:
        """Spend a token whether or not there is one (down to empty, never below)."""
        self._bucket(key).spend()

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._table.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self._clock)
            self._table.put(key, bucket)
        return bucket


@dataclass
class _Failures:
    count: int
    last_failure: float
    next_allowed: float  # a guess before this moment is refused, unchecked


@dataclass(frozen=True)
class Wait:
    """A guess refused unchecked: when to try again, and whether the guessing address itself is the cause."""

    seconds: float
    own: bool  # True: this address guessed too often; False: its network or everyone together did

    @property
    def retry_after(self) -> int:
        """Whole seconds for ``Retry-After`` (at least 1)."""
        return max(1, math.ceil(self.seconds))


class AuthThrottle:
    """Refuses password guesses that come too fast, instead of making them wait.

    Per address (its ``address_key``): the first ``free_failures`` mistakes cost nothing
    (typos); after that each wrong guess closes the address for a delay that doubles
    with every failure up to ``max_delay``, and a guess inside that time is refused at
    once, unchecked, with the time left. Nothing waits, so a flood of guesses holds no
    memory and no task, and a refused guess is not a failure: the right password sent
    after the delay is checked. Beyond the address, wrong guesses spend from two shared
    budgets: the address's IPv6 /48 (65,536 /64s, one site) and everyone's together,
    each a token bucket of ``per_minute`` (the /48: ``network_share`` of it). Only
    guesses that were checked and wrong spend them, so one address hammering away
    (refused unchecked) cannot exhaust the budget everyone shares. An address is
    forgotten ``forget_after`` seconds after its last failure, or on success.
    """

    def __init__(
        self,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        free_failures: int = 3,
        per_minute: float = 60.0,
        network_share: float = 0.25,
        forget_after: float = 900.0,
        max_addresses: int = 100_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.free_failures = free_failures
        self.forget_after = forget_after
        self._clock = clock
        self._by_address: LruTable[_Failures] = LruTable(max_addresses)
        self.everyone = TokenBucket(per_minute / 60.0, per_minute, clock)
        network_budget = max(1.0, per_minute * network_share)
        self.networks = KeyedBuckets(network_budget / 60.0, network_budget, max_addresses, clock)

    def delay_after(self, failures: int) -> float:
        """How long an address with ``failures`` failures is refused after its last one."""
        extra = failures - self.free_failures
        if extra < 0:
            return 0.0
        return float(min(self.max_delay, self.base_delay * 2 ** min(extra, 30)))

    def admit(self, address: str) -> Wait | None:
        """None if a guess from ``address`` (an address key) may be checked now; else how long to wait."""
        entry = self._current(address)
        now = self._clock()
        if entry is not None and now < entry.next_allowed:
            return Wait(entry.next_allowed - now, own=True)
        shared = max(self.networks.wait(network), 0.0) if (network := wide_network(address)) else 0.0
        shared = max(shared, self.everyone.wait())
        return Wait(shared, own=False) if shared > 0 else None

    def failed(self, address: str, shared: bool = True) -> None:
        """A guess from ``address`` was checked and wrong (``shared``: it spends the shared budgets too)."""
        now = self._clock()
        entry = self._current(address) or _Failures(0, now, now)
        entry.count += 1
        entry.last_failure = now
        entry.next_allowed = now + self.delay_after(entry.count)
        self._by_address.put(address, entry)
        if not shared:
            return
        network = wide_network(address)
        if network is not None:
            self.networks.spend(network)
        self.everyone.spend()

    def succeeded(self, address: str) -> None:
        self._by_address.pop(address)

    def failures(self, address: str) -> int:
        entry = self._current(address)
        return 0 if entry is None else entry.count

    def _current(self, address: str) -> _Failures | None:
        entry = self._by_address.get(address)
        if entry is not None and self._clock() - entry.last_failure > self.forget_after:
            self._by_address.pop(address)
            return None
        return entry


def wide_network(key: str) -> str | None:
    """The IPv6 /48 an address key (a /64) belongs to; None for IPv4 and anything else."""
    if ":" not in key:
        return None
    try:
        network = ipaddress.ip_network(key, strict=False)
    except ValueError:
        return None
    if not isinstance(network, ipaddress.IPv6Network) or network.prefixlen < IPV6_SITE_PREFIX:
        return None
    return str(network.supernet(new_prefix=IPV6_SITE_PREFIX))


class WarnLimiter:
    """At most one log line per kind of refusal per address key per ``every`` seconds.

    A refusal is cheap to provoke (a wrong password, a foreign Origin, a socket over
    the cap): logging each one would let anyone write the tracker's log at will.
    """

    def __init__(self, every: float = WARN_EVERY_SECONDS, limit: int = 10_000) -> None:
        self.every = every
        self.limit = limit
        self._warned: dict[tuple[str, str], float] = {}  # (kind, address key) -> when last logged

    def should_warn(self, kind: str, key: str, now: float) -> bool:
        """Whether a refusal of this kind for ``key`` (an address key) should be logged at ``now``."""
        entry = (kind, key)
        if now - self._warned.get(entry, -self.every) < self.every:
            return False
        if len(self._warned) >= self.limit:
            self._warned.clear()  # a flood from very many addresses: forget rather than grow
        self._warned[entry] = now
        return True
