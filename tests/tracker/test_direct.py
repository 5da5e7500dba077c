"""Direct messages and rooms that outlive the connection, on a real tracker.

A direct message is seen by exactly two members (every connection of each), is in its
conversation's log under ``direct/`` and in no room's log; one to a registered member who
is offline arrives when she signs in again, after her welcome; a registered member comes
back to her rooms at sign-in, told what she missed in each, and pages through it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.bots import Bot, open_bot
from support.peers import plain_member
from support.rooms import enter, frames_until, lines_until, logged, say_in
from support.signin import PASSPHRASE, joined, register, until_listed_offline
from support.timing import UNIT
from support.tracker import PASSWORD, launch_tracker

pytestmark = pytest.mark.anyio


async def direct(bot: Bot, to: str, text: str) -> dict[str, object]:
    """Send ``text`` to ``to`` alone; its echo (or an error)."""
    await bot.ws.send(json.dumps({"type": "message", "to": to, "text": text, "id": text[:60]}))
    while True:
        frame = await bot.recv(2 * UNIT)
        if frame["type"] == "error" or (frame["type"] == "message" and frame.get("text") == text):
            return frame


async def test_a_direct_message_is_seen_by_exactly_its_two_members(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tracker = launch_tracker(data)
    try:
        alice, bob, carol = [await open_bot(tracker.url, PASSWORD, n) for n in ("alice", "bob", "carol")]
        echo = await direct(alice, "bob", "just between us")
        assert echo["to"] == "bob" and echo["name"] == "alice" and echo["id"] == "just between us", echo
        got = (await frames_until(bob, "just between us"))[-1]
        assert got["to"] == "bob" and got["name"] == "alice" and "room" not in got and "id" not in got, got
        await say_in(alice, None, "for everyone")
        carol_saw = await frames_until(carol, "for everyone")
        assert "just between us" not in json.dumps(carol_saw)
        async with plain_member(tracker.url, PASSWORD, "dave") as dave:
            await direct(bob, "dave", "hi dave")
            assert (await lines_until(dave, "hi dave"))[-1] == "[bob] hi dave"
            await dave.send("/msg bob hi bob")
            assert (await frames_until(bob, "hi bob"))[-1]["to"] == "bob"
        nobody = await direct(alice, "zed", "anyone?")
        assert nobody["type"] == "error" and nobody["code"] == "no_such_member", nobody
        assert "just between us" not in (data / "chat.log").read_text()
        (conversation,) = [p for p in (data / "direct").iterdir() if "bob" in p.name and "allce" in p.name]
        assert [(k, n, t) for _, k, n, t in logged(conversation / "chat.log")] == [("msg", "alice", "just between us")]
    finally:
        tracker.stop()


async def test_a_direct_message_to_an_offline_registered_member_arrives_when_she_is_back(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "bob")
        await until_listed_offline(tracker, "bob")
        alice = await open_bot(tracker.url, PASSWORD, "alice")
        for text in ("are you there?", "call me"):
            assert (await direct(alice, "bob", text))["type"] == "message"
        bob, welcome = await joined(tracker, "bob", PASSPHRASE)
        assert welcome["type"] == "welcome", welcome
        missed = [await bob.recv(2 * UNIT) for _ in range(2)]
        assert [(m["name"], m["to"], m["text"]) for m in missed] == [
            ("alice", "bob", "are you there?"),
            ("alice", "bob", "call me"),
        ]
        await bob.ws.close()
        await until_listed_offline(tracker, "bob")
        bob, _ = await joined(tracker, "bob", PASSPHRASE)  # read now: not again
        await say_in(alice, None, "marker")
        assert [f["type"] for f in await frames_until(bob, "marker")] == ["message"]
    finally:
        tracker.stop()


async def test_a_registered_member_comes_back_to_her_rooms_and_pages_through_what_she_missed(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "bob")
        bob, _ = await joined(tracker, "bob", PASSPHRASE)
        await enter(bob, "#dev")
        await bob.ws.close()
        await until_listed_offline(tracker, "bob")
        alice = await open_bot(tracker.url, PASSWORD, "alice")
        await enter(alice, "#dev")
        said = [(await say_in(alice, "#dev", f"while away {n}"))["seq"] for n in range(3)]
        bob, welcome = await joined(tracker, "bob", PASSPHRASE)
        (dev,) = welcome["rooms"]
        assert dev["room"] == "#dev" and dev["unread"] == 4, welcome  # alice's join and her three messages
        entered = await bob.expect("entered", 2 * UNIT)
        assert entered["room"] == "#dev" and entered["unread"] == 4 and entered["members"] == ["alice", "bob"]
        await bob.ws.send(json.dumps({"type": "history", "room": "#dev", "after": entered["read"], "limit": 500}))
        page = await bob.expect("history_page", 2 * UNIT)
        texts = [e["text"] for e in page["events"] if e["type"] == "message"]
        assert page["room"] == "#dev" and texts == [f"while away {n}" for n in range(3)], page
        assert page["last"] >= said[-1]
    finally:
        tracker.stop()
