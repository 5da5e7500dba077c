"""Guessing, joining and asking `who` in a flood, against a real tracker: refused at once, never parked.

Raw asyncio sockets for the floods (thousands of requests in seconds), real WebSocket
peers for the rest; source addresses from 127.0.0.0/8 stand for different machines.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from pathlib import Path

import pytest

from chat_protocol import Authenticated, ChatMessage, Error, Hello, Joined, Members, Resumed, Welcome
from chat_tracker.storage.chatlog import parse_line
from support.peers import json_member, json_peer, plain_peer
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, StartTracker

pytestmark = pytest.mark.anyio

FLOOD = 20_000
AT_ONCE = 100  # sockets in flight at once, per flood


def rss_mb(tracker: RunningTracker) -> float:
    status = Path(f"/proc/{tracker.process.pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) / 1024


def members_request(password: str) -> bytes:
    auth = base64.b64encode(f"x:{password}".encode()).decode()
    return f"GET /members HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {auth}\r\n\r\n".encode()


async def abandon(port: int, request: bytes, source: str = "127.0.0.1") -> None:
    """Send ``request`` and close at once, reading nothing: an attacker's cheapest guess."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(request)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def flood(port: int, request: bytes, count: int) -> None:
    gate = asyncio.Semaphore(AT_ONCE)

    async def one() -> None:
        async with gate:
            await abandon(port, request)

    await asyncio.gather(*(one() for _ in range(count)))


async def ask(port: int, password: str, source: str) -> tuple[int, dict[str, str], float]:
    """``GET /members`` from ``source``: status, headers and seconds to the answer."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(members_request(password).replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2 * UNIT)
    finally:
        writer.close()
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, time.monotonic() - started


async def settled_rss(tracker: RunningTracker, within: float) -> float:
    """The tracker's RSS once it stops falling (freed memory is given back lazily), or after ``within`` s."""
    deadline = time.monotonic() + within
    last = rss_mb(tracker)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = rss_mb(tracker)
        if now >= last - 0.5:
            return now
        last = now
    return last


