"""Direct messages and rooms that outlive the connection, on a real tracker.

A direct message is seen by exactly two members (every connection of each), is in its
conversation's log under ``direct/`` and in no room's log; one to a registered member who
is offline arrives when she signs in again, after her welcome; a registered member comes
back to her rooms at sign-in, told what she missed in each, and pages through it.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from support.bots import open_bot
from support.peers import plain_member
from support.resume import Member as ResumingMember
from support.rooms import direct, enter, frames_until, lines_until, logged, say_in
from support.signin import PASSPHRASE, joined, register, until_listed_offline
from support.timing import UNIT
from support.tracker import PASSWORD, launch_tracker

pytestmark = pytest.mark.anyio


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


async def test_a_registered_member_pages_through_a_conversation_with_history(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "bob")
        bob, _ = await joined(tracker, "bob", PASSPHRASE)
        alice = await open_bot(tracker.url, PASSWORD, "alice")
        said = [f"note {n}" for n in range(5)]
        for text in said:
            await direct(alice, "bob", text)
        await direct(bob, "alice", "got them")
        events: list[dict[str, object]] = []
        after = 0
        while True:
            await bob.ws.send(json.dumps({"type": "history", "to": "alice", "after": after, "limit": 2}))
            page = await bob.expect("history_page", 2 * UNIT)
            assert page["to"] == "alice", page
            events += page["events"]
            after = page["last"]
            if not page["more"]:
                break
        assert [(e["name"], e["to"], e["text"]) for e in events] == [("alice", "bob", t) for t in said] + [
            ("bob", "alice", "got them")
        ]
        await bob.ws.send(json.dumps({"type": "history", "to": "nobody1", "after": 0}))
        empty = await bob.expect("history_page", 2 * UNIT)
        assert empty["events"] == [] and empty["more"] is False, empty
        assert not (tmp_path / "data" / "direct" / "bob+nobodyl").exists()  # asking opens no conversation
    finally:
        tracker.stop()


async def test_a_room_entered_or_left_on_one_device_is_entered_or_left_on_all_of_them(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "bob")
        laptop, _ = await joined(tracker, "bob", PASSPHRASE)
        phone, _ = await joined(tracker, "bob", PASSPHRASE)
        assert (await enter(laptop, "#dev"))["type"] == "entered"
        assert (await phone.expect("entered", 2 * UNIT))["room"] == "#dev"
        alice = await open_bot(tracker.url, PASSWORD, "alice")
        await enter(alice, "#dev")
        await say_in(alice, "#dev", "both of you")
        for device in (laptop, phone):
            assert (await frames_until(device, "both of you"))[-1]["room"] == "#dev"
        await laptop.ws.send(json.dumps({"type": "part", "room": "#dev"}))
        for device in (laptop, phone):
            assert (await device.expect("parted", 2 * UNIT))["room"] == "#dev"
        await say_in(alice, "#dev", "gone?")
        await say_in(alice, None, "marker")
        assert "gone?" not in json.dumps(await frames_until(phone, "marker"))
    finally:
        tracker.stop()


async def test_a_private_room_and_a_conversation_answer_rest_only_to_their_members_own_credentials(
    tmp_path: Path,
) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        for name in ("bob", "eve"):
            await register(tracker, name)
        bob, _ = await joined(tracker, "bob", PASSPHRASE)
        await enter(bob, "#secret", private=True)
        await say_in(bob, "#secret", "the plan")
        alice = await open_bot(tracker.url, PASSWORD, "alice")
        await direct(alice, "bob", "hello bob")

        async def get(path: str, auth: tuple[str, str] | None) -> httpx.Response:
            async with httpx.AsyncClient(base_url=tracker.http_url, trust_env=False, timeout=UNIT) as http:
                if auth is None:
                    return await http.get(path, headers={"Authorization": f"Bearer {PASSWORD}"})
                return await http.get(path, auth=auth)

        assert (await get("/rooms/secret/log", None)).status_code == 404  # the server password is not enough
        assert (await get("/rooms/secret/log", ("eve", PASSPHRASE))).status_code == 404  # not a member
        assert (await get("/rooms/secret/log", ("bob", "wrong passphrase"))).status_code == 404
        page = await get("/rooms/secret/log?after=0", ("bob", PASSPHRASE))
        assert page.status_code == 200 and "the plan" in [e["text"] for e in page.json()["events"]], page.text
        members = (await get("/rooms/secret/members", ("bob", PASSPHRASE))).json()
        assert [m["name"] for m in members["members"]] == ["bob"]
        talk = await get("/direct/alice/log", ("bob", PASSPHRASE))
        assert [(e["name"], e["text"]) for e in talk.json()["events"]] == [("alice", "hello bob")], talk.text
        assert (await get("/direct/alice/log", ("eve", PASSPHRASE))).status_code == 404
    finally:
        tracker.stop()


async def test_after_a_restart_a_registered_member_entering_her_room_again_is_caught_up(tmp_path: Path) -> None:
    """Her client resumes the default room, then enters ``#dev`` afresh: what was said there meanwhile is counted."""
    data = tmp_path / "data"
    tracker = launch_tracker(data, resume_grace=60)
    try:
        await register(tracker, "bob")
        bot, welcome = await joined(tracker, "bob", PASSPHRASE)
        bob = ResumingMember(bot, welcome)
        seen = (await enter(bob, "#dev"))["seq"]
        await bob.ws.send(json.dumps({"type": "read", "room": "#dev", "seq": seen}))
        tracker.stop(signal.SIGTERM)  # bob's connection closes with 1012: his client resumes
        tracker = launch_tracker(data, resume_grace=60)
        alice = await open_bot(tracker.url, PASSWORD, "alice")
        await enter(alice, "#dev")
        await say_in(alice, "#dev", "while you were gone")
        assert (await bob.resume(tracker.url))["type"] == "resumed"
        entered = await enter(bob, "#dev")
        # Her read position, or the one before it if the SIGTERM came first: alice's join and message are unread.
        assert entered["read"] <= seen and entered["unread"] >= 2, entered
        await bob.ws.send(json.dumps({"type": "history", "room": "#dev", "after": entered["read"], "limit": 500}))
        page = await bob.expect("history_page", 2 * UNIT)
        assert "while you were gone" in [e.get("text") for e in page["events"]], page
        carol = await open_bot(tracker.url, PASSWORD, "carol")
        assert "unread" not in await enter(carol, "#dev")  # a guest's entering is no catching up
    finally:
        tracker.stop()
