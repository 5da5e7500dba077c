"""Passwords, guessing, idle sockets and floods: nobody gets in without the password, nobody else slows down."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL, Limits
from chat_tracker.records import LogEntry
from support.badinput import Allowed, BadInputs, admits, members_lines
from support.bots import open_bot
from support.campaign import check_log_file
from support.process import Process
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio

WRONG = [
    "",
    "wrong",
    PASSWORD.upper(),
    PASSWORD[:-1],
    PASSWORD + "x",
    " " + PASSWORD,
    PASSWORD + " ",
    "x" * 60000,
    "pässwörd",
    "\U0001f511" * 100,
    PASSWORD + "\x00",
    "\x00",
    "\x1b[2J",
    "\u202e" + PASSWORD,
    "' OR 1=1 --",
    "%s%s%s%n",
    "${jndi:ldap://x}",
]


async def _outcome(ws: Any) -> tuple[int | None, list[str]]:
    """Every frame until the tracker closes ``ws`` (within 4 UNIT), and the close code received."""
    frames: list[str] = []
    try:
        async with asyncio.timeout(4 * UNIT):
            async for frame in ws:
                frames.append(str(frame))
    except ConnectionClosed:
        pass
    rcvd = ws.protocol.close_rcvd
    return (rcvd.code if rcvd is not None else None), frames


async def _close_code(ws: Any, tally: BadInputs) -> int | None:
    """The close code ``ws`` ends with, counted in ``tally`` (with whether a frame said it got in)."""
    code, frames = await _outcome(ws)
    tally.answered(close_code=code)
    tally.got_in(any(admits(frame) for frame in frames))
    return code


async def _plain(url: str, guess: str, source: str, tally: BadInputs) -> int | None:
    async with connect(url, open_timeout=UNIT, max_size=None, local_addr=(source, 0)) as ws:
        await ws.recv()
        await ws.send(guess)
        tally.sent()
        return await _close_code(ws, tally)


async def _auth_frame(url: str, guess: str, source: str, tally: BadInputs) -> int | None:
    async with connect(
        url, subprotocols=[Subprotocol(SUBPROTOCOL)], open_timeout=UNIT, max_size=None, local_addr=(source, 0)
    ) as ws:
        assert json.loads(await ws.recv())["authenticated"] is False
        await ws.send(json.dumps({"type": "auth", "password": guess}))
        tally.sent()
        return await _close_code(ws, tally)


async def _header(url: str, header: str, source: str, tally: BadInputs) -> int | None:
    tally.sent()
    try:
        async with connect(
            url,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            open_timeout=UNIT,
            additional_headers={"Authorization": header},
            local_addr=(source, 0),
        ) as ws:
            return await _close_code(ws, tally)
    except InvalidStatus as refused:  # a header the HTTP layer itself refuses
        tally.answered(status=refused.response.status_code)
        return refused.response.status_code


def _may_log(watcher: str, *texts: str) -> list[Allowed]:
    """The one member's join, leave and messages: all chat.log may hold in these tests."""
    return [*members_lines([watcher]), *(("msg", watcher, text) for text in texts)]


async def test_no_wrong_password_gets_in(start_tracker: Any) -> None:
    """Wrong, empty, long, non-ASCII, NUL, injection-like passwords in every place they can travel: all refused."""
    # The throttles are tested on their own (below, test_throttle.py): here every guess must be checked.
    tracker: RunningTracker = start_tracker("--max-frame-bytes", "262144", "--auth-guesses-per-minute", "1000")
    with BadInputs("passwords", tracker) as tally:
        watcher = await open_bot(tracker.url, PASSWORD, "watcher")
        for index, guess in enumerate(WRONG):
            plain, frame, basic_from, bearer_from = (f"127.0.{place}.{index + 1}" for place in (2, 4, 5, 6))
            assert await _plain(tracker.url, guess, plain, tally) == 4001, guess[:20]
            assert await _auth_frame(tracker.url, guess, frame, tally) == 4001, guess[:20]
            basic = "Basic " + base64.b64encode(f"user:{guess}".encode()).decode()
            if len(basic) < 8000:  # longer header lines hang in uvicorn's handshake: see docs/reliability.md
                assert await _header(tracker.url, basic, basic_from, tally) == 4001, guess[:20]
            if guess.isprintable() and guess.isascii() and guess.strip() == guess and guess and len(guess) < 1000:
                assert await _header(tracker.url, f"Bearer {guess}", bearer_from, tally) == 4001, guess[:20]
            tally.check_tracker()
        for query in (f"?password={PASSWORD}", f"?p={PASSWORD}&x=1", f"?{PASSWORD}", "?x"):
            for dialect in ([], [Subprotocol(SUBPROTOCOL)]):
                async with connect(tracker.url + query, subprotocols=dialect or None, open_timeout=UNIT) as ws:
                    tally.sent()
                    assert await _close_code(ws, tally) == 4003
        async with connect(tracker.url, subprotocols=[Subprotocol(SUBPROTOCOL)], open_timeout=UNIT) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "auth"}))  # missing
            tally.sent()
            assert await _close_code(ws, tally) == 4008
        await watcher.say("still here")
        assert (await watcher.expect("message"))["text"] == "still here"
        tally.check_tracker()
        tracker.stop()
        tally.compare_log(check_log_file(tracker.log_path), _may_log("watcher", "still here"))
        assert not any(PASSWORD in line for line in tracker.output), "the password reached the tracker's log"


