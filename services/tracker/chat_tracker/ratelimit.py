"""Rate limits: a token bucket per member, and a growing delay per address for wrong passwords."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


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


@dataclass
class _Failures:
    count: int
    last_failure: float
    next_slot: float


class AuthThrottle:
    """Spaces out password attempts from an address that keeps getting it wrong.

    The first ``free_failures`` mistakes cost nothing (typos). After that each
    attempt from that address waits for its turn, and turns are spaced by a delay
    that doubles with every failure up to ``max_delay``. Only the guessing address
    slows down: other addresses are not affected, so nobody can lock anyone else out.
    An address is forgotten ``forget_after`` seconds after its last failure, or on success.
    """

    def __init__(
        self,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        free_failures: int = 3,
        forget_after: float = 900.0,
        max_addresses: int = 100_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.free_failures = free_failures
        self.forget_after = forget_after
        self.max_addresses = max_addresses
        self._clock = clock
        self._by_address: OrderedDict[str, _Failures] = OrderedDict()

    def delay_after(self, failures: int) -> float:
        """The spacing between attempts once an address has ``failures`` failures."""
        extra = failures - self.free_failures
        if extra < 0:
            return 0.0
        return float(min(self.max_delay, self.base_delay * 2 ** min(extra, 30)))

    def reserve(self, address: str) -> float:
        """Seconds this attempt must wait before its password is checked (0 for most)."""
        entry = self._current(address)
        if entry is None:
            return 0.0
        now = self._clock()
        slot = max(now, entry.next_slot)
        # The turn after this one is spaced as if this attempt fails too (success forgets the address).
        entry.next_slot = slot + self.delay_after(entry.count + 1)
        return slot - now

    def failed(self, address: str) -> None:
        now = self._clock()
        entry = self._current(address)
        if entry is None:
            entry = _Failures(0, now, now + self.delay_after(1))
            self._by_address[address] = entry
            self._evict_oldest()
        entry.count += 1
        entry.last_failure = now
        self._by_address.move_to_end(address)

    def succeeded(self, address: str) -> None:
        self._by_address.pop(address, None)

    def failures(self, address: str) -> int:
        entry = self._current(address)
        return 0 if entry is None else entry.count

    def _current(self, address: str) -> _Failures | None:
        entry = self._by_address.get(address)
        if entry is not None and self._clock() - entry.last_failure > self.forget_after:
            del self._by_address[address]
            return None
        return entry

    def _evict_oldest(self) -> None:
        while len(self._by_address) > self.max_addresses:
            self._by_address.popitem(last=False)
