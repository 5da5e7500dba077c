"""Resume on real trackers: dropped connections, SIGKILL and SIGTERM restarts, refusals, resends.

Every test checks what a member would: each event exactly once, in chat.log's order,
nothing missing, and no leave or join for a member that came back in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from support.campaign import require_root_tool
from support.checked_member import read_chat_log
from support.checker import MemberRecord
from support.member_records import kept_from, member_record, record_checked, records_of_frames
from support.resume import Member, join, log_entries, restart
from support.timing import UNIT
from support.tracker import PASSWORD, launch_tracker

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.anyio

FAST = ("--rate", "2000", "--burst", "2000")  # a talker sending every millisecond stays within the limits


async def read_to_close(ws: Any) -> list[dict[str, Any]]:
    """Every frame until the connection closes, however it closes."""
    frames: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(4 * UNIT):
            async for frame in ws:
                frames.append(json.loads(frame))
    return frames


def messages(events: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(e["seq"], e["text"]) for e in events if e["type"] == "message"]


def logged_messages(data_dir: Path) -> list[tuple[int, str]]:
    return [(seq, text) for seq, kind, _, text in log_entries(data_dir) if kind == "msg"]


def checked(test: str, data_dir: Path, members: list[MemberRecord], injected: int, **figures: Any) -> None:
    """The members against chat.log; the test's ``resume`` row (true counts even if the check fails)."""
    record_checked("resume", data_dir, members, test=test, injected=injected, **figures)


