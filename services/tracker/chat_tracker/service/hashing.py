"""Where Argon2id runs: a thread per usable core, each at a lower scheduling priority than the event loop.

A passphrase's hash or verify costs tens of milliseconds of a core, on purpose. On asyncio's
default executor (up to cores + 4 threads, at the event loop's own priority) a hundred
sign-ins at once took the cores from the loop, and everyone else's deliveries waited behind
them. Here the hashing threads run at ``HASHING_NICE``: Linux applies a thread's nice value to
that thread alone, so whenever the loop has work the scheduler hands it a core at once, and
the sign-ins go on with what the loop leaves. Sign-ins take longer when the tracker is busy;
members' messages do not wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

HASHING_NICE = 10  # a weight of 110 against the loop's 1,024: about a tenth of a core the loop also wants

T = TypeVar("T")


class HashingPool:
    """Runs Argon2id work off the event loop, below it in priority."""

    def __init__(self) -> None:
        self.threads = usable_cores()
        self._executor = ThreadPoolExecutor(self.threads, "passphrase-hashing", initializer=lower_priority)

    async def run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def lower_priority() -> None:
    """Lower the calling thread's priority by ``HASHING_NICE`` (Linux only: elsewhere it would renice the process)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):  # a sandbox forbidding it: the thread hashes at the loop's priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)
