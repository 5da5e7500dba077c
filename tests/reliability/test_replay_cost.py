"""What a resume and a /log page cost, however much is behind them (issue 22, items 3 and 4).

chat.log is written directly, as the tracker writes it, while the tracker is stopped:
200,000 events in a second, where talking them in would take minutes.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from chat_protocol import format_ts
from chat_tracker.storage import gzmembers
from chat_tracker.storage.segments import compress, segment_name
from support.resume import Member, join, restart
from support.timing import UNIT
from support.tracker import RunningTracker, launch_tracker

pytestmark = pytest.mark.anyio

HISTORY = 10_000  # --history-size's default
MEMBER_KINDS = {"msg", "join", "leave"}


def append_events(path: Path, first_seq: int, count: int, text: str) -> None:
    """``count`` message lines from ``first_seq`` on, as the tracker logs them."""
    ts = format_ts(0.0)
    with path.open("ab") as file:
        for start in range(first_seq, first_seq + count, 10_000):
            stop = min(first_seq + count, start + 10_000)
            file.write("".join(f"{seq} {ts} msg bot{seq % 7} {text}\n" for seq in range(start, stop)).encode())


def last_seq(data_dir: Path) -> int:
    with (data_dir / "chat.log").open("rb") as file:
        file.seek(max(0, file.seek(0, 2) - 65_536))
        return int(file.read().splitlines()[-1].split(b" ", 1)[0])


async def scrape(tracker: RunningTracker) -> dict[str, float]:
    async with httpx.AsyncClient(trust_env=False, timeout=2 * UNIT) as client:
        text = (await client.get(tracker.http_url + "/metrics")).text
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line.startswith("chat_")}


def rss_kib(tracker: RunningTracker, field: str = "VmRSS") -> int:
    status = Path(f"/proc/{tracker.process.pid}/status").read_text()
    match = re.search(rf"{field}:\s+(\d+)", status)
    assert match is not None
    return int(match.group(1))


async def away_with_missed(data_dir: Path, missed: int, *args: str, text: str = "x" * 400) -> tuple[Member, Any]:
    """alpha joins, the tracker stops (alpha away), ``missed`` events are appended; a restarted tracker."""
    (alpha,), tracker = await crowd_away_with_missed(data_dir, missed, ("alpha",), *args, text=text)
    return alpha, tracker


async def crowd_away_with_missed(
    data_dir: Path, missed: int, names: tuple[str, ...], *args: str, text: str = "x" * 400
) -> tuple[list[Member], Any]:
    """``names`` join, the tracker stops (all away), ``missed`` events are appended; a restarted tracker."""
    tracker = launch_tracker(data_dir, *args, resume_grace=60)
    members = [await join(tracker.url, name) for name in names]
    tracker.process.send_signal(signal.SIGTERM)
    assert tracker.process.wait(timeout=10 * UNIT) == 0
    append_events(data_dir / "chat.log", last_seq(data_dir) + 1, missed, text)
    return members, restart(tracker, data_dir, *args)


async def read_replay(member: Member, answer: dict[str, Any]) -> list[dict[str, Any]]:
    frames = [json.loads(await member.ws.recv()) for _ in range(answer["replayed"])]
    await member.ws.close()
    return frames


@pytest.mark.timeout(48 * UNIT)
async def test_a_resume_after_200000_missed_events_reads_only_the_last_history_size(tmp_path: Path) -> None:
    """The answer is exactly what it always was (the last 10,000 replayed, the rest gone); RSS barely moves."""
    alpha, tracker = await away_with_missed(tmp_path, 200_000)
    try:
        until = last_seq(tmp_path)  # the restart's own line included
        before, rss = await scrape(tracker), rss_kib(tracker)
        answer = await alpha.resume(tracker.url, after=alpha.welcome["seq"])
        frames = await read_replay(alpha, answer)
        after, peak = await scrape(tracker), rss_kib(tracker, "VmHWM")
    finally:
        tracker.stop(timeout=10 * UNIT)
    kept = [entry for entry in _entries(tmp_path) if until - HISTORY < entry[0] <= until]
    replayed = [seq for seq, kind in kept if kind in MEMBER_KINDS]
    assert answer["gone"] == [alpha.welcome["seq"] + 1, until - HISTORY] and not answer["recovered"]
    assert answer["replayed"] == len(replayed) == len(frames) and answer["seq"] == replayed[-1]
    assert answer["messages"] == sum(1 for _, kind in kept if kind == "msg")
    assert [frame["seq"] for frame in frames] == replayed
    lines_read = after["chat_log_lines_read_total"] - before["chat_log_lines_read_total"]
    assert lines_read <= 2 * HISTORY, "the 190,000 older events are never read"
    assert (peak - rss) / 1024 < 30, f"RSS {rss / 1024:.0f} -> {peak / 1024:.0f} MB"


@pytest.mark.timeout(48 * UNIT)
async def test_four_parallel_resumes_of_200000_missed_events_cost_under_30_mb(tmp_path: Path) -> None:
    """Four members away through 200,000 events resume at once, each replaying its 10,000: under 30 MB together.

    Four members, not one token four times: a token resumes once (it rotates), so a
    token sent four times at once would replay once and be refused three times.
    """
    crowd, tracker = await crowd_away_with_missed(tmp_path, 200_000, ("alpha", "beta", "gamma", "delta"))
    try:
        rss = rss_kib(tracker)
        answers = await asyncio.gather(*(_resume_and_read(m, m.welcome["seq"], tracker) for m in crowd))
        peak = rss_kib(tracker, "VmHWM")
    finally:
        tracker.stop(timeout=10 * UNIT)
    assert all(a["type"] == "resumed" and a["replayed"] == answers[0]["replayed"] > 0 for a in answers), answers
    assert (peak - rss) / 1024 < 30, f"RSS {rss / 1024:.0f} -> {peak / 1024:.0f} MB"


@pytest.mark.timeout(48 * UNIT)
async def test_a_used_token_sent_four_times_at_once_replays_once(tmp_path: Path) -> None:
    """The same token four times at once: one replay; the others are refused or replaced, none reads more."""
    alpha, tracker = await away_with_missed(tmp_path, 200_000)
    try:
        rss = rss_kib(tracker)
        crowd = [Member(alpha, alpha.welcome) for _ in range(4)]
        answers = await asyncio.gather(*(_resume_and_read(m, alpha.welcome["seq"], tracker) for m in crowd))
        peak = rss_kib(tracker, "VmHWM")
    finally:
        tracker.stop(timeout=10 * UNIT)
    refusals = ("resume_bad_token", "replaced", 4010)
    assert all(a["type"] == "resumed" or a.get("code") in refusals for a in answers), answers
    assert [a["type"] for a in answers].count("resumed") >= 1, answers
    assert (peak - rss) / 1024 < 30, f"RSS {rss / 1024:.0f} -> {peak / 1024:.0f} MB"


async def _resume_and_read(member: Member, after: int, tracker: RunningTracker) -> dict[str, Any]:
    try:
        answer = await member.resume(tracker.url, after=after)
        if answer["type"] == "error":
            return answer  # replaced before its replay began (checked by the caller)
        await read_replay(member, answer)
        return answer
    except ConnectionClosed as closed:
        return {"type": "closed", "code": closed.rcvd.code if closed.rcvd else None}


@pytest.mark.timeout(48 * UNIT)
async def test_a_replaced_resume_stops_reading(tmp_path: Path) -> None:
    """A resume whose client reads nothing stalls; resumed again elsewhere, the stalled one stops for good.

    8 KB events, 3,000 replayed: 24 MB, more than the sockets hold, so the first replay
    is stuck in its first pages when the second resume replaces it.
    """
    flags = ("--history-size", "3000")
    alpha, tracker = await away_with_missed(tmp_path, 5_000, *flags, text="y" * 8192)
    try:
        stalled = Member(alpha, alpha.welcome)
        first = await stalled.resume(tracker.url, after=alpha.welcome["seq"])
        assert first["type"] == "resumed" and first["replayed"] == 2999  # the 3,000 missed less the start line
        second = Member(alpha, first)  # the token the first resume handed out: a token resumes once
        answer = await second.resume(tracker.url, after=alpha.welcome["seq"])
        frames = await read_replay(second, answer)
        assert len(frames) == answer["replayed"] == 2999
        async with asyncio.timeout(4 * UNIT):
            while (await scrape(tracker))["chat_replays_stopped_total"] < 1:
                await asyncio.sleep(0.05)
        replayed = (await scrape(tracker))["chat_events_replayed_total"]
    finally:
        tracker.stop(timeout=10 * UNIT)
    # The second replay framed its 2,999; the stalled one no more than its first pages, never all of them.
    assert 2999 < replayed < 2 * 2999 - 500, replayed


@pytest.mark.timeout(48 * UNIT)
async def test_log_inside_a_big_gz_segment_reads_one_member(tmp_path: Path) -> None:
    """/log?after=299990 in a 300,000-line .gz segment: one gzip member is read, not the 299,990 lines before."""
    segment = tmp_path / segment_name(1)
    append_events(segment, 1, 300_000, "hello from a segment")
    compress(segment)
    append_events(tmp_path / "chat.log", 300_001, 10, "hello from chat.log")
    tracker = launch_tracker(tmp_path, "--rotate-bytes", "1G", "--compress", "--history-size", "5")
    try:
        before = (await scrape(tracker))["chat_log_lines_read_total"]
        async with httpx.AsyncClient(trust_env=False, timeout=4 * UNIT, auth=("", tracker.password)) as client:
            page = (await client.get(tracker.http_url + "/log", params={"after": 299_990, "limit": 1})).json()
            first = (await client.get(tracker.http_url + "/log", params={"after": 0, "limit": 2})).json()
        lines_read = (await scrape(tracker))["chat_log_lines_read_total"] - before
    finally:
        tracker.stop(timeout=10 * UNIT)
    assert [e["seq"] for e in page["events"]] == [299_991] and page["events"][0]["text"] == "hello from a segment"
    assert [e["seq"] for e in first["events"]] == [1, 2]
    one_member = gzmembers.MEMBER_BYTES // len("1 2026-01-01T00:00:00.000Z msg bot1 hello from a segment\n")
    assert lines_read <= 2 * one_member + 10, lines_read


def _entries(data_dir: Path) -> list[tuple[int, str]]:
    with (data_dir / "chat.log").open("rb") as file:
        return [(int(seq), kind.decode()) for seq, _, kind, *_ in (line.split(b" ", 3) for line in file)]
