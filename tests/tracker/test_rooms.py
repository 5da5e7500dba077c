"""Rooms on a real tracker: each room its own members, order and log; the default room as it always was.

A message said in ``#dev`` reaches ``#dev``'s members and nobody else, is in
``rooms/dev/chat.log`` and in no other log; a plain-text member writes in the room of its
last ``/join`` and reads the others' lines prefixed with ``[#name] ``; a program that
knows nothing of rooms sees no ``room`` field; a room's order survives a restart; the
REST endpoints list rooms and answer for each.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from support.bots import open_bot
from support.peers import plain_member
from support.rooms import enter, frames_until, lines_until, logged, rest, say_in
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, launch_tracker

pytestmark = pytest.mark.anyio


async def test_a_message_in_a_room_reaches_its_members_and_nobody_else(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        alice, bob, carol = [await open_bot(tracker.url, PASSWORD, n) for n in ("alice", "bob", "carol")]
        entered = await enter(alice, "#Dev")
        assert entered["type"] == "entered" and entered["room"] == "#dev" and entered["members"] == ["alice"]
        assert (await enter(bob, "dev"))["members"] == ["alice", "bob"]
        echo = await say_in(alice, "#dev", "ship it?", id="m1")
        assert echo["room"] == "#dev" and echo["id"] == "m1" and echo["seq"] > entered["seq"], echo
        heard = [f for f in await frames_until(bob, "ship it?") if f["type"] == "message"]
        assert heard[-1]["room"] == "#dev" and heard[-1]["name"] == "alice", heard
        await say_in(alice, None, "lunch?")  # the default room: carol's next message
        carol_saw = await frames_until(carol, "lunch?")
        assert all(f.get("room") is None for f in carol_saw), carol_saw
        assert "ship it?" not in json.dumps(carol_saw)
        dev = logged(tmp_path / "data" / "rooms" / "dev" / "chat.log")
        assert ("msg", "alice", "ship it?") in [(k, n, t) for _, k, n, t in dev]
        general = (tmp_path / "data" / "chat.log").read_text()
        assert "ship it?" not in general and "lunch?" in general
    finally:
        tracker.stop()


async def test_plain_text_writes_in_the_room_of_its_last_join_and_reads_the_others_prefixed(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        bob = await open_bot(tracker.url, PASSWORD, "bob")
        async with plain_member(tracker.url, PASSWORD, "alice") as alice:
            await alice.send("/join #dev")
            assert (await alice.line(2 * UNIT)).startswith("* You are in #dev now (1 member: alice)")
            await enter(bob, "#dev")
            await alice.send("hello dev")
            heard = await frames_until(bob, "hello dev")
            assert heard[-1]["room"] == "#dev"
            await say_in(bob, None, "hello general")
            assert (await lines_until(alice, "hello general"))[-1] == "[#general] bob: hello general"
            await say_in(bob, "#dev", "in dev")
            assert (await lines_until(alice, "in dev"))[-1] == "bob: in dev"
            await alice.send("/shrug")
            assert (await alice.line(2 * UNIT)).startswith("! unknown command /shrug")
            await alice.send("//shrug")
            assert (await frames_until(bob, "/shrug"))[-1]["room"] == "#dev"
            await alice.send("/part")
            assert await alice.line(2 * UNIT) == "* You left #dev; your lines go to #general."
            await alice.send("back home")
            assert (await frames_until(bob, "back home"))[-1].get("room") is None
    finally:
        tracker.stop()


async def test_a_client_of_one_room_sees_no_room_field_and_no_other_rooms_events(tmp_path: Path) -> None:
    """A ``groupchat.v1`` program written before rooms: its frames are today's, however busy the other rooms are."""
    tracker = launch_tracker(tmp_path / "data")
    try:
        old, busy = await open_bot(tracker.url, PASSWORD, "old"), await open_bot(tracker.url, PASSWORD, "busy")
        await enter(busy, "#elsewhere")
        for n in range(5):
            await say_in(busy, "#elsewhere", f"elsewhere {n}")
        await say_in(busy, None, "for everyone")
        seen = await frames_until(old, "for everyone")
        assert [f["type"] for f in seen] == ["joined", "message"], seen
        assert all("room" not in f for f in seen), seen
    finally:
        tracker.stop()


