"""How long to wait before each reconnection attempt: jittered exponential backoff.

Pure, so the numbers docs/client.md promises are checked by unit tests. Attempt
``n`` (0-based) waits ``min(CAP, BASE * 2**n)`` seconds times a random factor in
``JITTER``: 0.25-0.5 s, 0.5-1 s, 1-2, 2-4, 4-8, then 5-10 s for every later one.
The jitter spreads a room's worth of clients that lost the same tracker at the
same moment, so they do not all knock on the restarted one at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable

BASE = 0.5  # seconds before the first attempt, at most
CAP = 10.0  # no wait is longer than this
JITTER = (0.5, 1.0)  # the wait is this fraction of the exponential, drawn uniformly
# 2**5 * BASE already exceeds CAP; a larger exponent only risks float overflow on a long outage.
_MAX_EXPONENT = 16


def delay(attempt: int, draw: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait before attempt ``attempt`` (0 for the first one after the loss)."""
    ceiling = min(CAP, BASE * 2.0 ** min(max(attempt, 0), _MAX_EXPONENT))
    return ceiling * draw(*JITTER)
