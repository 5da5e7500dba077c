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

from support.bots import Bot, connect_json, open_bot, open_plain
from support.campaign import check_log_file, record
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio

JSON_MEMBERS, PLAIN_MEMBERS, HANDSHAKING = 150, 50, 10


async def _drain(ws: ClientConnection) -> tuple[int | None, list[Any]]:
    """Read until closed: the close code and the frames read."""
    frames: list[Any] = []
    try:
        async with asyncio.timeout(10 * UNIT):
            async for frame in ws:
                frames.append(frame)
    except ConnectionClosed:
        pass
    rcvd = ws.protocol.close_rcvd
    return (rcvd.code if rcvd is not None else None), frames


async def test_ctrl_c_with_200_members(start_tracker: Any) -> None:
    """Every member gets its goodbye and 1001, chat.log ends with 200 leaves and the stop, exit 0 within 5 s."""
    tracker: RunningTracker = start_tracker("--rate", "1000", "--burst", "1000")
    json_bots: list[Bot] = []
    for start in range(0, JSON_MEMBERS, 50):
        json_bots += await asyncio.gather(*(open_bot(tracker.url, PASSWORD, f"j{i}") for i in range(start, start + 50)))
    plains = await asyncio.gather(*(open_plain(tracker.url, PASSWORD, f"p{i}") for i in range(PLAIN_MEMBERS)))
    handshaking = await asyncio.gather(*(connect_json(tracker.url, PASSWORD) for _ in range(HANDSHAKING)))
    for index, bot in enumerate(json_bots[:20]):  # some chat still in flight at the signal
        await bot.say(f"last words {index}")
    readers = [asyncio.create_task(_drain(b.ws)) for b in json_bots] + [
        asyncio.create_task(_drain(ws)) for ws in (*plains, *handshaking)
    ]
    signalled = time.monotonic()
    tracker.process.send_signal(signal.SIGINT)
    status = await asyncio.to_thread(tracker.process.wait, 2 * UNIT)
    exit_seconds = time.monotonic() - signalled
    results = await asyncio.gather(*readers)
    assert status == 0
    assert exit_seconds < UNIT, f"took {exit_seconds:.2f} s"  # the promise: 5 s, one unit
    json_results, plain_results = results[:JSON_MEMBERS], results[JSON_MEMBERS : JSON_MEMBERS + PLAIN_MEMBERS]
    for code, frames in json_results:
        assert code == 1001
        assert json.loads(frames[-1]) == {
            "type": "bye",
            "reason": "shutdown",
            "message": "The tracker is shutting down. Bye.",
        }
    for code, frames in plain_results:
        assert code == 1001 and frames[-1] == "* The tracker is shutting down. Bye."
    assert all(code == 1001 for code, _ in results[JSON_MEMBERS + PLAIN_MEMBERS :])
    entries = check_log_file(tracker.log_path)
    assert entries[-1].kind == "stop"
    leaves = sorted(e.name for e in entries if e.kind == "leave" and e.text == "shutdown")
    assert len(leaves) == JSON_MEMBERS + PLAIN_MEMBERS
    logged = {e.text for e in entries if e.kind == "msg"}
    echoed = {json.loads(f)["text"] for _, frames in json_results for f in frames if '"type":"message"' in f}
    assert echoed <= logged
    tracker.wait_for_output("Tracker stopped")
    record(
        "faults",
        fault="sigint_200",
        injected=1,
        lost=0,
        torn_left=0,
        members=JSON_MEMBERS + PLAIN_MEMBERS,
        exit_seconds=round(exit_seconds, 2),
    )