async def test_a_rooms_order_goes_on_across_a_restart_and_the_rest_api_answers_for_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tracker = launch_tracker(data)
    try:
        alice = await open_bot(tracker.url, PASSWORD, "alice")
        await enter(alice, "#dev")
        first = [(await say_in(alice, "#dev", f"before {n}"))["seq"] for n in range(3)]
        await alice.ws.close()
        tracker.stop()
        tracker = launch_tracker(data)
        listed = (await rest(tracker, "/rooms")).json()
        assert [r["name"] for r in listed["rooms"]] == ["#general", "#dev"] and listed["count"] == 2, listed
        bob = await open_bot(tracker.url, PASSWORD, "bob")
        entered = await enter(bob, "#dev")
        assert entered["seq"] > first[-1], (entered, first)
        later = (await say_in(bob, "#dev", "after"))["seq"]
        assert later == entered["seq"] + 1
        seqs = [seq for seq, *_ in logged(data / "rooms" / "dev" / "chat.log")]
        assert seqs == list(range(1, len(seqs) + 1)), seqs  # consecutive, across the restart, nothing twice
        page = (await rest(tracker, "/rooms/%23dev/log?after=0&limit=1000")).json()
        assert [e["seq"] for e in page["events"]] == seqs and page["next_after"] == seqs[-1]
        who = (await rest(tracker, "/rooms/dev/members")).json()
        assert [m["name"] for m in who["members"]] == ["bob"], who
        assert (await rest(tracker, "/rooms/nowhere/members")).status_code == 404
        assert (await rest(tracker, "/rooms/dev/log?lines=1")).json()["events"][-1]["text"] == "after"
        metrics = (await rest(tracker, "/metrics")).text
        assert "chat_rooms 1.0" in metrics and "chat_room_messages_total 1.0" in metrics, metrics
    finally:
        tracker.stop()


