"""A replica frozen (SIGSTOP) longer than the archiver keeps events in Redis never leaves its members a silent gap.

While replica B is stopped, members on replica A chat more than ``--keep-in-redis``
events and the archiver trims the stream past B's position. Once B runs again it
reads a stream with a hole where its members' events were: it must close them with
1012 (a code clients reconnect on), and their resume must answer ``recovered: false``
with exactly the range B skipped. Checked against chat.log as the archiver wrote it:
every event a member received is chat.log's event of that seq, and every member event
from its join to the end was either received or announced ``gone``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from chat_protocol import CloseCode
from chat_tracker.journal.redis_keys import Keys, seq_of
from chat_tracker.records import LogEntry
from chat_tracker.storage.chatlog import parse_line
from support.archiver import StartArchiver, all_lines
from support.redis_server import POLL_SECONDS, RedisServer
from support.replicas import Member, join, open_ws, replicas, welcomed
from support.timing import UNIT
from support.tracker import RunningTracker, StartTracker

pytestmark = pytest.mark.anyio

KEYS = Keys()
KEEP_IN_REDIS = 10
WHILE_FROZEN = 60  # messages said on A while B is stopped: far more than the stream keeps
REPLICA_FLAGS = ("--resume-grace", "60", "--rate", "200", "--burst", "200")  # no reaping while B is stopped
KIND = {"message": "msg", "joined": "join", "left": "leave"}
SKIPPED = re.compile(r"events (\d+)-(\d+) were trimmed from the stream")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def until(condition: Callable[[], bool], what: str, timeout: float = 4 * UNIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


def first_in_stream(server: RedisServer) -> int:
    """The seq of the oldest entry still in the stream (0 if it is empty)."""
    with server.client() as client:
        entries: Any = client.xrange(KEYS.events, min="-", max="+", count=1)
    return seq_of(entries[0][0])[0] if entries else 0


def stream_last_seq(server: RedisServer) -> int:
    with server.client() as client:
        value = client.hget(KEYS.room, "seq")
    return int(value) if value is not None else 0


def archived_seq(archiver: RunningTracker) -> int:
    try:
        reply = httpx.get(f"{archiver.http_url}/healthz", timeout=UNIT / 5)
    except httpx.HTTPError:
        return -1
    return int(reply.json().get("archived_seq", -1)) if reply.status_code == 200 else -1


def events_of(member: Member) -> list[dict[str, Any]]:
    """The member events a member received, in the order received (live and replayed alike)."""
    return [frame for frame in member.frames if frame["type"] in KIND]


async def say_and_hear(speaker: Member, text: str) -> int:
    """``speaker`` says ``text`` and waits for its echo; the echo's seq."""
    await speaker.send(type="message", text=text)
    echo = await speaker.wait_for(lambda f: f["type"] == "message" and f["text"] == text, f"the echo of {text!r}")
    return int(echo["seq"])


async def resume(url: str, welcome: dict[str, Any], after: int) -> tuple[Member, dict[str, Any]]:
    """Resume the member of ``welcome`` on ``url`` after seq ``after``; the new connection and its answer."""
    member = Member(await open_ws(url), welcome["name"])
    await member.wait_for(lambda f: f["type"] == "hello", "hello")
    await member.send(type="resume", token=welcome["token"], epoch=welcome["epoch"], after=after)
    answer = await member.wait_for(lambda f: f["type"] in ("resumed", "error"), "the resume's answer")
    return member, answer


