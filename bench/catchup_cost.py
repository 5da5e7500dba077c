"""What coming back after a long absence costs: a registered member catching up on ``--missed`` messages.

``python -m bench.catchup_cost [--missed 10000] [--history-size 10000] [--page 500]``

An account (member since seq 0, one device) is made in accounts.db; ``--missed`` message
lines of 400 bytes are appended to chat.log as the tracker writes them; the tracker starts
(with ``--history-size`` events in memory, the rest read from chat.log). Then, on loopback:

1. JSON: sign in with the device token (no Argon2id), and page through everything with
   ``history`` requests of ``--page`` events: the time to the welcome, to the first page,
   and to the last, and the number of messages received (it must equal ``--missed``).
2. Plain text: sign in with the passphrase (one Argon2id verify) and read the welcome's
   catch-up to its last line: the time, and how many missed lines were printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect

from bench.replay_cost import PASSWORD, Tracker, _connect, append_events
from chat_tracker.core.accounts import new_account, new_device, new_device_token
from chat_tracker.core.passphrases import hash_passphrase
from chat_tracker.storage.accounts_db import SqliteAccounts

NAME, PASSPHRASE = "alpha", "correct horse battery staple"


def make_member(data_dir: Path) -> str:
    """``alpha``, a member since seq 0 with one device; the device's token."""
    store = SqliteAccounts(data_dir)
    try:
        account = new_account(NAME, hash_passphrase(PASSPHRASE), time.time())
        store.create(account)
        token = new_device_token()
        store.add_device(new_device(account, "bench", token, time.time()))
        store.begin_membership(NAME, 0, time.time())
    finally:
        store.close()
    return token


async def json_catch_up(port: int, token: str, page: int) -> str:
    started = time.perf_counter()
    ws = await _connect(port)
    await ws.recv()  # hello
    await ws.send(json.dumps({"type": "join", "name": NAME, "device_token": token}))
    welcome = json.loads(await ws.recv())
    welcomed = time.perf_counter() - started
    after, messages, first_page, pages = welcome["read"], 0, 0.0, 0
    while after < welcome["seq"] - 1:
        await ws.send(json.dumps({"type": "history", "after": after, "limit": page}))
        frame = json.loads(await ws.recv())
        while frame["type"] != "history_page":
            frame = json.loads(await ws.recv())
        pages += 1
        first_page = first_page or time.perf_counter() - started
        messages += sum(1 for event in frame["events"] if event["type"] == "message")
        after = frame["last"]
    everything = time.perf_counter() - started
    await ws.close()
    return (
        f"JSON, device token: unread={welcome['unread']}, welcome {welcomed * 1000:.0f} ms, first page of {page} "
        f"{first_page * 1000:.0f} ms, all {messages} messages in {pages} pages {everything:.2f} s"
    )


async def plain_catch_up(port: int) -> str:
    started = time.perf_counter()
    ws = await connect(f"ws://127.0.0.1:{port}/ws", max_size=None, ping_interval=None)
    for answer in (PASSWORD, NAME, PASSPHRASE):
        while not str(await ws.recv()).endswith("..."):
            pass
        await ws.send(answer)
    shown = 0
    while not (line := str(await ws.recv())).startswith("* That is everything"):
        shown += line.startswith("bot")
    seconds = time.perf_counter() - started
    await ws.close()
    return f"plain text, passphrase: {shown} missed lines printed after the welcome in {seconds:.2f} s"


async def catch_up_cost(missed: int, history_size: int, page: int) -> list[str]:
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory)
        token = make_member(data_dir)
        Tracker(data_dir).stop()  # chat.log begins with its start and stop lines
        last = int((data_dir / "chat.log").read_text().splitlines()[-1].split(" ", 1)[0])
        append_events(data_dir / "chat.log", last + 1, missed)
        tracker = Tracker(data_dir, "--history-size", str(history_size))
        try:
            before = tracker.rss_kib("VmRSS")
            caught_up = await json_catch_up(tracker.port, token, page)
            grown = (tracker.rss_kib("VmHWM") - before) / 1024
            return [f"{caught_up}; tracker RSS +{grown:.1f} MB (peak)", await plain_catch_up(tracker.port)]
        finally:
            tracker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--missed", type=int, default=10_000)
    parser.add_argument("--history-size", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=500)
    args = parser.parse_args()
    for line in asyncio.run(catch_up_cost(args.missed, args.history_size, args.page)):
        print(line)


if __name__ == "__main__":
    main()