async def test_50_wrong_guesses_are_refused_at_once_for_that_address_only(tracker: RunningTracker) -> None:
    """50 wrong guesses at once from one address: 3 checked (4001), the rest refused at once, unchecked (4013),
    none parked; another address gets in at once meanwhile."""
    with BadInputs("guessing", tracker) as tally:
        started = time.monotonic()
        results = await asyncio.gather(*(_plain(tracker.url, f"guess{i}", "127.0.3.1", tally) for i in range(50)))
        assert time.monotonic() - started < 2 * UNIT, "guesses were parked"
        assert sorted(code or 0 for code in results) == [4001] * 3 + [4013] * 47, results
        started = time.monotonic()
        other = await open_bot(tracker.url, PASSWORD, "other", local_addr=("127.0.3.2", 0))
        assert time.monotonic() - started < UNIT / 5, "another address was refused or slowed down too"
        await other.ws.close()
        tally.check_tracker()
        tally.compare_log(check_log_file(tracker.log_path), _may_log("other"))


async def test_idle_unauthenticated_sockets_time_out(start_tracker: Any) -> None:
    """50 sockets that never give the password are all closed 4002 after --auth-timeout; a member chats meanwhile."""
    tracker: RunningTracker = start_tracker("--auth-timeout", "1")
    with BadInputs("idle_sockets", tracker) as tally:
        idle = []
        for _ in range(50):
            idle.append(await connect(tracker.url, open_timeout=UNIT))
            tally.sent()  # the input is the silence: one socket opened and left idle
        member = await open_bot(tracker.url, PASSWORD, "member")
        codes = await asyncio.gather(*(_close_code(ws, tally) for ws in idle))
        assert codes == [4002] * 50
        await member.say("fine")
        assert (await member.expect("message"))["text"] == "fine"
        tally.check_tracker()
        tally.compare_log(check_log_file(tracker.log_path), _may_log("member", "fine"))


def _most_allowed(entries: list[LogEntry], name: str, limits: Limits) -> float:
    """What the rate limit lets ``name`` log in its flood: the burst, plus the rate for each second it went on.

    The bucket refills while the member is refused, until it is removed for flooding, so a
    flooder logs the burst and then whatever refilled in that time. chat.log's timestamps (ms)
    measure that time, from its first message to its leave; the 1 is for their rounding.
    """
    said = [e for e in entries if e.name == name and e.kind in ("msg", "leave")]
    flood_seconds = (datetime.fromisoformat(said[-1].ts) - datetime.fromisoformat(said[0].ts)).total_seconds()
    return limits.rate_burst + limits.rate_per_second * flood_seconds + 1


async def test_ten_flooders_are_closed_and_a_calm_member_keeps_its_pace(start_tracker: Any) -> None:
    """Ten members sending as fast as they can (another process): throttled, then 4006; a calm member stays fast."""
    tracker: RunningTracker = start_tracker()
    limits = Limits()  # the tracker runs with the default rate and burst
    with BadInputs("flood", tracker) as tally:
        calm = await open_bot(tracker.url, PASSWORD, "calm")
        flooders = Process(
            [sys.executable, str(Path(__file__).parent / "flooder.py"), tracker.url, PASSWORD, "10"], stdin=True
        )
        try:
            assert await asyncio.to_thread(flooders.out.next_line, time.monotonic() + 4 * UNIT) == "joined"
            flooders.send("go")
            latencies = []
            for index in range(20):
                sent = time.monotonic()
                await calm.say(f"calm {index}")
                while True:
                    message = await calm.recv()
                    if message["type"] == "message" and message["name"] == "calm":
                        break
                latencies.append(time.monotonic() - sent)
                await asyncio.sleep(0.1)
            flood = json.loads(await asyncio.to_thread(flooders.out.wait_for, bool, 4 * UNIT))
        finally:
            flooders.end()
        codes, sent_by = flood["codes"], flood["sent"]
        tally.sent(len(codes))  # a flooder is one input: its flood (how many messages that is varies by run)
        for code in codes:
            tally.answered(close_code=code)
        tally.check_tracker()
        entries = check_log_file(tracker.log_path)
        names = [f"flood{i}" for i in range(len(codes))]
        spam = [("msg", name, f"spam {n}") for name, count in zip(names, sent_by, strict=True) for n in range(count)]
        calm_said = [("msg", "calm", f"calm {n}") for n in range(len(latencies))]
        tally.compare_log(entries, [*members_lines(["calm", *names]), *spam, *calm_said])
        per_flooder = {name: sum(1 for e in entries if e.kind == "msg" and e.name == name) for name in names}
        tally.extra.update(
            burst=limits.rate_burst,
            rate_per_second=limits.rate_per_second,
            most_logged=max(per_flooder.values()),
            messages_sent=sum(sent_by),
            calm_max_latency_ms=round(1000 * max(latencies), 1),
        )
        # 4006, or cut off when its own flood keeps it from reading the close within the grace period.
        assert set(codes) <= {4006, None} and codes.count(4006) >= 1, codes
        assert max(latencies) < UNIT / 20, f"calm member waited {max(latencies):.3f} s"
        assert sorted(e.name for e in entries if e.kind == "leave" and e.text == "flooding") == names
        for name, logged in per_flooder.items():
            assert logged <= _most_allowed(entries, name, limits), (name, logged)
