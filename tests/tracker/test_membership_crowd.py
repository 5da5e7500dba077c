"""A thousand registered members come back at once after a SIGKILL, each to everything said while she was away.

The accounts are made in accounts.db beforehand (one Argon2id hash shared by all, so setting up
costs one hash, not a thousand), each with a device whose token signs it in: the way a member's
client comes back, and no Argon2id per sign-in. Each welcome counts what she missed, and one
``history`` page brings it, in order.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat_tracker.core.accounts import new_account, new_device, new_device_token
from chat_tracker.core.passphrases import hash_passphrase
from chat_tracker.storage.accounts_db import SqliteAccounts
from support.bots import Bot, connect_json, open_bot
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, launch_tracker

pytestmark = pytest.mark.anyio

CROWD = 1_000
SAID = [f"while you were all away {n}" for n in range(5)]


def make_members(data: Path) -> dict[str, str]:
    """CROWD accounts, members since seq 0, each with a device; name -> its device token."""
    data.mkdir(parents=True, exist_ok=True)
    store = SqliteAccounts(data)
    shared_hash, now, tokens = hash_passphrase("correct horse battery"), time.time(), {}
    try:
        for index in range(CROWD):
            account = new_account(f"m{index:04d}", shared_hash, now)
            store.create(account)
            tokens[account.name] = new_device_token()
            store.add_device(new_device(account, "bot", tokens[account.name], now))
            store.begin_membership(account.name, 0, now)
    finally:
        store.close()
    return tokens


async def come_back(tracker: RunningTracker, name: str, token: str) -> tuple[Bot, dict[str, Any], list[str]]:
    """Sign ``name`` in with its device token; its welcome and the messages of its first history page."""
    bot = Bot(await connect_json(tracker.url, PASSWORD), name)
    assert (await bot.recv(4 * UNIT))["type"] == "hello"
    await bot.ws.send(json.dumps({"type": "join", "name": name, "device_token": token}))
    welcome = await bot.expect("welcome", 8 * UNIT)
    await bot.ws.send(json.dumps({"type": "history", "after": welcome["read"], "limit": 500}))
    page = await bot.expect("history_page", 8 * UNIT)
    return bot, welcome, [event["text"] for event in page["events"] if event["type"] == "message"]


async def test_a_thousand_registered_members_come_back_at_once_after_a_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tokens = make_members(data)
    tracker = launch_tracker(data)
    opened: list[Bot] = []
    try:
        speaker = await open_bot(tracker.url, PASSWORD, "speaker")
        for text in SAID:
            await speaker.say(text)
            while (await speaker.expect("message", 2 * UNIT))["text"] != text:
                pass
        tracker.process.send_signal(signal.SIGKILL)
        tracker.process.wait(timeout=2 * UNIT)
        tracker = launch_tracker(data)
        names = sorted(tokens)
        for start in range(0, CROWD, 100):  # a hundred at a time, with no pause between the batches
            batch = names[start : start + 100]
            back = await asyncio.gather(*(come_back(tracker, name, tokens[name]) for name in batch))
            for bot, welcome, said in back:
                opened.append(bot)
                assert welcome["registered"] is True and welcome["unread"] >= len(SAID), welcome
                assert said == SAID, (bot.name, said)
        async with httpx.AsyncClient(base_url=tracker.http_url, trust_env=False, timeout=4 * UNIT) as http:
            listed = (await http.get("/members", headers={"Authorization": f"Bearer {PASSWORD}"})).json()
        online = [m["name"] for m in listed["members"] if m["online"]]
        assert sorted(online) == names, f"{len(online)} of {CROWD} listed online"
    finally:
        await asyncio.gather(*(bot.ws.close() for bot in opened), return_exceptions=True)
        tracker.kill()
