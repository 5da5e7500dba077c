"""Client-side pacing, so a long piped script never trips the tracker's rate limit.

The tracker drops (``rate_limited``) or disconnects (4006) a member that sends
faster than ``welcome.limits`` allows. A token bucket here spaces our frames
below that limit instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from chat_protocol import Limits

# Stay under the tracker's limit: frames sent evenly can still arrive bunched
# (Nagle, scheduling, a busy network), and the tracker measures on arrival.
RATE_MARGIN = 0.8
BURST_MARGIN = 0.5


class TokenBucket:
    """A token bucket that says how long to wait before the next frame may go."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = max(rate, 0.001)
        self.capacity = max(float(burst), 1.0)
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()

    @classmethod
    def below(cls, limits: Limits, clock: Callable[[], float] = time.monotonic) -> TokenBucket:
        """A bucket safely below the tracker's announced limits."""
        burst = max(1, int(limits.rate_burst * BURST_MARGIN))
        return cls(limits.rate_per_second * RATE_MARGIN, burst, clock)

    def reserve(self) -> float:
        """Take a token and return how many seconds to wait before using it (0 if one was free)."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1.0
        # A negative balance is a debt that refills at ``rate``: wait until it is paid.
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def wait(self) -> None:
        """Sleep until a frame may be sent."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
