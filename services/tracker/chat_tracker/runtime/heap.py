"""The cyclic garbage collector, set for a long-running server once it has started.

Every object the tracker holds at start (the modules, FastAPI's and pydantic's tables, uvicorn,
the journal's recent history read back from disk: some 80,000 objects) lives as long as the
process, yet CPython's full collection walks them all again and again: on a 2-core VM each walk
took 40-50 ms of CPU in one go, a pause that every member's delivery waited out. ``settle`` moves
them out of the collector's sight once (``gc.freeze``), so a full collection walks only what was
made since; and it lets more short-lived containers (a message's event, its frames, the lists of
one delivery) come and go before a young collection runs, since nearly all of them are freed by
their reference count well before one would. Garbage in cycles is still found, later.
"""

from __future__ import annotations

import gc

# Young collections run after this many more container allocations than deallocations (CPython's
# default is 700: at 200 messages a second to 100 members that was some 13 young collections a second).
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect once, freeze what survives (the server's start-up state), and space young collections out."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