def check_against_chat_log(
    name: str, joined: int, received: list[dict[str, Any]], gone: tuple[int, int], entries: list[LogEntry]
) -> None:
    """The checker: every event received is chat.log's; every member event after ``joined`` was received or gone."""
    by_seq = {entry.seq: entry for entry in entries}
    seqs = [frame["seq"] for frame in received]
    assert seqs == sorted(set(seqs)), f"{name} received seqs out of order or twice: {seqs}"
    for frame in received:
        entry = by_seq.get(frame["seq"])
        assert entry is not None, f"{name} received seq {frame['seq']}, which is not in chat.log"
        assert (entry.kind, entry.name) == (KIND[frame["type"]], frame["name"]), (entry, frame)
        if frame["type"] == "message":
            assert entry.text == frame["text"], (entry, frame)
    announced = set(range(gone[0], gone[1] + 1))
    expected = {e.seq for e in entries if e.kind in KIND.values() and e.seq > joined}
    assert not announced & set(seqs), f"{name} received events it was told are gone"
    silent = sorted(expected - set(seqs) - announced)
    assert not silent, f"{name} missed seqs {silent[:20]} without being told"


@pytest.mark.timeout(40 * UNIT)
async def test_a_replica_frozen_past_the_trimmed_stream_closes_its_members_to_resume_told_what_is_gone(
    redis_server: RedisServer, start_tracker: StartTracker, start_archiver: StartArchiver
) -> None:
    """B SIGSTOPped while A chats past --keep-in-redis; after SIGCONT B's member is closed with 1012, and its resume
    answers recovered: false with exactly the seqs B skipped; what it received plus that range is all of chat.log."""
    archiver = start_archiver(redis_server.url, "--keep-in-redis", str(KEEP_IN_REDIS))
    a, b = replicas(start_tracker, redis_server, 2, *REPLICA_FLAGS)
    ann, bob = await join(a.url, "ann"), await join(b.url, "bob")
    bob_welcome = welcomed(bob)
    assert bob_welcome is not None, bob.frames
    await say_and_hear(ann, "before")
    await bob.wait_for(lambda f: f.get("text") == "before", "bob hears 'before'")
    os.kill(b.process.pid, signal.SIGSTOP)
    try:
        await say_and_hear(ann, "frozen 0")  # alone in B's pending read: the rest comes after it
        for number in range(1, WHILE_FROZEN + 1):
            await ann.send(type="message", text=f"frozen {number}")
        last = await say_and_hear(ann, "frozen end")
        await until(lambda: archived_seq(archiver) >= last, "the archiver to archive what A said")
        await until(lambda: first_in_stream(redis_server) > last - KEEP_IN_REDIS - 5, "the stream trimmed past B")
    finally:
        os.kill(b.process.pid, signal.SIGCONT)
    assert await bob.closed_with(4 * UNIT) == CloseCode.SERVICE_RESTART
    line = b.wait_for_output(SKIPPED.pattern, 2 * UNIT)
    match = SKIPPED.search(line)
    assert match is not None
    skipped = (int(match[1]), int(match[2]))
    received = events_of(bob)
    after = received[-1]["seq"]
    assert skipped == (after + 1, skipped[1]) and skipped[1] >= after + 1, (skipped, after)

    bob_again, answer = await resume(b.url, bob_welcome, after)
    assert answer["type"] == "resumed", answer
    assert (answer["recovered"], answer["gone"]) == (False, list(skipped)), answer
    end = await say_and_hear(ann, "after the gap")
    await bob_again.wait_for(lambda f: f.get("text") == "after the gap", "bob hears 'after the gap'")
    await until(lambda: archived_seq(archiver) >= stream_last_seq(redis_server) >= end, "everything archived")

    entries = [parse_line(line) for line in all_lines(archiver.data_dir)]
    assert [e.seq for e in entries] == list(range(1, entries[-1].seq + 1)), "chat.log is not seq +1"
    received += events_of(bob_again)
    check_against_chat_log("bob", bob_welcome["seq"], received, skipped, entries)
    ann_welcome = welcomed(ann)
    assert ann_welcome is not None
    check_against_chat_log("ann", ann_welcome["seq"], events_of(ann), (1, 0), entries)
    await ann.close()
    await bob_again.close()
    print(f"replica behind: skipped {skipped}, told gone {answer['gone']}, {len(received)} events received by bob")
