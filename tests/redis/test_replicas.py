"""Several replicas, one room, on a real redis-server: what a member and an operator see.

Every replica is a real ``chat-tracker --redis-url`` process and every member a real
WebSocket client; Redis is a real ``redis-server`` with AOF and ``appendfsync always``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.archiver import StartArchiver
from support.checked_member import CheckedMember, judge, read_chat_log_counting_torn
from support.checker import Counts
from support.redis_server import RedisServer
from support.replicas import ADMIN_PASSWORD, Member, admin, join, open_ws, replicas, welcomed
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, StartTracker, launch_tracker, tracker_command

pytestmark = pytest.mark.anyio

SEED = int(os.environ.get("RELIABILITY_SEED", "24"))  # nothing here is random: the seed only names the run


def get_json(tracker: RunningTracker, path: str) -> Any:
    response = httpx.get(tracker.http_url + path, auth=("", PASSWORD), timeout=UNIT)
    response.raise_for_status()
    return response.json()


async def aget_json(tracker: RunningTracker, path: str) -> Any:
    async with httpx.AsyncClient(timeout=UNIT) as client:
        response = await client.get(tracker.http_url + path, auth=("", PASSWORD))
    response.raise_for_status()
    return response.json()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 3 * UNIT) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 3 * UNIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def until(condition: Callable[[], bool], what: str, timeout: float = 3 * UNIT) -> None:
    async def check() -> bool:
        return condition()

    await eventually(check, what, timeout)


async def said(member: CheckedMember, text: str) -> int:
    """``member`` says ``text`` and waits for its echo; the echo's seq."""
    msg_id = await member.say(text)
    await until(lambda: msg_id in member.acked, f"the echo of {text!r}")
    return member.acked[msg_id]


async def archived(archiver: RunningTracker, seq: int) -> bool:
    return bool((await aget_json(archiver, "/healthz"))["archived_seq"] >= seq)


async def checked(
    fault: str,
    injected: int,
    archiver: RunningTracker,
    owed: list[CheckedMember],
    *,
    fence: int,
    cut_off: tuple[CheckedMember, ...] = (),
) -> Counts:
    """The independent checker over the members, once chat.log has ``fence``: ``owed`` waited for it, ``cut_off``
    are owed only what they received. Records the counts (a ``faults`` row); closes the members."""
    for member in owed:
        member.owe_until(fence)
    await eventually(lambda: archived(archiver, fence), "the archiver to reach the last fence")
    entries, torn = read_chat_log_counting_torn(archiver.data_dir)
    counts = judge(fault, injected, entries, torn, [*owed, *cut_off], seed=SEED)
    for member in (*owed, *cut_off):
        await member.close()
    return counts


