"""Argon2id runs below the event loop in priority (``service/hashing.py``): a sign-in storm must not stall delivery."""

from __future__ import annotations

import asyncio
import os
import threading

from chat_tracker.core.passphrases import hash_passphrase, verify_passphrase
from chat_tracker.service.hashing import HASHING_NICE, HashingPool, usable_cores


def _where() -> tuple[int, int]:
    """The calling thread's id and its own nice value (Linux keeps one per thread)."""
    return threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_hashing_threads_run_at_a_lower_priority_than_the_loop() -> None:
    """The work runs on another thread, niced by HASHING_NICE; the loop's thread keeps its priority."""
    loop_thread, loop_nice = _where()

    async def scenario() -> tuple[tuple[int, int], bool]:
        pool = HashingPool()
        try:
            where = await pool.run(_where)
            hashed = await pool.run(lambda: hash_passphrase("correct horse battery staple"))
            verified = await pool.run(lambda: verify_passphrase(hashed, "correct horse battery staple"))
            return where, verified
        finally:
            pool.close()

    (worker_thread, worker_nice), verified = asyncio.run(scenario())
    assert verified
    assert worker_thread != loop_thread
    assert worker_nice == min(19, loop_nice + HASHING_NICE), (worker_nice, loop_nice)
    assert _where() == (loop_thread, loop_nice), "the loop's own thread was reniced"


def test_one_hashing_thread_per_usable_core() -> None:
    """As many threads as the cores the process may run on: more would only queue behind each other."""
    pool = HashingPool()
    try:
        assert pool.threads == usable_cores() == len(os.sched_getaffinity(0))
    finally:
        pool.close()
