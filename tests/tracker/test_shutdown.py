"""Ctrl+C (SIGINT) ends the chat: every member told, close 1001, chat.log flushed, exit within 5 s.

SIGTERM is a restart: every connection closed with 1012, JSON members kept in the room for their resume.
"""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from chat_protocol import Bye
from chat_tracker.storage.chatlog import parse_line
from support.peers import SilentMember, json_member, plain_member, plain_peer
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio


async def test_shutdown_tells_every_member_and_exits_in_time(tracker: RunningTracker) -> None:
    """Members in both dialects get a goodbye and 1001; a member that reads nothing does not delay the exit."""
    async with (
        plain_member(tracker.url, PASSWORD, "alpha") as alpha,
        json_member(tracker.url, PASSWORD, "beta") as (beta, _),
        plain_peer(tracker.url) as unauthenticated,
    ):
        await unauthenticated.line()
        frozen = await asyncio.to_thread(SilentMember, tracker.url, PASSWORD, "gamma", 4096)
        try:
            await alpha.lines(2)  # beta and gamma joined
            tracker.process.send_signal(signal.SIGINT)
            assert await alpha.closed() == (1001, ["* The tracker is shutting down. Bye."])
            code, seen = await beta.closed()
            assert code == 1001 and seen[-1] == Bye(reason="shutdown", message="The tracker is shutting down. Bye.")
            assert (await unauthenticated.closed())[0] == 1001
            status = await asyncio.to_thread(tracker.process.wait, UNIT)  # the promise: gone within 5 s, one unit
        finally:
            frozen.sock.close()
    assert status == 0
    entries = [parse_line(line) for line in tracker.log_lines()]
    assert entries[-1].kind == "stop"
    assert sorted(e.name for e in entries if e.kind == "leave" and e.text == "shutdown") == ["alpha", "beta", "gamma"]
    tracker.wait_for_output("Tracker stopped")


async def test_sigterm_is_a_restart_json_members_stay_plain_ones_leave(tracker: RunningTracker) -> None:
    """SIGTERM: 1012 for everyone, bye ``restart``; only the plain members' leaves are logged; room.json keeps beta."""
    async with (
        plain_member(tracker.url, PASSWORD, "alpha") as alpha,
        json_member(tracker.url, PASSWORD, "beta") as (beta, _),
        plain_peer(tracker.url) as unauthenticated,
    ):
        await unauthenticated.line()
        await alpha.lines(1)  # beta joined
        tracker.process.send_signal(signal.SIGTERM)
        assert await alpha.closed() == (1012, ["* The tracker is restarting; you will be reconnected."])
        code, seen = await beta.closed()
        assert code == 1012 and seen[-1] == Bye(
            reason="restart", message="The tracker is restarting; you will be reconnected."
        )
        assert (await unauthenticated.closed())[0] == 1012
        status = await asyncio.to_thread(tracker.process.wait, UNIT)
    assert status == 0
    entries = [parse_line(line) for line in tracker.log_lines()]
    assert entries[-1].kind == "stop" and entries[-1].text == "tracker stopped for a restart"
    assert [(e.name, e.text) for e in entries if e.kind == "leave"] == [("alpha", "shutdown")]
    checkpoint = json.loads((tracker.data_dir / "room.json").read_text())
    assert [m["name"] for m in checkpoint["members"]] == ["beta"] and checkpoint["seq"] == entries[-1].seq