def test_a_redis_that_may_lose_acknowledged_events_is_refused_unless_volatile(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    executable = shutil.which("redis-server")
    assert executable is not None
    server = RedisServer(executable, tmp_path / "volatile", appendfsync="everysec")
    server.first_start()
    try:
        done = subprocess.run(
            [*_tracker_command(tmp_path), "--redis-url", server.url],
            env=_env(),
            check=False,
            capture_output=True,
            text=True,
            timeout=4 * UNIT,
        )
        assert done.returncode == 2, done
        assert "appendfsync always" in done.stderr and "--redis-volatile" in done.stderr
        tracker = launch_tracker(tmp_path / "data", "--redis-url", server.url, "--redis-volatile")
        try:
            assert tracker.wait_for_output("may lose the last second")
            assert get_json(tracker, "/healthz")["redis"] is True
        finally:
            tracker.stop()
    finally:
        server.kill()


def _tracker_command(tmp_path: Path) -> list[str]:
    return [*tracker_command(tmp_path / "data"), "--port", "0"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    env["TRACKER_PASSWORD"] = PASSWORD
    return env


async def test_members_on_three_replicas_chat_in_one_order_and_chat_log_has_it(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver
) -> None:
    trio = replicas(start_tracker, redis_server, 3)
    archiver = start_archiver(redis_server.url)
    members = [await join(trio[i % 3].url, f"m{i}") for i in range(6)]
    for member in members:
        await member.wait_for(lambda f: f["type"] in ("joined", "welcome") and f["name"] == "m5", "m5 in")
    for round_ in range(3):
        await asyncio.gather(
            *(m.send(type="message", text=f"{m.name} says {round_}", id=f"{m.name}-{round_}") for m in members)
        )
    for member in members:

        def has_all(_: dict[str, Any], member: Member = member) -> bool:
            return len(member.messages()) >= 18

        await member.wait_for(has_all, "18 messages")
    views = {tuple(m.messages()) for m in members}
    assert len(views) == 1, "every member saw the same messages with the same seqs in the same order"
    seen = next(iter(views))
    assert len(seen) == 18 and [s for s, _, _ in seen] == sorted(s for s, _, _ in seen)
    # The welcome lists the whole room, wherever each member is served.
    assert set(welcomed(members[5])["members"]) == {m.name for m in members}  # type: ignore[index]
    for tracker in trio:
        listed = await aget_json(tracker, "/members")
        assert sorted(entry["name"] for entry in listed["members"]) == sorted(m.name for m in members)
    last = seen[-1][0]

    async def archived() -> bool:
        return bool((await aget_json(archiver, "/healthz"))["archived_seq"] >= last)

    await eventually(archived, "the archiver to reach the last seq")
    logged = [line.split(" ", 4) for line in archiver.log_lines()]
    assert [int(parts[0]) for parts in logged] == list(range(1, len(logged) + 1)), "chat.log: every seq once, no gap"
    messages = [(int(p[0]), p[3], p[4]) for p in logged if p[2] == "msg"]
    assert tuple(messages) == seen
    for member in members:
        await member.close()


async def test_of_100_concurrent_claims_of_one_name_on_three_replicas_exactly_one_wins(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    trio = replicas(start_tracker, redis_server, 3)
    spellings = ["alice", "Alice", "ALICE", "aLiCe"]  # lookalikes: one name key
    sockets = await asyncio.gather(*(open_ws(trio[i % 3].url) for i in range(100)))
    claimants = [Member(ws, spellings[i % len(spellings)]) for i, ws in enumerate(sockets)]
    await asyncio.gather(*(c.wait_for(lambda f: f["type"] == "hello", "hello") for c in claimants))
    await asyncio.gather(*(c.send(type="join", name=c.name) for c in claimants))

    async def outcome(claimant: Member) -> str:
        frame = await claimant.wait_for(lambda f: f["type"] in ("welcome", "error"), "an answer", 4 * UNIT)
        return "won" if frame["type"] == "welcome" else frame["code"]

    outcomes = await asyncio.gather(*(outcome(c) for c in claimants))
    assert outcomes.count("won") == 1, outcomes
    assert set(outcomes) == {"won", "name_taken"}
    for tracker in trio:

        async def one_listed(tracker: RunningTracker = tracker) -> bool:
            return bool((await aget_json(tracker, "/members"))["count"] == 1)

        await eventually(one_listed, "one member listed everywhere")
    for claimant in claimants:
        await claimant.close()


async def test_a_member_whose_replica_died_resumes_on_another_with_no_gap_or_duplicate(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver
) -> None:
    archiver = start_archiver(redis_server.url)
    first, second = replicas(start_tracker, redis_server, 2, "--resume-grace", "30")
    ann, bob = CheckedMember("ann"), CheckedMember("bob")
    assert (await ann.join(first.url))["type"] == "welcome"
    assert (await bob.join(second.url))["type"] == "welcome"
    before = await said(bob, "before")
    await until(lambda: ann.last_seq >= before, "bob's first message")
    kills = 0
    first.kill()
    kills += 1
    await until(lambda: not ann.connected, "ann's connection closed")
    # While ann is away, bob goes on talking; her replica is dead, so on bob's she is away.
    await said(bob, "while away")
    seen_before = len(ann.events)
    resumed = await ann.resume(second.url)
    assert resumed["type"] == "resumed", resumed
    assert resumed["recovered"] is True and resumed["replayed"] == 1
    back = await said(ann, "i am back")
    await until(lambda: bob.last_seq >= back, "ann's message")
    texts = [e["text"] for e in ann.events[seen_before:] if e["type"] == "message"]
    assert texts == ["while away", "i am back"], "no gap, no duplicate"
    assert sorted(m["name"] for m in (await aget_json(second, "/members"))["members"]) == ["ann", "bob"]
    await checked("replica_died_resume_elsewhere", kills, archiver, [ann, bob], fence=back)


async def test_a_dead_replicas_members_are_away_then_leave_everywhere(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver
) -> None:
    archiver = start_archiver(redis_server.url)
    first, second = replicas(start_tracker, redis_server, 2, "--resume-grace", "2")
    ann, bob = CheckedMember("ann"), CheckedMember("bob")
    assert (await ann.join(first.url))["type"] == "welcome"
    welcome = await bob.join(second.url)
    assert welcome["members"] == ["ann", "bob"], welcome
    kills = 0
    first.kill()
    kills += 1
    await until(lambda: not ann.connected, "ann's connection closed")

    async def ann_listed_away() -> bool:
        return any(m["name"] == "ann" and m["away"] for m in (await aget_json(second, "/members"))["members"])

    await eventually(ann_listed_away, "ann listed as away on the live replica")
    await until(lambda: any(e["type"] == "left" and e["name"] == "ann" for e in bob.events), "ann's leave", 4 * UNIT)
    left = next(e for e in bob.events if e["type"] == "left" and e["name"] == "ann")
    assert left["reason"] == "lost"
    assert [m["name"] for m in (await aget_json(second, "/members"))["members"]] == ["bob"]
    # ann, cut off, is owed what she received; bob every event up to ann's leave.
    await checked("replica_died_members_leave", kills, archiver, [bob], fence=left["seq"], cut_off=(ann,))


async def test_a_kick_on_one_replica_removes_the_member_from_another(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    env = {"TRACKER_ADMIN_PASSWORD": ADMIN_PASSWORD}
    first = start_tracker("--redis-url", redis_server.url, env=env)
    second = start_tracker("--redis-url", redis_server.url, env=env)
    eve = await join(second.url, "eve")
    ann = await join(first.url, "ann")
    await eve.wait_for(lambda f: f["type"] == "joined" and f["name"] == "ann", "ann's join")
    response = await admin(first, "/admin/kick", {"name": "eve", "reason": "spam"})
    assert response.status_code == 200, response.text
    assert await eve.closed_with() == 4011
    left = await ann.wait_for(lambda f: f["type"] == "left" and f["name"] == "eve", "eve's leave")
    kicked = next(f for f in ann.frames if f["type"] == "moderation")
    assert kicked["action"] == "kick" and kicked["seq"] < left["seq"]
    # A ban made on the second replica refuses the name on the first.
    response = await admin(second, "/admin/ban", {"name": "mallory"})
    assert response.status_code in (200, 201), response.text
    await ann.wait_for(lambda f: f["type"] == "moderation" and f["action"] == "ban", "the ban")
    mallory = await join(first.url, "mallory")
    refused = mallory.frames[-1]
    assert refused["type"] == "error" and refused["code"] == "banned"
    for member in (ann, mallory):
        await member.close()


async def test_max_connections_is_per_replica(redis_server: RedisServer, start_tracker: StartTracker) -> None:
    first, second = replicas(start_tracker, redis_server, 2, "--max-connections", "1")
    ann = await join(first.url, "ann")
    refused = Member(await open_ws(first.url), "x")
    assert await refused.closed_with() == 4005
    bob = await join(second.url, "bob")
    assert welcomed(bob) is not None
    for member in (ann, bob):
        await member.close()


def test_replica_healthz_reports_redis_and_the_archiver(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver
) -> None:
    (tracker,) = replicas(start_tracker, redis_server, 1)
    wait_until(lambda: get_json(tracker, "/healthz").get("archiver") == "missing", "the archiver reported missing")
    health = get_json(tracker, "/healthz")
    assert health["status"] == "degraded" and health["redis"] is True
    start_archiver(redis_server.url)
    wait_until(lambda: get_json(tracker, "/healthz").get("archiver") == "ok", "the archiver reported ok")
    assert get_json(tracker, "/healthz")["status"] == "ok"


async def test_redis_restarted_empty_is_a_new_epoch_and_members_come_back_told_recovered_false(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver
) -> None:
    archiver = start_archiver(redis_server.url)
    (tracker,) = replicas(start_tracker, redis_server, 1, "--resume-grace", "30")
    ann = CheckedMember("ann")
    welcome = await ann.join(tracker.url)
    assert welcome["type"] == "welcome", welcome
    before = await said(ann, "before the loss")
    # What the archiver had not written when Redis lost everything is lost with it (chat.log is the durable
    # copy, and the archiver logs the seqs it will never have): the test waits for the archive, so that the
    # checker judges how members are told of the new epoch, not that loss.
    await eventually(lambda: archived(archiver, before), "the archiver to reach 'before the loss'")
    wipes = 0
    redis_server.wipe()
    wipes += 1
    redis_server.start()
    await until(lambda: not ann.connected, "ann closed", 4 * UNIT)
    assert ann.close_codes == [1012], ann.close_codes
    assert tracker.wait_for_output("Redis lost the room", timeout=2 * UNIT)
    resumed = await ann.resume(tracker.url)
    assert resumed["type"] == "resumed", resumed
    assert resumed["recovered"] is False and resumed["epoch"] != welcome["epoch"]
    assert resumed["seq"] > before, "the new epoch never reuses a seq"
    assert len(ann.stints) == 2, "a token of the lost epoch is answered with a fresh join: a new stint"
    after = await said(ann, "after the loss")
    assert after > resumed["seq"]
    await checked("redis_wiped_one_replica", wipes, archiver, [ann], fence=after)


async def test_moving_from_the_single_tracker_to_replicas_continues_its_chat_log(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    data = tmp_path / "chat-data"
    single = start_tracker(data_dir=data)
    ann = await join(single.url, "ann")
    await ann.send(type="message", text="on the single tracker", id="s1")
    await ann.wait_for(lambda f: f.get("id") == "s1", "the echo")
    await ann.close()
    single.stop()
    before = len(single.log_lines())
    archiver = start_archiver(redis_server.url, data_dir=data)

    async def recorded() -> bool:
        return bool((await aget_json(archiver, "/healthz"))["archived_seq"] == before)

    await eventually(recorded, "the archiver to record chat.log's end")
    (replica,) = replicas(start_tracker, redis_server, 1)
    bob = await join(replica.url, "bob")
    welcome = welcomed(bob)
    assert welcome is not None and welcome["seq"] > before, "the room's seqs go on after chat.log's"
    await bob.send(type="message", text="on a replica", id="r1")
    echo = await bob.wait_for(lambda f: f.get("id") == "r1", "the echo")

    async def archived() -> bool:
        return bool((await aget_json(archiver, "/healthz"))["archived_seq"] >= echo["seq"])

    await eventually(archived, "the archiver to reach the replica's message")
    seqs = [int(line.split(" ", 1)[0]) for line in archiver.log_lines()]
    assert seqs == list(range(1, len(seqs) + 1)), "one chat.log, every seq once, no gap"
    assert any(line.endswith("on a replica") for line in archiver.log_lines())
    await bob.close()