async def test_a_private_room_lets_in_only_those_its_members_invite(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        alice, bob = await open_bot(tracker.url, PASSWORD, "alice"), await open_bot(tracker.url, PASSWORD, "bob")
        assert (await enter(alice, "#secret", private=True))["private"] is True
        refused = await enter(bob, "#secret")
        assert refused["type"] == "error" and refused["code"] == "no_such_room", refused
        listed = (await rest(tracker, "/rooms")).json()
        assert "#secret" not in [r["name"] for r in listed["rooms"]]
        assert (await rest(tracker, "/rooms/secret/log")).status_code == 404
        await alice.ws.send(json.dumps({"type": "invite", "room": "#secret", "name": "bob"}))
        assert (await alice.expect("invited"))["name"] == "bob"
        told = await bob.expect("invited")
        assert told == {"type": "invited", "room": "#secret", "name": "bob", "by": "alice"}, told
        assert (await enter(bob, "#secret"))["type"] == "entered"
        await bob.ws.send(json.dumps({"type": "rooms"}))
        mine = (await bob.expect("room_list"))["rooms"]
        assert {"room": "#secret", "members": 2, "online": 2, "private": True, "joined": True} in mine, mine
    finally:
        tracker.stop()


async def test_the_limits_on_rooms_are_refusals_with_their_codes(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data", "--max-rooms-per-member", "1", "--room-creations-per-hour", "2")
    try:
        alice = await open_bot(tracker.url, PASSWORD, "alice")
        assert (await enter(alice, "#one"))["type"] == "entered"
        assert (await enter(alice, "#two"))["code"] == "too_many_rooms"
        await alice.ws.send(json.dumps({"type": "part", "room": "#one"}))
        assert (await alice.expect("parted"))["room"] == "#one"
        assert (await enter(alice, "#two"))["type"] == "entered"  # refused above, so not made: made now
        await alice.ws.send(json.dumps({"type": "part", "room": "#two"}))
        await alice.expect("parted")
        assert (await enter(alice, "#three"))["code"] == "too_many_room_creations"  # #one and #two were made
        said = await say_in(alice, "#one", "not in it")
        assert said["type"] == "error" and said["code"] == "not_in_room", said
    finally:
        tracker.stop()


async def test_only_operators_make_rooms_under_room_creation_admin(tmp_path: Path) -> None:
    tracker: RunningTracker = launch_tracker(tmp_path / "data", "--room-creation", "admin")
    try:
        alice = await open_bot(tracker.url, PASSWORD, "alice")
        assert (await enter(alice, "#new"))["code"] == "room_creation_closed"
        home = await enter(alice, "#general")  # the default room: nothing to make, she is in it
        assert home["type"] == "entered" and home["room"] == "#general" and home["members"] == ["alice"], home
    finally:
        tracker.stop()


async def test_a_rooms_owner_removes_a_member_and_nobody_else_can(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        alice, bob, carol = [await open_bot(tracker.url, PASSWORD, n) for n in ("alice", "bob", "carol")]
        await enter(alice, "#team", private=True)
        for guest in ("bob", "carol"):
            await alice.ws.send(json.dumps({"type": "invite", "room": "#team", "name": guest}))
            await alice.expect("invited")
        await enter(bob, "#team")
        await enter(carol, "#team")
        await bob.ws.send(json.dumps({"type": "remove", "room": "#team", "name": "carol"}))
        assert (await bob.expect("error"))["code"] == "not_allowed"
        await alice.ws.send(json.dumps({"type": "remove", "room": "#team", "name": "carol"}))
        parted = await carol.expect("parted")
        assert parted == {"type": "parted", "room": "#team", "reason": "removed"}, parted
        left = await bob.expect("left")
        assert left["name"] == "carol" and left["reason"] == "removed" and left["room"] == "#team", left
        assert (await say_in(carol, "#team", "still here?"))["code"] == "not_in_room"
        assert (await enter(carol, "#team"))["code"] == "no_such_room"  # no longer invited
        dev = logged(tmp_path / "data" / "rooms" / "team" / "chat.log")
        assert ("leave", "carol", "removed") in [(k, n, t) for _, k, n, t in dev]
    finally:
        tracker.stop()


async def test_an_operators_mute_holds_in_every_room_and_in_direct_messages(tmp_path: Path) -> None:
    admin = "an admin password 42"
    tracker = launch_tracker(tmp_path / "data", env={"TRACKER_ADMIN_PASSWORD": admin})
    try:
        alice, bob = await open_bot(tracker.url, PASSWORD, "alice"), await open_bot(tracker.url, PASSWORD, "bob")
        await enter(alice, "#dev")
        async with httpx.AsyncClient(base_url=tracker.http_url, trust_env=False, timeout=UNIT) as http:
            answer = await http.post(
                "/admin/mute", json={"name": "alice", "seconds": 600}, headers={"Authorization": f"Bearer {admin}"}
            )
        assert answer.status_code == 200, answer.text
        await alice.expect("moderation", 2 * UNIT)
        assert (await say_in(alice, "#dev", "in dev"))["code"] == "muted"
        await alice.ws.send(json.dumps({"type": "message", "to": "bob", "text": "psst"}))
        assert (await alice.expect("error"))["code"] == "muted"
        carol = await open_bot(tracker.url, PASSWORD, "carol")
        await say_in(carol, None, "marker")
        assert "psst" not in json.dumps(await frames_until(bob, "marker"))
    finally:
        tracker.stop()


async def test_a_room_rotates_its_own_log_and_its_order_goes_on_through_the_segments(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tracker = launch_tracker(data, "--rotate-bytes", "2K", "--rate", "1000", "--burst", "1000")
    try:
        alice = await open_bot(tracker.url, PASSWORD, "alice")
        await enter(alice, "#dev")
        for n in range(60):
            assert (await say_in(alice, "#dev", f"line {n} " + "x" * 40))["type"] == "message"
        segments = sorted(p.name for p in (data / "rooms" / "dev").iterdir() if p.name.startswith("chat.log."))
        assert len(segments) >= 2, segments
        assert not any(p.name.startswith("chat.log.") for p in data.iterdir())  # the default room wrote little
        seqs: list[int] = []
        after = 0
        while True:
            page = (await rest(tracker, f"/rooms/dev/log?after={after}&limit=7")).json()
            if not page["events"]:
                break
            assert page["gone"] is None, page
            seqs += [e["seq"] for e in page["events"]]
            after = page["next_after"]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 62, seqs  # start, join, 60 messages
    finally:
        tracker.stop()
