"""What a storm of passphrase sign-ins does to everyone else: delivery latency while many members sign in at once.

``python -m bench.signin_storm [--sign-ins 100] [--members 100] [--rate 50]``

``--members`` guests are in the room; one of them says ``--rate`` messages a second, each
carrying its send time, and every member notes how long each took to reach it. First
for a few seconds with nothing else going on, then while ``--sign-ins`` registered
members sign in with their passphrase all at once (one Argon2id verify each, off the
event loop). Reported: the p50 and p99 delivery latency of each phase, and how long the
storm took until every one of them had its welcome.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.replay_cost import Tracker, _connect
from chat_tracker.core.accounts import new_account
from chat_tracker.core.passphrases import hash_passphrase
from chat_tracker.storage.accounts_db import SqliteAccounts

PASSPHRASE = "correct horse battery staple"
QUIET_SECONDS = 3.0


def make_accounts(data_dir: Path, count: int) -> list[str]:
    store = SqliteAccounts(data_dir)
    shared_hash, names = hash_passphrase(PASSPHRASE), [f"signer{n:03d}" for n in range(count)]
    try:
        for name in names:
            store.create(new_account(name, shared_hash, time.time()))
    finally:
        store.close()
    return names


async def member(port: int, name: str, latencies: list[float], stop: asyncio.Event) -> Any:
    ws = await _connect(port)
    await ws.recv()
    await ws.send(json.dumps({"type": "join", "name": name}))
    while json.loads(await ws.recv())["type"] != "welcome":
        pass

    async def listen() -> None:
        while not stop.is_set():
            frame = json.loads(await ws.recv())
            if frame["type"] == "message" and frame["text"].startswith("t="):
                latencies.append(time.perf_counter() - float(frame["text"][2:]))

    return ws, asyncio.get_running_loop().create_task(listen())


async def speak(speakers: list[Any], rate: float, seconds: float) -> None:
    """``rate`` messages a second, said in turn by each of ``speakers`` (each stays under the rate limit)."""
    deadline, turn = time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline:
        await speakers[turn % len(speakers)].send(json.dumps({"type": "message", "text": f"t={time.perf_counter()!r}"}))
        turn += 1
        await asyncio.sleep(1 / rate)


async def sign_in(port: int, name: str) -> None:
    ws = await _connect(port)
    await ws.recv()
    await ws.send(json.dumps({"type": "join", "name": name, "passphrase": PASSPHRASE}))
    while json.loads(await ws.recv())["type"] != "welcome":
        pass
    await ws.close()


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms ({len(ordered)} deliveries)"


async def storm(sign_ins: int, members: int, rate: float) -> list[str]:
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory)
        names = make_accounts(data_dir, sign_ins)
        tracker = Tracker(data_dir, "--joins-per-minute", "100000")  # every join comes from 127.0.0.1
        stop = asyncio.Event()
        quiet: list[float] = []
        stormy: list[float] = []
        took = 0.0
        try:
            sink: list[float] = []
            joined = [await member(tracker.port, f"guest{n:03d}", sink, stop) for n in range(members)]
            speakers = [ws for ws, _ in joined]
            await speak(speakers, rate, QUIET_SECONDS)
            quiet, sink[:] = list(sink), []
            started = time.perf_counter()
            talking = asyncio.get_running_loop().create_task(speak(speakers, rate, 60))
            await asyncio.gather(*(sign_in(tracker.port, name) for name in names))
            took = time.perf_counter() - started
            talking.cancel()
            stormy = list(sink)
            stop.set()
            for ws, task in joined:
                task.cancel()
                ws.transport.abort()  # nobody reads any more: no closing handshake to wait for
        finally:
            tracker.stop()
    return [
        f"{members} members, {rate:g} msg/s, quiet: {percentiles(quiet)}",
        f"while {sign_ins} passphrase sign-ins ran at once ({took:.2f} s to the last welcome): {percentiles(stormy)}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sign-ins", type=int, default=100)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()
    for line in asyncio.run(storm(args.sign_ins, args.members, args.rate)):
        print(line)


if __name__ == "__main__":
    main()