async def test_abandoned_wrong_password_flood_holds_nothing_and_locks_nobody_out(start_tracker: StartTracker) -> None:
    """20,000 wrong-password requests sent and abandoned: RSS back within 20 MB; the right password is
    answered within 1 s from the same address (200, or 429 with Retry-After) and with 200 from another."""
    tracker = start_tracker()
    await flood(tracker.port, members_request("wrong"), 500)  # warm up uvicorn's pools before the baseline
    before = await settled_rss(tracker, 2 * UNIT)
    started = time.monotonic()
    await asyncio.wait_for(flood(tracker.port, members_request("wrong"), FLOOD), 24 * UNIT)
    flood_seconds = time.monotonic() - started
    status, headers, seconds = await ask(tracker.port, PASSWORD, "127.0.0.1")
    assert seconds < UNIT / 5 and (status == 200 or (status == 429 and int(headers["retry-after"]) >= 1)), status
    status, _, seconds = await ask(tracker.port, PASSWORD, "127.0.0.2")
    assert status == 200 and seconds < UNIT / 5
    after = await settled_rss(tracker, 4 * UNIT)
    print(f"flood of {FLOOD} in {flood_seconds:.1f} s; RSS {before:.0f} -> {after:.0f} MB")
    assert after - before < 20, (before, after)
    assert tracker.stop() == 0
    assert not any("Traceback" in line for line in tracker.output)
    minutes = 1 + int(flood_seconds // 60)  # wrong, refused: once a minute each for 127.0.0.1
    assert sum("password" in line and "WARNING" in line for line in tracker.output) <= 2 * minutes + 1


async def test_ws_guesses_closed_at_once_do_not_delay_the_right_password(start_tracker: StartTracker) -> None:
    """300 wrong-password handshakes closed at once, then the right one from that address is answered
    within 1 s (welcome, or 4013 with a retry time), and from another address it gets in at once."""
    tracker = start_tracker()

    async def wrong_and_gone() -> None:
        async with plain_peer(tracker.url) as peer:
            await peer.line()
            await peer.send("wrong")

    for _ in range(6):
        await asyncio.gather(*(wrong_and_gone() for _ in range(50)))

    async def right(source: str) -> tuple[str, float]:
        started = time.monotonic()
        async with plain_peer(tracker.url, local_addr=(source, 0)) as peer:
            await peer.line()
            await peer.send(PASSWORD)
            return await peer.line(), time.monotonic() - started

    answer, seconds = await right("127.0.0.1")
    assert seconds < UNIT / 5 and (answer == "Welcome to our server..." or "retry in" in answer), answer
    answer, seconds = await right("127.0.0.2")
    assert answer == "Welcome to our server..." and seconds < UNIT / 5


async def test_guessing_from_many_addresses_spends_one_budget_members_and_resumes_go_on(
    start_tracker: StartTracker,
) -> None:
    """Wrong guesses from 30 addresses spend the shared budget (20 a minute): the rest are refused (429,
    4013) whatever their password; a member in the room chats on and a resume with a valid token gets in."""
    tracker = start_tracker("--auth-guesses-per-minute", "20", resume_grace=30.0)
    async with json_member(tracker.url, PASSWORD, "stays") as (stays, _):
        async with json_peer(tracker.url, PASSWORD) as leaving:
            await leaving.expect(Hello)
            await leaving.send(type="join", name="comes-back")
            welcome = await leaving.expect(Welcome)
            await stays.expect(Joined)
            await leaving.ws.close(code=4000)  # not a leave: a lost connection, kept away for the grace
        tracker.wait_for_output("comes-back is away")
        statuses = [(await ask(tracker.port, "wrong", f"127.0.1.{n}"))[0] for n in range(1, 31)]
        assert statuses.count(401) == 20 and statuses.count(429) == 10, statuses
        status, headers, _ = await ask(tracker.port, PASSWORD, "127.0.2.1")  # the right password, unchecked
        assert status == 429 and int(headers["retry-after"]) >= 1
        async with json_peer(tracker.url, PASSWORD, source="127.0.2.2") as newcomer:
            await newcomer.expect(Hello)
            await newcomer.send(type="join", name="newcomer")
            code, seen = await newcomer.closed()
        assert code == 4013 and isinstance(seen[0], Error) and seen[0].code == "too_many_guesses"
        assert seen[0].retry_after is not None and seen[0].retry_after >= 1
        async with json_peer(tracker.url, source="127.0.2.3") as back:
            await back.expect(Hello)
            await back.send(type="auth", password=PASSWORD)
            await back.expect(Authenticated)
            await back.send(type="resume", token=welcome.token, epoch=welcome.epoch, after=welcome.seq)
            resumed = await back.expect(Resumed)
            assert resumed.name == "comes-back"
        await stays.send(type="message", text="still here")
        while not isinstance(echo := await stays.recv(), ChatMessage):
            pass
        assert echo.text == "still here"


async def test_refusal_warnings_are_once_a_minute_per_address(start_tracker: StartTracker) -> None:
    """300 refused-Origin handshakes and 50 wrong passwords from one address: one line of each kind."""
    tracker = start_tracker()

    async def foreign_origin() -> None:
        with pytest.raises(Exception, match="403"):
            async with plain_peer(tracker.url, origin="http://evil.example"):
                pass

    for _ in range(6):
        await asyncio.gather(*(foreign_origin() for _ in range(50)))
    await flood(tracker.port, members_request("wrong"), 50)
    await ask(tracker.port, PASSWORD, "127.0.0.2")  # a last request: everything before it is logged
    warnings = [line for line in tracker.output if "WARNING" in line]
    assert sum("origin" in line for line in warnings) == 1, warnings
    assert sum("Wrong password" in line for line in warnings) == 1, warnings
    assert sum("Refused password guesses" in line for line in warnings) == 1, warnings


async def test_joins_and_resumes_count_against_the_address(start_tracker: StartTracker) -> None:
    """With --joins-per-minute 10, 20 join+leave cycles from one address: 10 get in, then too_many_joins
    and close 4014; chat.log holds 10 joins; another address still joins."""
    tracker = start_tracker(env={"TRACKER_JOINS_PER_MINUTE": "10"})
    outcomes = []
    for n in range(20):
        async with json_peer(tracker.url, PASSWORD) as peer:
            await peer.expect(Hello)
            await peer.send(type="join", name=f"cycle{n}")
            first = await peer.recv()
            if isinstance(first, Welcome):
                await peer.send(type="leave")
                outcomes.append("in")
                assert (await peer.closed())[0] == 1000
            else:
                code, _ = await peer.closed()
                assert isinstance(first, Error) and first.code == "too_many_joins" and code == 4014, (first, code)
                assert first.retry_after is not None and first.retry_after >= 1
                outcomes.append("refused")
    assert outcomes == ["in"] * 10 + ["refused"] * 10
    assert [parse_line(line).kind for line in tracker.log_lines()].count("join") == 10
    async with json_peer(tracker.url, PASSWORD, source="127.0.0.2") as other:
        await other.expect(Hello)
        await other.send(type="join", name="other")
        await other.expect(Welcome)


async def test_who_is_rationed(tracker: RunningTracker) -> None:
    """Three `who` at once are answered, the fourth is refused with rate_limited; messages still go."""
    async with json_member(tracker.url, PASSWORD, "asker") as (peer, _):
        for _ in range(4):
            await peer.send(type="who")
        answers = [await peer.recv() for _ in range(4)]
        assert [type(a) for a in answers] == [Members, Members, Members, Error]
        assert isinstance(answers[3], Error) and answers[3].code == "rate_limited"
        await peer.send(type="message", text="hello")
        assert isinstance(await peer.recv(), ChatMessage)


async def test_a_short_password_is_warned_about_never_shown(start_tracker: StartTracker) -> None:
    """A room password under 12 characters gets a start-up warning that does not contain it."""
    tracker = start_tracker(password="hunter2")
    line = tracker.wait_for_output("shorter than 12 characters")
    assert "WARNING" in line and "room password" in line
    tracker.stop()
    assert not any("hunter2" in seen for seen in tracker.output)
    long_one = start_tracker(password="a long enough password")
    long_one.stop()
    assert not any("shorter than" in seen for seen in long_one.output)
