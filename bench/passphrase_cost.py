"""What an account costs: one Argon2id hash and verify (a sign-in), and accounts.db's size per account.

``python -m bench.passphrase_cost [--rounds 30] [--accounts 2000]``

1. ``--rounds`` hashes and as many verifies with ``core/passphrases.py``'s parameters
   (OWASP's: m=19456 KiB, t=2, p=1), one at a time on one thread: the median and the
   slowest, in milliseconds. Then the same verifies on as many threads as there are
   cores at once (argon2-cffi releases the GIL), as sign-ins per second: what a tracker
   that runs them with ``asyncio.to_thread`` can check when many members sign in at once.
2. ``--accounts`` accounts, each with two devices and a read position, in a fresh
   accounts.db (``storage/accounts_db.py``): the file's size (after a checkpoint) per account.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chat_tracker.core.accounts import new_account, new_device, new_device_token
from chat_tracker.core.passphrases import hash_passphrase, verify_passphrase
from chat_tracker.storage.accounts_db import ACCOUNTS_FILE, SqliteAccounts

PASSPHRASE = "correct horse battery staple"
DEVICES_PER_ACCOUNT = 2


def timed_ms(work: list[str], step: Callable[[str], object]) -> tuple[list[float], list[float]]:
    """Milliseconds each call of ``step`` took, one per item of ``work``: wall time, and this thread's CPU time.

    The CPU time is what the hash costs whatever else the machine is doing; the wall time grows
    when other processes share the cores.
    """
    wall, cpu = [], []
    for item in work:
        start, start_cpu = time.perf_counter(), time.thread_time()
        step(item)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    return wall, cpu


def report(what: str, wall: list[float], cpu: list[float]) -> None:
    print(
        f"{what}: median {statistics.median(wall):.1f} ms wall ({statistics.median(cpu):.1f} ms CPU), "
        f"slowest {max(wall):.1f} ms wall"
    )


def hashing(rounds: int) -> None:
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {rounds} rounds, one thread")
    hashes = [hash_passphrase(PASSPHRASE) for _ in range(rounds)]
    report("hash  ", *timed_ms([PASSPHRASE] * rounds, hash_passphrase))
    report("verify", *timed_ms(list(hashes), lambda encoded: verify_passphrase(encoded, PASSPHRASE)))
    cores = os.cpu_count() or 1
    start = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        results = list(pool.map(lambda encoded: verify_passphrase(encoded, PASSPHRASE), hashes * cores))
    elapsed = time.perf_counter() - start
    assert all(results)
    print(f"verify on {cores} threads at once: {len(results) / elapsed:.0f} sign-ins per second")


def store_size(accounts: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteAccounts(Path(directory))
        encoded = hash_passphrase(PASSPHRASE)  # one hash for all: the size, not the time, is measured here
        for number in range(accounts):
            account = new_account(f"member{number}", encoded, time.time())
            store.create(account)
            for label in ("laptop", "phone")[:DEVICES_PER_ACCOUNT]:
                store.add_device(new_device(account, label, new_device_token(), time.time()))
            store.advance_read_position(account.name, number)
        store.close()  # the last connection checkpoints the WAL into the file
        size = (Path(directory) / ACCOUNTS_FILE).stat().st_size
    per_account = size / accounts
    print(f"accounts.db: {per_account:.0f} bytes per account ({accounts} accounts, {DEVICES_PER_ACCOUNT} devices each)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.passphrase_cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=30, help="hashes and verifies timed")
    parser.add_argument("--accounts", type=int, default=2_000, help="accounts written to measure the file")
    args = parser.parse_args()
    hashing(args.rounds)
    store_size(args.accounts)


if __name__ == "__main__":
    main()
