"""chat.log survives SIGKILL and torn writes; its sequence continues across restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from chat_protocol import ChatMessage
from chat_tracker.storage.chatlog import parse_line
from support.peers import json_member
from support.timing import UNIT
from support.tracker import PASSWORD

pytestmark = pytest.mark.anyio


async def test_every_message_seen_is_in_chat_log_after_sigkill(start_tracker: object, tmp_path: object) -> None:
    """Messages a member received are in chat.log exactly once even when the tracker is SIGKILLed."""
    tracker = start_tracker("--rate", "100000", "--burst", "100000")  # type: ignore[operator]
    seen: list[tuple[int, str]] = []
    async with (
        json_member(tracker.url, PASSWORD, "alpha") as (alpha, _),
        json_member(tracker.url, PASSWORD, "beta") as (beta, _),
    ):
        await alpha.recv()  # beta joined

        async def read() -> None:
            while True:
                message = await alpha.recv()
                if isinstance(message, ChatMessage):
                    seen.append((message.seq, message.text))
                    if len(seen) == 200:
                        tracker.process.send_signal(signal.SIGKILL)  # mid-stream, beta still sending

        reader = asyncio.create_task(read())
        try:
            for index in range(1000):
                await beta.send(type="message", text=f"message {index}")
        except Exception:
            pass  # the tracker died under us
        await asyncio.to_thread(tracker.process.wait, 2 * UNIT)
        # Whatever httpx-ws raises for a connection that died (disconnect, network error or the
        # read timeout): the reader must end, its exception type is not what this test is about.
        with pytest.raises(Exception):  # noqa: B017, PT011
            await reader
    assert len(seen) >= 200
    logged = {(e.seq, e.text) for e in map(parse_line, tracker.log_lines()) if e.kind == "msg"}
    assert set(seen) <= logged
    texts = [e.text for e in map(parse_line, tracker.log_lines()) if e.kind == "msg"]
    assert len(texts) == len(set(texts))  # each exactly once

    before_restart = tracker.log_lines()
    last_seq = parse_line(before_restart[-1]).seq
    restarted = start_tracker(data_dir=tracker.data_dir)  # type: ignore[operator]
    first_new = parse_line(restarted.log_lines()[len(before_restart)])
    assert (first_new.kind, first_new.seq) == ("start", last_seq + 1)


async def test_torn_last_line_is_repaired_at_start(start_tracker: object, tmp_path: object) -> None:
    """A half-written last line (crash mid-write) is cut off at start-up and the sequence continues.

    alpha was in the room when the tracker died: it comes back as away and, with no grace, leaves (``lost``).
    """
    data_dir = tmp_path / "torn"  # type: ignore[operator]
    data_dir.mkdir()
    whole = "1 2026-01-01T00:00:00.000Z start - tracker started\n2 2026-01-01T00:00:01.000Z join alpha\n"
    (data_dir / "chat.log").write_text(whole + "3 2026-01-01T00:00:02.000Z msg alpha half a mess", encoding="utf-8")
    tracker = start_tracker(data_dir=data_dir)  # type: ignore[operator]
    tracker.wait_for_output("removed a torn last line of")
    lines = tracker.log_lines()
    assert lines[:2] == whole.splitlines()
    assert parse_line(lines[2]).seq == 3 and parse_line(lines[2]).kind == "start"
    async with json_member(tracker.url, PASSWORD, "beta") as (_, welcome):
        assert welcome.seq == 5
    assert tracker.log_lines()[3].split(" ", 2)[2] == "leave alpha lost"


def test_unparseable_chat_log_refuses_to_start(tmp_path: object) -> None:
    """A data directory whose chat.log is not ours makes the tracker refuse, one line, exit status 2."""
    data_dir = tmp_path / "foreign"  # type: ignore[operator]
    data_dir.mkdir()
    (data_dir / "chat.log").write_text("this is not a chat log\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "chat_tracker", "--port", "0", "--data-dir", str(data_dir)],
        env={**os.environ, "TRACKER_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=UNIT,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("chat-tracker: error:") and "move it aside" in result.stderr
    assert result.stderr.count("\n") == 1
