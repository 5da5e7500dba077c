"""Ctrl+C (SIGINT) with 200 members (both dialects, some mid-handshake): all told, all closed, log flushed, < 5 s."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from support.bots import connect_json, open_plain
from support.campaign import check_log_file, record
from support.checker import check
from support.member_records import RecordingBot, open_recording, torn_lines, whole_entries
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio

JSON_MEMBERS, PLAIN_MEMBERS, HANDSHAKING = 150, 50, 10
BYE_LINE = "* The tracker is shutting down. Bye."


async def _drain(ws: ClientConnection, bot: RecordingBot | None = None) -> tuple[int | None, list[Any]]:
    """Read until closed: the close code and the frames read (a JSON member's noted for the checker)."""
    frames: list[Any] = []
    try:
        async with asyncio.timeout(10 * UNIT):
            async for frame in ws:
                frames.append(frame)
                if bot is not None:
                    bot.note(json.loads(frame))
    except ConnectionClosed:
        pass
    rcvd = ws.protocol.close_rcvd
    return (rcvd.code if rcvd is not None else None), frames


async def test_ctrl_c_with_200_members(start_tracker: Any) -> None:
    """Every member gets its goodbye and 1001, chat.log ends with 200 leaves and the stop, exit 0 within 5 s."""
    tracker: RunningTracker = start_tracker("--rate", "1000", "--burst", "1000")
    json_bots: list[RecordingBot] = []
    for start in range(0, JSON_MEMBERS, 50):
        batch = range(start, start + 50)
        json_bots += await asyncio.gather(*(open_recording(tracker.url, PASSWORD, f"j{i}") for i in batch))
    plains = await asyncio.gather(*(open_plain(tracker.url, PASSWORD, f"p{i}") for i in range(PLAIN_MEMBERS)))
    handshaking = await asyncio.gather(*(connect_json(tracker.url, PASSWORD) for _ in range(HANDSHAKING)))
    for index, bot in enumerate(json_bots[:20]):  # some chat still in flight at the signal
        await bot.say(f"last words {index}")
    readers = [asyncio.create_task(_drain(b.ws, b)) for b in json_bots] + [
        asyncio.create_task(_drain(ws)) for ws in (*plains, *handshaking)
    ]
    signalled = time.monotonic()
    tracker.process.send_signal(signal.SIGINT)
    status = await asyncio.to_thread(tracker.process.wait, 2 * UNIT)
    exit_seconds = time.monotonic() - signalled
    results = await asyncio.gather(*readers)
    json_results, plain_results = results[:JSON_MEMBERS], results[JSON_MEMBERS : JSON_MEMBERS + PLAIN_MEMBERS]
    entries = whole_entries(tracker.log_path)
    counts = check(entries, [bot.record() for bot in json_bots], strict=False)  # each owed what it last received
    told = sum(code == 1001 and json.loads(frames[-1])["type"] == "bye" for code, frames in json_results if frames)
    told += sum(code == 1001 and frames[-1] == BYE_LINE for code, frames in plain_results if frames)
    leaves = sorted(e.name for e in entries if e.kind == "leave" and e.text == "shutdown")
    record(
        "faults",
        fault="sigint_200",
        injected=1,
        torn_left=torn_lines(tracker.log_path),
        members_told=told,
        shutdown_leaves=len(leaves),
        exit_seconds=round(exit_seconds, 2),
        **counts.as_figures(),
    )
    assert status == 0
    assert exit_seconds < UNIT, f"took {exit_seconds:.2f} s"  # the promise: 5 s, one unit
    for code, frames in json_results:
        assert code == 1001
        assert json.loads(frames[-1]) == {
            "type": "bye",
            "reason": "shutdown",
            "message": "The tracker is shutting down. Bye.",
        }
    for code, frames in plain_results:
        assert code == 1001 and frames[-1] == BYE_LINE
    assert all(code == 1001 for code, _ in results[JSON_MEMBERS + PLAIN_MEMBERS :])
    assert check_log_file(tracker.log_path)[-1].kind == "stop"
    assert len(leaves) == JSON_MEMBERS + PLAIN_MEMBERS
    check(entries, [bot.record() for bot in json_bots])
    tracker.wait_for_output("Tracker stopped")
