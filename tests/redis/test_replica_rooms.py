"""Rooms and direct messages across replicas, on a real redis-server: what members on different replicas see.

Each room is a Redis stream of its own (``{room:dev}:events``); a replica reads a room only
once one of its members is in it. A message in ``#dev`` reaches ``#dev``'s members on every
replica and nobody else; a direct message reaches its recipient on another replica; a dead
replica's members leave its rooms as they leave the default room.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

import redis
from support.archiver import StartArchiver
from support.bots import Bot, open_bot
from support.peers import plain_member
from support.redis_room import until
from support.redis_server import POLL_SECONDS, RedisServer
from support.replicas import replicas
from support.resume import join as join_resumable
from support.rooms import direct, enter, frames_until, lines_until, logged, rest, say_in
from support.signin import PASSPHRASE, joined, register, until_listed_offline
from support.timing import UNIT
from support.tracker import PASSWORD, StartTracker

pytestmark = pytest.mark.anyio


async def test_a_room_made_on_one_replica_is_entered_on_another_and_its_messages_reach_only_its_members(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2)
    alice, dave = [await open_bot(first.url, PASSWORD, name) for name in ("alice", "dave")]
    bob, carol = [await open_bot(second.url, PASSWORD, name) for name in ("bob", "carol")]
    entered = await enter(alice, "#Dev")
    assert entered["type"] == "entered" and entered["members"] == ["alice"], entered
    assert (await enter(bob, "dev"))["members"] == ["alice", "bob"], "the room made on the first replica"
    joined = [f for f in await frames_until_joined(alice, "bob") if f.get("room") == "#dev"]
    assert joined, "alice saw bob enter #dev"
    echo = await say_in(alice, "#dev", "ship it?", id="m1")
    assert echo["room"] == "#dev" and echo["seq"] > entered["seq"], echo
    heard = [f for f in await frames_until(bob, "ship it?") if f["type"] == "message"]
    assert heard[-1]["room"] == "#dev" and heard[-1]["name"] == "alice", heard
    await say_in(bob, "#dev", "shipped", id="m2")
    assert (await frames_until(alice, "shipped"))[-1]["room"] == "#dev"
    await say_in(alice, None, "lunch?")  # the default room: carol's and dave's next message
    for outsider in (carol, dave):
        seen = json.dumps(await frames_until(outsider, "lunch?"))
        assert "ship it?" not in seen and "shipped" not in seen, f"{outsider.name} is not in #dev"
    listed = (await rest(second, "/rooms")).json()
    dev = next(room for room in listed["rooms"] if room["name"] == "#dev")
    assert dev["members"] == 2 and dev["online"] == 2, listed
    members = (await rest(first, "/rooms/dev/members")).json()
    assert sorted(m["name"] for m in members["members"]) == ["alice", "bob"], members


async def frames_until_joined(bot: Bot, name: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while not seen or not (seen[-1]["type"] == "joined" and seen[-1]["name"] == name):
        seen.append(await bot.recv(2 * UNIT))
    return seen


async def test_a_replica_reads_only_the_rooms_its_members_are_in(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2)
    alice = await open_bot(first.url, PASSWORD, "alice")
    bob = await open_bot(second.url, PASSWORD, "bob")
    assert (await enter(alice, "#dev"))["type"] == "entered"
    assert (await enter(bob, "#ops"))["type"] == "entered"
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    registered = {room: client.hkeys(f"groupchat:{{room:{room}}}:replicas") for room in ("dev", "ops")}
    assert registered["dev"] != registered["ops"] and all(len(r) == 1 for r in registered.values()), registered
    assert client.exists("groupchat:{room:dev}:events") and client.exists("groupchat:{room:ops}:events")
    deadline = time.monotonic() + 2 * UNIT  # the rooms another replica reads are counted every 2 s
    while "#ops" not in [room["name"] for room in (await rest(first, "/rooms")).json()["rooms"]]:
        assert time.monotonic() < deadline, "a room only the other replica reads is listed"
        await asyncio.sleep(POLL_SECONDS)
    assert not client.hexists("groupchat:{room:ops}:replicas", registered["dev"][0]), "listing it opens nothing"
    client.close()


async def test_a_direct_message_reaches_its_recipient_on_another_replica_and_nobody_else(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2)
    alice = await open_bot(first.url, PASSWORD, "alice")
    bob, carol = [await open_bot(second.url, PASSWORD, name) for name in ("bob", "carol")]
    echo = await direct(alice, "bob", "just between us")
    assert echo["type"] == "message" and echo["to"] == "bob", echo
    heard = (await frames_until(bob, "just between us"))[-1]
    assert heard["name"] == "alice" and heard["to"] == "bob", heard
    reply = await direct(bob, "alice", "got it")
    assert reply["type"] == "message", reply
    assert (await frames_until(alice, "got it"))[-1]["name"] == "bob"
    await say_in(alice, None, "hello all")
    assert "just between us" not in json.dumps(await frames_until(carol, "hello all"))
    nobody = await direct(alice, "zed", "anyone?")
    assert nobody["type"] == "error" and nobody["code"] == "no_such_member", nobody


async def test_a_dead_replicas_members_leave_its_rooms_everywhere(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2, "--resume-grace", "2")
    alice = await open_bot(first.url, PASSWORD, "alice")
    bob = await open_bot(second.url, PASSWORD, "bob")
    await enter(alice, "#dev")
    assert (await enter(bob, "#dev"))["members"] == ["alice", "bob"]
    second.kill()
    while True:
        frame = await alice.recv(6 * UNIT)
        if frame["type"] == "left" and frame["name"] == "bob" and frame.get("room") == "#dev":
            break
    assert frame["reason"] == "lost", frame
    members = (await rest(first, "/rooms/dev/members")).json()
    assert [m["name"] for m in members["members"]] == ["alice"], members


async def test_a_member_whose_replica_died_resumes_on_another_and_enters_her_rooms_again(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2, "--resume-grace", "30")
    alice = await join_resumable(first.url, "alice")
    bob = await open_bot(second.url, PASSWORD, "bob")
    await enter(alice, "#dev")
    assert (await enter(bob, "#dev"))["members"] == ["alice", "bob"]
    first.kill()
    assert (await alice.resume(second.url))["type"] == "resumed"
    again = await enter(alice, "#dev")  # what the terminal client and the page do after a resume
    assert again["type"] == "entered" and sorted(again["members"]) == ["alice", "bob"], again
    await say_in(alice, "#dev", "back in dev")
    heard = [f for f in await frames_until(bob, "back in dev") if f.get("room") == "#dev" and f["name"] == "alice"]
    assert [(f["type"], f.get("reason")) for f in heard] == [("left", "lost"), ("joined", None), ("message", None)]
    members = (await rest(second, "/rooms/dev/members")).json()
    assert sorted(m["name"] for m in members["members"]) == ["alice", "bob"], members


async def test_an_invitation_made_on_one_replica_lets_the_guest_in_on_another_and_the_owner_removes_her(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2)
    alice = await open_bot(first.url, PASSWORD, "alice")
    bob, carol = [await open_bot(second.url, PASSWORD, name) for name in ("bob", "carol")]
    assert (await enter(alice, "#team", private=True))["private"] is True
    assert (await enter(bob, "#team"))["code"] == "no_such_room", "a private room lets in only those invited"
    await alice.ws.send(json.dumps({"type": "invite", "room": "#team", "name": "bob"}))
    assert (await alice.expect("invited"))["name"] == "bob"
    told = await bob.expect("invited")
    assert told == {"type": "invited", "room": "#team", "name": "bob", "by": "alice"}, told
    assert (await enter(bob, "#team"))["members"] == ["alice", "bob"]
    assert (await enter(carol, "#team"))["code"] == "no_such_room", "carol was not invited"
    await alice.ws.send(json.dumps({"type": "remove", "room": "#team", "name": "bob"}))
    parted = await bob.expect("parted")
    assert parted == {"type": "parted", "room": "#team", "reason": "removed"}, parted
    assert (await say_in(bob, "#team", "still here?"))["code"] == "not_in_room"
    assert (await enter(bob, "#team"))["code"] == "no_such_room", "no longer invited"
    await say_in(bob, None, "outside")  # bob's connection stays open: the default room hears him
    assert (await frames_until(alice, "outside"))[-1]["name"] == "bob"


async def test_the_archiver_writes_each_rooms_log_and_each_conversations_from_every_replica(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    first, second = replicas(start_tracker, redis_server, 2)
    start_archiver(redis_server.url, data_dir=tmp_path / "archive")
    alice = await open_bot(first.url, PASSWORD, "alice")
    bob = await open_bot(second.url, PASSWORD, "bob")
    await enter(alice, "#dev")
    await enter(bob, "#dev")
    said = [await say_in(alice, "#dev", "from the first"), await say_in(bob, "#dev", "from the second")]
    await direct(alice, "bob", "between us")
    await say_in(alice, None, "in general")
    dev_log = tmp_path / "archive" / "rooms" / "dev" / "chat.log"
    await until(lambda: dev_log.exists() and "from the second" in dev_log.read_text(), "#dev's log", 4 * UNIT)
    dev = logged(dev_log)
    assert [seq for seq, *_ in dev] == list(range(dev[0][0], dev[0][0] + len(dev))), "no gap, no repeat"
    messages = [(seq, name, text) for seq, kind, name, text in dev if kind == "msg"]
    assert messages == [(f["seq"], f["name"], f["text"]) for f in said], "#dev's own seqs, as its members saw them"
    conversations = tmp_path / "archive" / "direct"
    await until(lambda: any(conversations.glob("*/chat.log")), "the conversation's log", 4 * UNIT)
    (talk,) = list(conversations.glob("*/chat.log"))
    await until(lambda: "between us" in talk.read_text(), "the direct message archived", 4 * UNIT)
    general = (tmp_path / "archive" / "chat.log").read_text()
    assert "in general" in general and "from the first" not in general and "between us" not in general
    assert "between us" not in dev_log.read_text()


async def test_after_redis_restarted_empty_a_room_goes_on_above_what_its_log_holds(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    start_archiver(redis_server.url, data_dir=tmp_path / "archive")
    (tracker,) = replicas(start_tracker, redis_server, 1, "--resume-grace", "30")
    alice = await join_resumable(tracker.url, "alice")
    await enter(alice, "#dev", private=True)
    before = [await say_in(alice, "#dev", f"before {n}") for n in range(3)]
    dev_log = tmp_path / "archive" / "rooms" / "dev" / "chat.log"
    await until(lambda: dev_log.exists() and "before 2" in dev_log.read_text(), "#dev archived", 4 * UNIT)
    redis_server.wipe()
    redis_server.start()
    assert await alice.close_code(4 * UNIT) == 1012
    assert (await alice.resume(tracker.url))["type"] == "resumed"
    again = await enter(alice, "#dev")  # the owner of a private room: the room came back from the archive
    assert again["type"] == "entered" and again["private"] is True, again
    after = await say_in(alice, "#dev", "after the wipe")
    assert after["seq"] > before[-1]["seq"], "the room's seqs go on above its log's"
    await until(lambda: "after the wipe" in dev_log.read_text(), "the new epoch archived", 4 * UNIT)
    seqs = [seq for seq, *_ in logged(dev_log)]
    assert seqs == sorted(set(seqs)), "no seq twice in the room's log"


async def test_a_registered_member_comes_back_to_her_room_and_her_direct_messages_on_another_replica(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2)
    await register(first, "bob")
    bob, _ = await joined(first, "bob", PASSPHRASE)
    await enter(bob, "#dev")
    await bob.ws.close()
    await until_listed_offline(first, "bob")
    alice = await open_bot(first.url, PASSWORD, "alice")
    await enter(alice, "#dev")
    said = [await say_in(alice, "#dev", f"while away {n}") for n in range(3)]
    assert (await direct(alice, "bob", "call me"))["type"] == "message"
    bob, welcome = await joined(second, "bob", PASSPHRASE)
    assert welcome["type"] == "welcome", welcome
    (dev,) = welcome["rooms"]
    assert dev["room"] == "#dev" and dev["unread"] == len(said) + 1, welcome  # alice's join and her messages
    frames = [await bob.recv(2 * UNIT) for _ in range(2)]
    missed = next(f for f in frames if f["type"] == "message")
    assert (missed["name"], missed["to"], missed["text"]) == ("alice", "bob", "call me"), frames
    entered = next(f for f in frames if f["type"] == "entered")
    assert entered["room"] == "#dev" and entered["members"] == ["alice", "bob"], entered
    await bob.ws.send(json.dumps({"type": "history", "room": "#dev", "after": entered["read"], "limit": 500}))
    page = await bob.expect("history_page", 2 * UNIT)
    assert [e["text"] for e in page["events"] if e["type"] == "message"] == [f["text"] for f in said], page


async def test_a_plain_text_member_joins_a_room_and_sends_a_direct_message_across_replicas(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2)
    alice = await open_bot(first.url, PASSWORD, "alice")
    await enter(alice, "#dev")
    async with plain_member(second.url, PASSWORD, "bob") as bob:
        await bob.send("/join #dev")
        assert (await bob.line(2 * UNIT)).startswith("* You are in #dev now (2 members: alice, bob)")
        await say_in(alice, "#dev", "hello dev")
        assert (await lines_until(bob, "hello dev"))[-1] == "alice: hello dev"
        await bob.send("/msg alice psst")
        heard = (await frames_until(alice, "psst"))[-1]
        assert (heard["name"], heard["to"]) == ("bob", "alice"), heard
        await direct(alice, "bob", "psst back")
        assert (await lines_until(bob, "psst back"))[-1] == "[alice] psst back"
