"""Mutes and bans survive Redis restarted empty: the archiver gives the new room the ones in force.

A ban made on one replica, Redis wiped (every file deleted, then started again): the banned
name is refused on every replica, the ones that ran through the wipe and one started after
it; a mute holds; a ban lifted before the wipe stays lifted; an expiry and a banned address
are kept. With the archiver down during the wipe, a replica started meanwhile lets the banned
name in only until the archiver is back, which then removes it. A witness member chats on a replica
that runs through the wipe: closed with 1012, it resumes into the new epoch (a fresh join told
``recovered: false``), and the independent checker holds what it received against chat.log.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest

from chat_protocol import CloseCode
from support.archiver import StartArchiver, wait_until
from support.checked_member import CheckedMember, judge, read_chat_log_counting_torn
from support.redis_room import archived_seq, room_seq
from support.redis_server import POLL_SECONDS, RedisServer
from support.replicas import ADMIN_PASSWORD, join
from support.timing import UNIT
from support.tracker import RunningTracker, StartTracker

pytestmark = pytest.mark.anyio

ENV = {"TRACKER_ADMIN_PASSWORD": ADMIN_PASSWORD}
ADDRESS = "198.51.100.9"
SEED = int(os.environ.get("RELIABILITY_SEED", "24"))  # nothing here is random: the seed only names the run


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def replica(start_tracker: StartTracker, redis_server: RedisServer) -> RunningTracker:
    return start_tracker("--redis-url", redis_server.url, env=ENV)


async def refused_as(url: str, name: str) -> str:
    """The error code a join with ``name`` is answered with ('' if it is welcomed)."""
    member = await join(url, name)
    last = member.frames[-1]
    await member.close()
    return str(last["code"]) if last["type"] == "error" else ""


async def message_refused(url: str, name: str) -> str:
    """The error code a message from ``name`` (joined on ``url``) is answered with."""
    member = await join(url, name)
    assert member.frames[-1]["type"] == "welcome", member.frames[-1]
    await member.send(type="message", text="can you hear me", id="m1")
    answer = await member.wait_for(lambda f: f["type"] in ("error", "message"), "an answer to the message")
    await member.close()
    return str(answer.get("code", ""))


async def moderator(tracker: RunningTracker, method: str, path: str, body: object = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=UNIT) as client:
        headers = {"Authorization": f"Bearer {ADMIN_PASSWORD}"}
        return await client.request(method, tracker.http_url + path, json=body, headers=headers)


async def bans_on(tracker: RunningTracker) -> dict[str, dict[str, object]]:
    page = await moderator(tracker, "GET", "/admin/bans")
    assert page.status_code == 200, page.text
    return {str(ban["id"]): ban for ban in page.json()["bans"]}


async def welcomed_soon(url: str, name: str) -> None:
    """``name`` is welcomed on ``url`` within the timeout unit (an unban reaches every replica at its seq)."""
    deadline = time.monotonic() + 2 * UNIT
    while (code := await refused_as(url, name)) != "":
        assert time.monotonic() < deadline, f"{name} still refused ({code}) on {url}"
        await asyncio.sleep(POLL_SECONDS)


async def moderate(tracker: RunningTracker) -> dict[str, object]:
    """On ``tracker``: ban mallory for an hour, ban an address, ban then unban trudy, mute mia for 10 minutes."""
    made = await moderator(tracker, "POST", "/admin/ban", {"name": "mallory", "seconds": 3600, "reason": "spam"})
    assert made.status_code == 200, made.text
    assert (await moderator(tracker, "POST", "/admin/ban", {"address": ADDRESS})).status_code == 200
    trudy = await moderator(tracker, "POST", "/admin/ban", {"name": "trudy"})
    assert (await moderator(tracker, "DELETE", f"/admin/bans/{trudy.json()['id']}")).status_code == 200
    mia = await join(tracker.url, "mia")
    assert (await moderator(tracker, "POST", "/admin/mute", {"name": "mia", "seconds": 600})).status_code == 200
    await mia.close()
    ban: dict[str, object] = made.json()
    return ban


def archived(archiver: RunningTracker, what: str) -> None:
    wait_until(lambda: any(what in line for line in archiver.log_lines()), f"{what!r} in chat.log", 4 * UNIT)


async def archived_up_to(archiver: RunningTracker, seq: int) -> None:
    """Wait until chat.log has every event up to ``seq``. Before a wipe: what the archiver had not written when
    Redis lost everything is lost with it (the archiver logs the seqs it will never have), and the checker is
    to judge how members are told of the new epoch, not that loss."""
    what = f"the archiver to reach seq {seq}"
    await asyncio.to_thread(wait_until, lambda: archived_seq(archiver) >= seq, what, 4 * UNIT)


def wipe(redis_server: RedisServer, *running: RunningTracker) -> int:
    """Redis restarted empty; the number of wipes (one)."""
    wipes = 0
    redis_server.wipe()
    wipes += 1
    redis_server.start()
    for tracker in running:
        tracker.wait_for_output(r"ERROR .*Redis lost the room", 4 * UNIT)
    return wipes


async def witness_on(tracker: RunningTracker) -> CheckedMember:
    witness = CheckedMember("wes")
    assert (await witness.join(tracker.url))["type"] == "welcome"
    msg_id = await witness.say("before the wipe")
    await asyncio.to_thread(wait_until, lambda: msg_id in witness.acked, "the witness's first word", 2 * UNIT)
    return witness


async def witness_resumes(witness: CheckedMember) -> None:
    """Closed with 1012 by the wipe, the witness resumes on its replica: a fresh join in the new epoch."""
    await asyncio.to_thread(wait_until, lambda: not witness.connected, "the witness closed", 2 * UNIT)
    assert witness.close_codes == [CloseCode.SERVICE_RESTART], witness.close_codes
    answer = await witness.resume(witness.url)
    assert answer["type"] == "resumed" and answer["recovered"] is False, answer
    assert len(witness.stints) == 2, "a token of the lost epoch is answered with a fresh join: a new stint"


async def witness_checked(fault: str, wipes: int, archiver: RunningTracker, witness: CheckedMember) -> None:
    """The witness says a last word and is owed every event up to it; the checker holds it against chat.log."""
    msg_id = await witness.say("after the wipe")
    await asyncio.to_thread(wait_until, lambda: msg_id in witness.acked, "the witness's last word", 2 * UNIT)
    fence = witness.acked[msg_id]
    witness.owe_until(fence)
    await archived_up_to(archiver, fence)
    entries, torn = read_chat_log_counting_torn(archiver.data_dir)
    judge(fault, wipes, entries, torn, [witness], seed=SEED)
    await witness.close()


async def check_enforced(tracker: RunningTracker, mallory_ban: dict[str, object]) -> None:
    assert await refused_as(tracker.url, "mallory") == "banned"
    assert await refused_as(tracker.url, "MaIlory") == "banned", "its lookalikes too"
    assert await refused_as(tracker.url, "trudy") == "", "a ban lifted before the wipe stays lifted"
    assert await message_refused(tracker.url, "mia") == "muted"
    bans = await bans_on(tracker)
    assert bans[str(mallory_ban["id"])]["until"] == mallory_ban["until"], "the expiry is kept"
    assert [ban["address"] for ban in bans.values() if ban["address"]] == [ADDRESS], "the address is kept"


async def test_a_ban_made_on_one_replica_holds_on_every_replica_after_redis_restarted_empty(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    archiver = start_archiver(redis_server.url, data_dir=tmp_path / "archive")
    first, second = replica(start_tracker, redis_server), replica(start_tracker, redis_server)
    witness = await witness_on(first)
    mallory_ban = await moderate(first)
    archived(archiver, " leave mia ")  # mia's leave, appended once her connection is over, and all before it
    await archived_up_to(archiver, max(witness.last_seq, room_seq(redis_server)))
    wipes = await asyncio.to_thread(wipe, redis_server, first, second)
    await witness_resumes(witness)
    archiver.wait_for_output("Gave the room in Redis", 4 * UNIT)
    third = replica(start_tracker, redis_server)  # knows only what the new room in Redis holds
    for tracker in (first, second, third):
        await check_enforced(tracker, mallory_ban)
    assert second.stop() == 0
    again = replica(start_tracker, redis_server)  # a replica restarted after the wipe
    await check_enforced(again, mallory_ban)
    # An unban made in the new room wins over the ban given back, on every replica, and after a restart.
    assert (await moderator(again, "DELETE", f"/admin/bans/{mallory_ban['id']}")).status_code == 200
    for tracker in (first, third, again, replica(start_tracker, redis_server)):
        await welcomed_soon(tracker.url, "mallory")
    await witness_checked("redis_wiped_bans_kept", wipes, archiver, witness)


async def test_with_the_archiver_down_a_replica_started_after_the_wipe_enforces_the_bans_once_it_is_back(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    archiver = start_archiver(redis_server.url, data_dir=tmp_path / "archive")
    first = replica(start_tracker, redis_server)
    witness = await witness_on(first)
    mallory_ban = await moderate(first)
    archived(archiver, " leave mia ")  # mia's leave, appended once her connection is over, and all before it
    await archived_up_to(archiver, max(witness.last_seq, room_seq(redis_server)))
    assert archiver.stop() == 0
    wipes = await asyncio.to_thread(wipe, redis_server, first)
    await witness_resumes(witness)
    assert await refused_as(first.url, "mallory") == "banned", "a replica running through the wipe keeps its bans"
    fresh = replica(start_tracker, redis_server)
    # Until the archiver is back, the fresh replica knows no ban (docs/replicas.md): mallory gets in...
    mallory = await join(fresh.url, "mallory")
    assert mallory.frames[-1]["type"] == "welcome", mallory.frames[-1]
    archiver = start_archiver(redis_server.url, data_dir=tmp_path / "archive")
    # ...and is removed as by the ban as soon as the archiver gives the room its bans.
    assert await mallory.closed_with(4 * UNIT) == CloseCode.BANNED
    await check_enforced(fresh, mallory_ban)
    await witness_checked("redis_wiped_archiver_down", wipes, archiver, witness)
