"""Leaving in every way a member can: exactly one leave notice each."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time

import pytest

from chat_protocol import Left
from chat_tracker.storage.chatlog import parse_line
from support.peers import SilentMember, json_member, plain_member
from support.process import Process
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio


def leaves(tracker: RunningTracker, name: str) -> list[str]:
    """The reasons of ``name``'s leave lines in chat.log."""
    entries = [parse_line(line) for line in tracker.log_lines()]
    return [e.text for e in entries if e.kind == "leave" and e.name == name]


async def test_normal_close_gives_one_leave_notice(tracker: RunningTracker) -> None:
    """A client that closes its WebSocket normally leaves once, reason "closed"."""
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        async with plain_member(tracker.url, PASSWORD, "beta"):
            pass  # the context manager closes with 1000
        await alpha.recv()  # joined
        left = await alpha.expect(Left)
        assert (left.name, left.reason) == ("beta", "closed")
    assert leaves(tracker, "beta") == ["closed"]


async def test_abrupt_disconnect_gives_one_leave_notice(tracker: RunningTracker) -> None:
    """A connection reset without a close frame leaves once, reason "lost"."""
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        silent = await asyncio.to_thread(SilentMember, tracker.url, PASSWORD, "beta")
        await alpha.recv()  # joined
        silent.close_abruptly()
        left = await alpha.expect(Left)
        assert (left.name, left.reason) == ("beta", "lost")
    assert leaves(tracker, "beta") == ["lost"]


async def test_killed_client_process_gives_one_leave_notice(tracker: RunningTracker) -> None:
    """A client process killed with SIGKILL (as Ctrl+C gone wrong) leaves exactly once."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from websockets.asyncio.client import connect
        async def main():
            async with connect({tracker.url!r}) as ws:
                await ws.recv(); await ws.send({PASSWORD!r}); await ws.recv(); await ws.recv()
                await ws.send("beta")
                for _ in range(4): await ws.recv()
                print("joined", flush=True)
                await asyncio.sleep(3600)
        asyncio.run(main())
        """
    )
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        process = Process([sys.executable, "-c", script])
        try:
            assert await asyncio.to_thread(process.out.next_line, time.monotonic() + 4 * UNIT) == "joined"
            await alpha.recv()  # joined
            process.kill()
            left = await alpha.expect(Left)
            assert left.name == "beta"
        finally:
            process.kill()
            process.wait()
        await alpha.send(type="who")
        members = await alpha.recv()
        assert [m.name for m in members.members] == ["alpha"]  # type: ignore[union-attr]
    assert len(leaves(tracker, "beta")) == 1


async def test_vanished_peer_is_dropped_by_ping_timeout(start_tracker: object) -> None:
    """A peer that stops answering (no FIN, no pong) is dropped after ping interval + timeout."""
    tracker = start_tracker("--ping-interval", "0.5", "--ping-timeout", "0.5")  # type: ignore[operator]
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        silent = await asyncio.to_thread(SilentMember, tracker.url, PASSWORD, "beta")
        try:
            await alpha.recv()  # joined
            left = await alpha.expect(Left, timeout=4 * UNIT)
            assert (left.name, left.reason) == ("beta", "lost")
        finally:
            silent.sock.close()
    assert leaves(tracker, "beta") == ["lost"]


async def test_exit_when_empty_stops_the_tracker(start_tracker: object) -> None:
    """With --exit-when-empty the tracker exits 0 once the last member has left."""
    tracker = start_tracker("--exit-when-empty")  # type: ignore[operator]
    async with plain_member(tracker.url, PASSWORD, "alpha") as alpha:
        async with plain_member(tracker.url, PASSWORD, "beta") as beta:
            await beta.send("exit")
            await beta.closed()
        assert tracker.process.poll() is None  # alpha is still there
        await alpha.send("exit")
        await alpha.closed()
    assert await asyncio.to_thread(tracker.process.wait, 2 * UNIT) == 0
    tracker.wait_for_output("Everybody has left. Exiting...")
    assert parse_line(tracker.log_lines()[-1]).kind == "stop"


async def test_without_exit_when_empty_the_tracker_stays(tracker: RunningTracker) -> None:
    """By default the tracker keeps running after everybody has left."""
    async with plain_member(tracker.url, PASSWORD, "alpha") as alpha:
        await alpha.send("exit")
        await alpha.closed()
    async with plain_member(tracker.url, PASSWORD, "beta"):
        pass  # still serving
    assert tracker.process.poll() is None
