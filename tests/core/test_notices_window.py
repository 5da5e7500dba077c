"""Joins and leaves while the tracker announces many: parked for the notices' window, never ahead of a message.

A big room that people keep entering announces every join to every member: with joins further apart
than the coalescing window, each was a write of its own to everyone (12 us a notice at 10,000 members).
"""

from __future__ import annotations

import asyncio

import pytest

from chat_tracker.core.coalescer import BUSY, NOTICES_WINDOW, RATE_SECONDS, Coalescer
from chat_tracker.core.frames import text_frame
from chat_tracker.core.outbox import PARKED_AT_MOST, CloseRequest, Outbox
from support.fakes import FakeClock, FakeWire, decode_frames, drain
from support.timing import UNIT


def announce(coalescer: Coalescer, clock: FakeClock, per_second: float) -> None:
    """A look at the rate after ``per_second`` join notices a second held for members (a join storm elsewhere)."""
    crowd = [Outbox(10**6, wire=FakeWire(), coalescer=coalescer) for _ in range(10)]
    per_member = max(1, round(per_second * RATE_SECONDS / len(crowd)))
    for outbox in crowd:
        for n in range(per_member):
            outbox.push_wire(text_frame(f"joined {n}"), 1, notices=True)
    clock.advance(RATE_SECONDS)
    coalescer.flush()
    coalescer.release_parked()


def busy_with_notices() -> tuple[Coalescer, FakeClock]:
    clock = FakeClock()
    coalescer = Coalescer(0.010, clock=clock)
    coalescer.flush()  # the first look at the rate only starts the count
    announce(coalescer, clock, 2 * BUSY)
    assert coalescer.notices_busy
    return coalescer, clock


def parked(*notices: str, limit: int = 100) -> tuple[Coalescer, FakeWire, Outbox]:
    """A member's outbox while many notices are announced, with ``notices`` (joins and leaves) pushed to it."""
    coalescer, _ = busy_with_notices()
    wire = FakeWire()
    outbox = Outbox(limit, wire=wire, coalescer=coalescer)
    for notice in notices:
        outbox.push_wire(text_frame(notice), 1, notices=True)
    return coalescer, wire, outbox


@pytest.mark.anyio
async def test_a_notice_waits_for_the_notices_window_not_the_message_window_while_many_are_announced() -> None:
    coalescer, wire, outbox = parked("ann joined", "bob joined")
    coalescer.flush()  # a message window ends: the notices are not in it
    assert wire.writes == 0 and len(outbox) == 2
    coalescer.release_parked()
    assert wire.writes == 1 and decode_frames(bytes(wire.written)) == ["ann joined", "bob joined"]
    assert len(outbox) == 0


class SignallingWire(FakeWire):
    """A socket that says when it is written to."""

    def __init__(self) -> None:
        super().__init__()
        self.written_to = asyncio.Event()

    def write(self, frames: bytes) -> None:
        super().write(frames)
        self.written_to.set()


@pytest.mark.anyio
async def test_the_notices_window_ends_by_a_timer_of_its_own() -> None:
    coalescer, _ = busy_with_notices()
    wire = SignallingWire()
    outbox = Outbox(100, wire=wire, coalescer=coalescer)
    loop = asyncio.get_running_loop()
    parked_at = loop.time()
    outbox.push_wire(text_frame("ann joined"), 1, notices=True)
    await asyncio.wait_for(wire.written_to.wait(), NOTICES_WINDOW + UNIT)
    assert loop.time() - parked_at >= NOTICES_WINDOW * 0.9  # the loop's timers may fire a little early
    assert decode_frames(bytes(wire.written)) == ["ann joined"]


@pytest.mark.anyio
async def test_a_message_for_a_parked_member_goes_at_once_with_the_notices_ahead_of_it() -> None:
    coalescer, wire, outbox = parked("ann joined", "bob left")
    outbox.push_wire(text_frame("carol: hi"), 1)
    assert wire.writes == 1
    assert decode_frames(bytes(wire.written)) == ["ann joined", "bob left", "carol: hi"]
    coalescer.release_parked()
    coalescer.flush()
    assert wire.writes == 1 and len(outbox) == 0  # nothing written twice


@pytest.mark.anyio
async def test_a_member_with_many_parked_notices_gets_them_at_once() -> None:
    names = [f"m{n} joined" for n in range(PARKED_AT_MOST + 1)]
    coalescer, wire, outbox = parked(*names, limit=10 * PARKED_AT_MOST)
    assert wire.writes == 1 and decode_frames(bytes(wire.written)) == names[:PARKED_AT_MOST]
    assert len(outbox) == 1  # the next one waits for a window again
    coalescer.release_parked()
    assert decode_frames(bytes(wire.written)) == names


@pytest.mark.anyio
async def test_once_the_announcing_quietens_a_notice_waits_for_the_message_window_again() -> None:
    coalescer, clock = busy_with_notices()
    announce(coalescer, clock, BUSY / 10)
    assert not coalescer.notices_busy
    wire = FakeWire()
    outbox = Outbox(100, wire=wire, coalescer=coalescer)
    outbox.push_wire(text_frame("ann joined"), 1, notices=True)
    coalescer.flush()
    assert wire.writes == 1 and decode_frames(bytes(wire.written)) == ["ann joined"]


@pytest.mark.anyio
async def test_parked_notices_behind_a_full_socket_go_to_the_writer_in_order_or_overflow() -> None:
    coalescer, wire, outbox = parked("ann joined")
    wire.is_ready = False
    outbox.push_wire(text_frame("carol: hi"), 1)  # behind the parked notice, for the writer
    coalescer.release_parked()
    assert wire.writes == 0 and drain(outbox) == (["ann joined", "carol: hi"], None)

    overflowed: list[None] = []
    wire.is_ready = True
    small = Outbox(2, on_overflow=lambda: overflowed.append(None), wire=wire, coalescer=coalescer)
    for n in range(3):
        small.push_wire(text_frame(f"m{n} joined"), 1, notices=True)
    assert not small.overflowed  # parked frames are not behind while the socket keeps up
    wire.is_ready = False
    coalescer.release_parked()
    assert small.overflowed and overflowed == [None]


@pytest.mark.anyio
async def test_a_close_sends_the_parked_notices_before_the_goodbye() -> None:
    coalescer, wire, outbox = parked("ann joined")
    outbox.close(1001, "bye", ("goodbye",))
    coalescer.release_parked()
    assert wire.writes == 0
    assert drain(outbox) == (["ann joined", "goodbye"], CloseRequest(1001, "bye"))
