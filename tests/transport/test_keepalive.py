"""Keepalive pings, gathered by the moment they are due: never early, and a stopped connection pings no more."""

from __future__ import annotations

import asyncio

import pytest

from chat_tracker.transport.keepalive import RESOLUTION_PER_INTERVAL, Keepalive, ping_schedule
from support.timing import UNIT

pytestmark = pytest.mark.anyio

INTERVAL = UNIT / 25


class Peer:
    """A connection that notes when it was pinged and whether it was found silent."""

    def __init__(self) -> None:
        self.pinged: list[float] = []
        self.payloads: list[bytes] = []
        self.silenced = asyncio.Event()
        self.ping_seen = asyncio.Event()

    def send_ping(self, payload: bytes) -> bool:
        self.pinged.append(asyncio.get_running_loop().time())
        self.payloads.append(payload)
        self.ping_seen.set()
        return True

    def silent(self) -> None:
        self.silenced.set()


async def test_a_ping_comes_after_the_interval_and_no_later_than_its_resolution() -> None:
    peer = Peer()
    keepalive = Keepalive(INTERVAL, UNIT, peer)
    started = asyncio.get_running_loop().time()
    keepalive.start()
    await asyncio.wait_for(peer.ping_seen.wait(), UNIT)
    keepalive.stop()
    late = peer.pinged[0] - started - INTERVAL
    assert 0 <= late < INTERVAL / RESOLUTION_PER_INTERVAL + INTERVAL  # one resolution, plus the loop's own lag


async def test_a_stopped_connection_is_not_pinged_but_the_others_are() -> None:
    stopped, going = Peer(), Peer()
    first, second = Keepalive(INTERVAL, UNIT, stopped), Keepalive(INTERVAL, UNIT, going)
    first.start()
    second.start()
    first.stop()
    await asyncio.wait_for(going.ping_seen.wait(), UNIT)
    second.stop()
    assert stopped.pinged == []


async def test_an_answered_ping_schedules_the_next_and_an_unanswered_one_silences() -> None:
    peer = Peer()
    keepalive = Keepalive(INTERVAL, INTERVAL, peer)
    keepalive.start()
    await asyncio.wait_for(peer.ping_seen.wait(), UNIT)
    peer.ping_seen.clear()
    keepalive.pong(peer.payloads[-1])
    await asyncio.wait_for(peer.ping_seen.wait(), UNIT)  # the next ping, a whole interval later
    await asyncio.wait_for(peer.silenced.wait(), UNIT)  # nobody answers this one
    assert len(peer.pinged) == 2
    assert peer.pinged[1] - peer.pinged[0] >= INTERVAL


def test_one_loop_keeps_one_schedule() -> None:
    async def schedule_id() -> int:
        return id(ping_schedule())

    with asyncio.Runner() as runner:
        assert runner.run(schedule_id()) == runner.run(schedule_id())