async def members_json(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        answer = await client.get(url + "/members", headers={"Authorization": f"Bearer {PASSWORD}"})
        return answer.json()  # type: ignore[no-any-return]


async def test_a_dropped_connection_resumes_with_nothing_missed_and_no_churn(tmp_path: Path) -> None:
    """alpha's TCP is cut: away in /members, then resumed with the 5 messages it missed; nobody saw it leave."""
    tracker = launch_tracker(tmp_path, resume_grace=60)
    try:
        alpha, beta = await join(tracker.url, "alpha"), await join(tracker.url, "beta")
        await alpha.wait_for(lambda m: m["type"] == "joined" and m["name"] == "beta")
        await alpha.drop()
        await asyncio.to_thread(tracker.wait_for_output, "alpha is away")
        online = await members_json(tracker.http_url)
        assert {m["name"]: m["away"] for m in online["members"]} == {"alpha": True, "beta": False}
        for index in range(5):
            await beta.say(f"while away {index}")
        await beta.wait_for(lambda m: m.get("text") == "while away 4")
        answer = await alpha.resume(tracker.url)
        assert answer["type"] == "resumed", answer
        replayed = answer["replayed"]
        assert (answer["recovered"], replayed, answer["messages"]) == (True, 5, 5)
        assert "gone" not in answer and answer["name"] == "alpha" and answer["members"] == ["alpha", "beta"]
        await alpha.wait_for(lambda m: m.get("text") == "while away 4")
        await beta.say("live again")
        await alpha.wait_for(lambda m: m.get("text") == "live again")
        await alpha.ws.close()
        await beta.wait_for(lambda m: m["type"] == "left")
        assert [(e["type"], e["name"]) for e in beta.events if e["type"] in ("joined", "left")] == [("left", "alpha")]
    finally:
        tracker.stop()
    checked("dropped_connection", tmp_path, [member_record(alpha), member_record(beta)], 1, replayed=replayed)
    assert [(kind, name) for _, kind, name, _ in log_entries(tmp_path) if kind in ("join", "leave")] == [
        ("join", "alpha"),
        ("join", "beta"),
        ("leave", "alpha"),
        ("leave", "beta"),
    ]


async def test_the_grace_ends_with_one_leave_lost(tmp_path: Path) -> None:
    """Not back within --resume-grace: one `left ... lost`, and a later resume is refused as expired."""
    tracker = launch_tracker(tmp_path, resume_grace=0.5 * UNIT)
    try:
        alpha, beta = await join(tracker.url, "alpha"), await join(tracker.url, "beta")
        await alpha.wait_for(lambda m: m["type"] == "joined")
        await alpha.drop()
        left = await beta.wait_for(lambda m: m["type"] == "left", timeout=4 * UNIT)
        assert (left["name"], left["reason"]) == ("alpha", "lost")
        answer = await alpha.resume(tracker.url)
        assert answer["type"] == "error" and answer["code"] == "resume_expired", answer
        await alpha.ws.send(json.dumps({"type": "join", "name": "alpha"}))  # the same connection joins afresh
        welcome = await alpha.wait_for(lambda m: m["type"] == "welcome")
        assert welcome["seq"] > left["seq"]
    finally:
        tracker.stop()
    lost_leaves = sum(e["type"] == "left" and e["reason"] == "lost" for e in beta.events)
    checked("grace_ends", tmp_path, [member_record(alpha), member_record(beta)], 1, lost_leaves=lost_leaves)


async def test_wrong_resumes_are_refused_and_the_connection_can_join(tmp_path: Path) -> None:
    """Forged token, wrong epoch, seq from the future, a name someone else holds now: each refused, none served."""
    tracker = launch_tracker(tmp_path, resume_grace=60)
    try:
        alpha = await join(tracker.url, "alpha")
        original, real_token = alpha.ws, alpha.token
        forged = real_token.rsplit(":", 1)[0] + ":AAAAAAAAAAAAAAAAAAAAAA"
        refused = [(await alpha.resume(tracker.url, token=forged))["code"]]
        refused.append((await alpha.resume(tracker.url, token="not a token"))["code"])
        other_name = real_token.replace(":alpha:", ":beta:")
        refused.append((await alpha.resume(tracker.url, token=other_name))["code"])
        alpha.epoch, epoch = "0000000000000000", alpha.epoch
        refused.append((await alpha.resume(tracker.url))["code"])
        alpha.epoch = epoch
        refused.append((await alpha.resume(tracker.url, after=10_000))["code"])
        assert refused == ["resume_bad_token"] * 3 + ["resume_wrong_epoch", "resume_beyond_end"]
        # The refused resumes changed nothing: alpha is still in, on its first connection. It leaves for
        # good, someone else takes the name, and the old token must not bring the old alpha back.
        await original.send(json.dumps({"type": "leave"}))
        assert (await read_to_close(original))[-1]["type"] == "bye"
        holder = await join(tracker.url, "ALPHA")
        stale = Member(holder, {**alpha.welcome, "token": real_token})
        answer = await stale.resume(tracker.url)
        assert answer["type"] == "error" and answer["code"] == "resume_expired", answer
        refused.append(answer["code"])
        await stale.ws.send(json.dumps({"type": "join", "name": "alpha"}))
        taken = await stale.wait_for(lambda m: m["type"] == "error")
        assert taken["code"] == "name_taken"
    finally:
        tracker.stop()
    checked(
        "wrong_resumes", tmp_path, [member_record(alpha), member_record(holder)], len(refused), refused=len(refused)
    )


async def test_a_resume_while_the_old_connection_is_open_replaces_it(tmp_path: Path) -> None:
    """The old connection gets `error replaced` and 4010; the new one carries on; nothing logged twice."""
    tracker = launch_tracker(tmp_path, resume_grace=60)
    try:
        alpha = await join(tracker.url, "alpha")
        old = alpha.ws
        answer = await alpha.resume(tracker.url)
        assert answer["type"] == "resumed" and answer["replayed"] == 0
        frames = await read_to_close(old)
        assert frames[-1]["code"] == "replaced" and old.protocol.close_rcvd.code == 4010  # type: ignore[union-attr]
        await alpha.say("from the new connection")
        await alpha.wait_for(lambda m: m.get("text") == "from the new connection")
    finally:
        tracker.stop()
    checked("replaced", tmp_path, [member_record(alpha)], 1, replaced=int(frames[-1]["code"] == "replaced"))
    assert [kind for _, kind, _, _ in log_entries(tmp_path)] == ["start", "join", "msg", "leave", "stop"]


async def test_a_resent_message_id_is_logged_once(tmp_path: Path) -> None:
    """The same id twice (a resend after a drop): one chat.log line, and the resend gets the first echo."""
    tracker = launch_tracker(tmp_path, resume_grace=60)
    try:
        alpha = await join(tracker.url, "alpha")
        frame = json.dumps({"type": "message", "text": "exactly once", "id": "c0ffee-1"})
        await alpha.ws.send(frame)
        first = await alpha.wait_for(lambda m: m["type"] == "message")
        assert first["id"] == "c0ffee-1"
        await alpha.drop()
        await asyncio.to_thread(tracker.wait_for_output, "alpha is away")
        answer = await alpha.resume(tracker.url, after=first["seq"] - 1)
        assert answer["replayed"] == 1
        replayed = await alpha.recv()
        assert replayed == first  # its own message, with its id, exactly as first echoed
        await alpha.ws.send(frame)
        again = await alpha.recv()
        assert again == first
    finally:
        tracker.stop()
    # The replay and the answer to the resend repeat ``first`` on purpose (asked for with after=seq - 1, and the
    # resent id's echo): they are asserted above, not given to the checker, which counts a repeat as duplicated.
    checked("resent_id", tmp_path, [member_record(alpha)], 1)
    assert logged_messages(tmp_path) == [(first["seq"], "exactly once")]


async def _talker(member: Member, count: int, prefix: str) -> None:
    for index in range(count):
        await member.say(f"{prefix} {index}")
        await member.wait_for(lambda m, i=index: m.get("text") == f"{prefix} {i}" and m["name"] == member.name)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_a_restart_while_another_member_keeps_sending_loses_nothing(tmp_path: Path, sig: int) -> None:
    """The tracker dies under a talking member; restarted on the same data dir, both resume: every message once."""
    tracker = launch_tracker(tmp_path, *FAST, resume_grace=60)
    alpha, beta = await join(tracker.url, "alpha"), await join(tracker.url, "beta")
    await alpha.wait_for(lambda m: m["type"] == "joined")
    await _talker(beta, 20, "before")
    await alpha.wait_for(lambda m: m.get("text") == "before 19")
    beta_sent = asyncio.create_task(beta.say_until_closed("during"))
    await alpha.wait_for(lambda m: m.get("text", "").startswith("during"))
    tracker.process.send_signal(sig)
    tracker.process.wait(timeout=4 * UNIT)
    assert await alpha.pump(2 * UNIT), "alpha's connection outlived the tracker"  # what came before the end
    during = await beta_sent
    restarted = restart(tracker, tmp_path, *FAST)
    replayed = 0
    try:
        for member in (alpha, beta):
            answer = await member.resume(restarted.url)
            assert answer["type"] == "resumed" and answer["recovered"], answer
            replayed += answer["replayed"]
            if answer["replayed"]:
                await member.wait_for(lambda m, last=answer["seq"]: m.get("seq") == last)
        await _talker(beta, 20, "after")
        await alpha.wait_for(lambda m: m.get("text") == "after 19")
        assert restarted.log_lines()[-1].split(" ")[2] != "leave"
    finally:
        restarted.stop()
    said = [f"during {index}" for index in range(during)]
    members = [member_record(alpha), member_record(beta, said=said)]
    messages_logged = len(logged_messages(tmp_path))
    test = f"restart_{signal.Signals(sig).name}"
    checked(test, tmp_path, members, 1, replayed=replayed, messages=messages_logged)
    kinds = [(kind, name) for _, kind, name, _ in log_entries(tmp_path) if kind in ("join", "leave")]
    assert kinds[:2] == [("join", "alpha"), ("join", "beta")] and ("join", "alpha") not in kinds[2:]


@pytest.mark.timeout(60 * UNIT)
@pytest.mark.parametrize("count", [1, 200, 1000])
async def test_members_resume_together_after_a_restart(tmp_path: Path, count: int) -> None:
    """``count`` members, SIGTERM, a new tracker: all resume at once; nothing lost, no duplicate, no churn."""
    tracker = launch_tracker(tmp_path, resume_grace=60)
    crowd: list[Member] = []
    for start in range(0, count, 100):
        crowd += await asyncio.gather(*(join(tracker.url, f"m{i}") for i in range(start, min(count, start + 100))))
    speaker = crowd[0]
    for index in range(10):
        await speaker.say(f"before {index}")
    # Everyone has read everything (as live members have): what a restart costs is the resume alone.
    await asyncio.gather(*(m.wait_for(lambda e: e.get("text") == "before 9", timeout=20 * UNIT) for m in crowd))
    tracker.process.send_signal(signal.SIGTERM)
    assert tracker.process.wait(timeout=10 * UNIT) == 0
    restarted = restart(tracker, tmp_path, "--max-unauthenticated", str(2 * count))
    try:
        started = time.monotonic()
        answers = await asyncio.gather(*(m.resume(restarted.url) for m in crowd))
        seconds = time.monotonic() - started
        assert all(a["type"] == "resumed" and a["recovered"] for a in answers), answers[:3]
        await speaker.say("after")
        for member in crowd[:: max(1, count // 20)]:
            await member.wait_for(lambda m: m.get("text") == "after", timeout=20 * UNIT)
        online = await members_json(restarted.http_url)
        assert online["count"] == count and not any(m["away"] for m in online["members"])
    finally:
        restarted.stop(timeout=10 * UNIT)
    resumed = sum(answer["type"] == "resumed" for answer in answers)
    records = [member_record(member) for member in crowd]
    checked("restart_together", tmp_path, records, 1, resumed=resumed, seconds=round(seconds, 2))
    entries = log_entries(tmp_path)
    joins = [name for _, kind, name, _ in entries if kind == "join"]
    assert len(joins) == len(set(joins)) == count, "nobody joined twice"
    assert [kind for _, kind, _, _ in entries].count("leave") == count  # the final Ctrl+C, once each


@pytest.mark.timeout(36 * UNIT)
def test_a_piped_client_whose_network_is_cut_for_10_s_misses_nothing(tmp_path: Path) -> None:
    """iptables drops chat-client's packets for 10 s while others talk and a line is typed: all of it, once."""
    for tool in ("iptables", "unshare", "ss"):
        require_root_tool(tool)
    data_dir = tmp_path / "data"
    result = subprocess.run(
        ["unshare", "-n", sys.executable, str(HERE / "netns_cut_client.py"), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 0, outcome["stderr"]
    seen = outcome["seen"]
    resumes = [event for event in seen if event["type"] == "resumed"]
    checked(
        "network_cut_10s",
        data_dir,
        [records_of_frames("alpha", seen)],  # chat-client --json prints each frame as received
        1,
        resumes=len(resumes),
        replayed=sum(answer["replayed"] for answer in resumes),
        sent_while_cut=outcome["sent_while_cut"],
        back_after_s=round(outcome["back_after"], 1),
    )
    assert resumes, "it resumed rather than joined again"
    logged = logged_messages(data_dir)
    assert [text for _, text in logged].count("typed while the network was down") == 1
    assert sum(text.startswith("while cut") for _, text in logged) == outcome["sent_while_cut"] > 0
    alpha = [(kind, text) for _, kind, name, text in log_entries(data_dir) if name == "alpha" and kind != "msg"]
    assert alpha == [("join", ""), ("leave", "exit")], "no leave or join for the blip"


async def test_a_resume_past_what_is_kept_says_recovered_false_and_names_the_gap(tmp_path: Path) -> None:
    """Retention deleted the segments alpha missed: `recovered: false`, `gone` = those seqs, then the rest, in order."""
    flags = ("--rotate-bytes", "1K", "--keep-segments", "1", "--history-size", "5", *FAST)
    tracker = launch_tracker(tmp_path, *flags, resume_grace=60)
    try:
        alpha, beta = await join(tracker.url, "alpha"), await join(tracker.url, "beta")
        await alpha.wait_for(lambda m: m["type"] == "joined")
        await alpha.drop()
        await asyncio.to_thread(tracker.wait_for_output, "alpha is away")
        for index in range(100):
            await beta.say(f"said while away {index} " + "x" * 40)
        await beta.wait_for(lambda m: m.get("text", "").startswith("said while away 99"), timeout=4 * UNIT)
        answer = await alpha.resume(tracker.url)
        assert answer["type"] == "resumed" and answer["recovered"] is False, answer
        first, last = answer["gone"]
        assert first == alpha.last_seq + 1 and last < answer["seq"]
        await alpha.wait_for(lambda m: m.get("seq") == answer["seq"])
        replayed = [(seq, text) for seq, text in messages(alpha.events) if seq > last]
        assert replayed[0][0] == last + 1
    finally:
        tracker.stop()
    first_kept = read_chat_log(tmp_path)[0].seq  # retention deleted the lines before it
    records = [kept_from(member_record(alpha, [answer]), first_kept), kept_from(member_record(beta), first_kept)]
    checked("gone", tmp_path, records, 1, replayed=answer["replayed"], gone=last - first + 1)
