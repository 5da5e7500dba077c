"""Disk full under chat.log (a real tmpfs): refused clearly, no torn line, everything delivered when space returns."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.bots import Bot, connect_json
from support.campaign import check_log_file, record
from support.checker import check
from support.disk import fill
from support.member_records import open_recording, torn_lines, whole_entries
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, launch_tracker

pytestmark = pytest.mark.anyio


async def _echo(bot: Bot, text: str, timeout: float) -> dict[str, Any] | None:
    """Send ``text``; return its echo, an error, or None if nothing came in time."""
    await bot.say(text)
    try:
        while True:
            message = await bot.recv(timeout)
            if message["type"] == "error" or (message["type"] == "message" and message["text"] == text):
                return message
    except TimeoutError:
        return None


async def health(tracker: RunningTracker) -> dict[str, Any]:
    async with httpx.AsyncClient(trust_env=False, timeout=UNIT) as client:
        return (await client.get(f"{tracker.http_url}/healthz")).json()  # type: ignore[no-any-return]


async def test_disk_full_refuses_cleanly_and_recovers(small_disk: Path) -> None:
    """On ENOSPC: no torn line, log_unavailable for new messages and joins, delivery in order when space returns."""
    tracker = launch_tracker(small_disk)
    try:
        alpha = await open_recording(tracker.url, PASSWORD, "alpha")
        beta = await open_recording(tracker.url, PASSWORD, "beta")
        await alpha.expect("joined")
        filler = fill(small_disk)
        delivered, pending = [], None
        for index in range(200):  # long messages until one is not written: the page's slack runs out
            text = f"{index:03d} " + "long message " * 140
            answer = await _echo(alpha, text, timeout=0.3 * UNIT)
            if answer is None:
                pending = text
                break
            assert answer["type"] == "message", answer
            delivered.append(text)
        assert pending is not None, "the disk never filled"
        tracker.wait_for_output("Cannot write chat.log")
        check_log_file(tracker.log_path)  # whole lines only: the failed write was cut back
        refused = await _echo(alpha, "while full", timeout=UNIT)
        assert refused is not None and refused["code"] == "log_unavailable"
        assert (await health(tracker))["log_writable"] is False
        gamma = await asyncio.wait_for(_join_refused(tracker), 2 * UNIT)
        assert gamma == "log_unavailable"
        refusals = [e["code"] for e in alpha.frames.errors if e["code"] == "log_unavailable"] + [gamma]

        filler.unlink()  # space returns
        tracker.wait_for_output("chat.log is writable again", timeout=3 * UNIT)
        for bot in (alpha, beta):
            texts = []
            while pending not in texts:
                message = await bot.recv(2 * UNIT)
                if message["type"] == "message":
                    texts.append(message["text"])
            assert texts[-1] == pending and texts.count(pending) == 1
        after = await _echo(alpha, "after recovery", timeout=UNIT)
        assert after is not None and after["type"] == "message"
        assert (await health(tracker))["log_writable"] is True
        await alpha.ws.close()
        await beta.ws.close()
        assert tracker.stop() == 0
    finally:
        tracker.kill()
    records = [alpha.record(until=after["seq"]), beta.record()]  # beta read up to the pending message
    counts = check(whole_entries(tracker.log_path), records, strict=False)
    record(
        "faults",
        fault="disk_full",
        injected=1,
        torn_left=torn_lines(tracker.log_path),
        refused_while_full=len(refusals),
        **counts.as_figures(),
    )
    entries = check_log_file(tracker.log_path)
    check(entries, records)
    texts = [e.text for e in entries if e.kind == "msg"]
    assert texts == [*delivered, pending, "after recovery"]
    assert not any("Traceback" in line for line in tracker.output)


async def _join_refused(tracker: RunningTracker) -> str:
    """A newcomer's join while chat.log is unwritable: the error code it gets."""
    ws = await connect_json(tracker.url, PASSWORD)
    try:
        await ws.send('{"type":"join","name":"gamma"}')
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "error":
                return str(message["code"])
    finally:
        await ws.close()
