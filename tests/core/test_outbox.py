"""A member's outbox: bounded, ordered, and closed after its final frames."""

from __future__ import annotations

import asyncio

import pytest

from chat_tracker.core.coalescer import Coalescer
from chat_tracker.core.frames import text_frame
from chat_tracker.core.outbox import CloseRequest, Outbox
from support.fakes import FakeWire, decode_frames, drain
from support.timing import UNIT


def test_overflow_at_limit_plus_one_drops_frames_and_calls_back_once() -> None:
    """Up to ``limit`` frames queue; frame limit+1 drops the queue and calls on_overflow exactly once."""
    calls: list[None] = []
    outbox = Outbox(3, on_overflow=lambda: calls.append(None))
    for frame in ("1", "2", "3"):
        outbox.push(frame)
    assert len(outbox) == 3 and not outbox.overflowed and calls == []
    outbox.push("4")
    assert outbox.overflowed and outbox.closing and len(outbox) == 0
    outbox.push("5")
    outbox.push_texts(["6", "7"])
    outbox.close(1000, "bye", ("final",))
    assert calls == [None] and len(outbox) == 0


def test_push_many_overflows_as_a_whole() -> None:
    """A batch that would take the queue past its limit overflows it, even when pushed at once."""
    calls: list[None] = []
    outbox = Outbox(3, on_overflow=lambda: calls.append(None))
    outbox.push_texts(["1", "2", "3"])
    assert not outbox.overflowed
    outbox.push_texts(["4"])
    assert outbox.overflowed and calls == [None]


@pytest.mark.anyio
async def test_take_returns_frames_in_order() -> None:
    """take() returns everything queued, oldest first, and then waits for more."""
    outbox = Outbox(10)
    outbox.push("a")
    outbox.push_texts(["b", "c"])
    assert await outbox.take() == (["a", "b", "c"], None)
    waiting = asyncio.ensure_future(outbox.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    outbox.push("d")
    assert await asyncio.wait_for(waiting, UNIT / 5) == (["d"], None)


@pytest.mark.anyio
async def test_close_sends_final_frames_then_the_close() -> None:
    """close() queues its final frames after what is waiting, then the close request; later pushes are ignored."""
    outbox = Outbox(10)
    outbox.push("queued")
    outbox.close(1001, "tracker shutting down", ("bye",))
    outbox.push("too late")
    outbox.push_texts(["also too late"])
    outbox.close(4006, "second close loses")
    assert await outbox.take() == (["queued", "bye"], CloseRequest(1001, "tracker shutting down"))
    assert await outbox.take() == ([], CloseRequest(1001, "tracker shutting down"))


@pytest.mark.anyio
async def test_close_wakes_a_waiting_writer() -> None:
    """A writer waiting on an empty outbox wakes up for a close without frames."""
    outbox = Outbox(10)
    waiting = asyncio.ensure_future(outbox.take())
    await asyncio.sleep(0)
    outbox.close(1000)
    assert await asyncio.wait_for(waiting, UNIT / 5) == ([], CloseRequest(1000, ""))


@pytest.mark.anyio
async def test_overflow_wakes_a_waiting_writer_with_nothing() -> None:
    """After an overflow a waiting writer gets ([], None): it must stop, there is nothing left to send."""
    outbox = Outbox(1)
    outbox.push("x")
    assert await outbox.take() == (["x"], None)
    waiting = asyncio.ensure_future(outbox.take())
    await asyncio.sleep(0)
    outbox.push_texts(["1", "2"])
    assert await asyncio.wait_for(waiting, UNIT / 5) == ([], None)
    assert await outbox.take() == ([], None)


def test_wired_outbox_writes_at_once_when_the_socket_keeps_up() -> None:
    """With a ready socket and nothing queued, frames are written straight away and nothing is queued."""
    wire = FakeWire(ready=True)
    outbox = Outbox(2, wire=wire)
    outbox.push("hello")
    outbox.push_wire(text_frame("a") + text_frame("b"), 2)
    assert len(outbox) == 0 and decode_frames(bytes(wire.written)) == ["hello", "a", "b"]


def test_wired_outbox_queues_behind_a_busy_socket_and_counts_frames() -> None:
    """Behind a full socket, frames queue in order; joined frames count one by one toward the limit."""
    calls: list[None] = []
    wire = FakeWire(ready=False)
    outbox = Outbox(3, on_overflow=lambda: calls.append(None), wire=wire)
    outbox.push("1")
    outbox.push_wire(text_frame("2") + text_frame("3"), 2)
    assert len(outbox) == 3 and not outbox.overflowed
    wire.is_ready = True
    outbox.push("4")  # still queued: it must not overtake 1-3
    assert outbox.overflowed and calls == [None] and wire.written == b""


def test_wired_close_frames_its_final_texts() -> None:
    """On a wired outbox the final texts of close() are queued as WebSocket frames before the close request."""
    wire = FakeWire(ready=False)
    outbox = Outbox(5, wire=wire)
    outbox.push("queued")
    outbox.close(1001, "tracker shutting down", ("bye",))
    assert drain(outbox) == (["queued", "bye"], CloseRequest(1001, "tracker shutting down"))


# --- coalescing (--coalesce-ms) ---------------------------------------------------------


@pytest.mark.anyio
async def test_a_quiet_member_gets_its_frame_at_once_and_the_rest_of_the_window_in_one_write() -> None:
    """Adaptive coalescing: the first frame of a window goes out at once; those after it, together at its end."""
    coalescer = Coalescer(0.01)
    wires = [FakeWire(ready=True), FakeWire(ready=True)]
    outboxes = [Outbox(100, wire=wire, coalescer=coalescer) for wire in wires]
    for n in range(5):
        for outbox in outboxes:
            outbox.push_wire(text_frame(f"m{n}"), 1)
    assert [wire.writes for wire in wires] == [1, 1] and [len(o) for o in outboxes] == [4, 4]
    await asyncio.sleep(0.05)
    assert [wire.writes for wire in wires] == [2, 2]
    assert [decode_frames(bytes(wire.written)) for wire in wires] == [[f"m{n}" for n in range(5)]] * 2
    assert [len(o) for o in outboxes] == [0, 0]
    outboxes[0].push_wire(text_frame("next"), 1)  # the window is over: quiet again, so at once
    assert wires[0].writes == 3 and decode_frames(bytes(wires[0].written))[-1] == "next"


@pytest.mark.anyio
async def test_a_socket_that_fills_during_the_window_leaves_the_frames_to_the_writer() -> None:
    """Held frames are never lost or reordered when the socket stops keeping up before the flush."""
    coalescer = Coalescer(0.01)
    wire = FakeWire(ready=True)
    outbox = Outbox(100, wire=wire, coalescer=coalescer)
    outbox.push_wire(text_frame("a"), 1)  # at once
    outbox.push_wire(text_frame("b"), 1)  # held for the window's end
    wire.is_ready = False
    outbox.push_wire(text_frame("c"), 1)
    coalescer.flush()
    assert wire.writes == 1 and len(outbox) == 2
    assert decode_frames(bytes(wire.written)) == ["a"] and drain(outbox) == (["a", "b", "c"], None)


@pytest.mark.anyio
async def test_a_close_during_the_window_sends_held_frames_first() -> None:
    """close() lines its goodbye up behind the held frames; the flush then writes nothing twice."""
    coalescer = Coalescer(0.01)
    wire = FakeWire(ready=True)
    outbox = Outbox(100, wire=wire, coalescer=coalescer)
    outbox.push_wire(text_frame("first"), 1)
    outbox.push_wire(text_frame("held"), 1)
    outbox.close(1001, "bye", ("goodbye",))
    coalescer.flush()
    assert wire.writes == 1
    assert drain(outbox) == (["first", "held", "goodbye"], CloseRequest(1001, "bye"))


@pytest.mark.anyio
async def test_held_frames_count_toward_the_limit_only_behind_a_full_socket() -> None:
    """A window's frames are not "behind" while the socket keeps up; at a full socket they overflow (4007)."""
    calls: list[None] = []
    wire = FakeWire(ready=True)
    coalescer = Coalescer(1.0)
    outbox = Outbox(3, on_overflow=lambda: calls.append(None), wire=wire, coalescer=coalescer)
    for n in range(5):
        outbox.push_wire(text_frame(str(n)), 1)  # one at once, four held: one more than the limit
    coalescer.flush()
    assert not outbox.overflowed and decode_frames(bytes(wire.written)) == ["0", "1", "2", "3", "4"]
    for n in range(5):
        outbox.push_wire(text_frame(str(n)), 1)
    wire.is_ready = False
    coalescer.flush()
    assert outbox.overflowed and calls == [None] and len(outbox) == 0


def test_the_shortest_window_is_a_tenth_of_the_longest_and_never_above_a_millisecond() -> None:
    """A long --coalesce-ms gathers more in a busy room; a quiet room's second frame still waits 1 ms at most."""
    assert Coalescer(0.002).shortest == pytest.approx(0.0002)
    assert Coalescer(0.010).shortest == pytest.approx(0.001)
    assert Coalescer(0.030).shortest == pytest.approx(0.001)


def test_a_coalescing_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Coalescer(0)


@pytest.mark.anyio
async def test_the_window_grows_while_holding_pays_and_shrinks_when_it_does_not() -> None:
    """Several frames per member per window, or windows close together, lengthen it; lone frames shorten it."""
    now = [0.0]
    coalescer = Coalescer(0.010, clock=lambda: now[0])  # not above 10 ms: the ceiling of a tracker not busy
    shortest = coalescer.shortest
    assert shortest == pytest.approx(0.001)  # a tenth of the longest, but never above a millisecond
    assert coalescer.window == pytest.approx(shortest)  # it starts short: a quiet room pays little
    wires = [FakeWire(ready=True) for _ in range(4)]
    outboxes = [Outbox(100, wire=wire, coalescer=coalescer) for wire in wires]
    for _ in range(20):  # busy: every member gets two frames a window (9 steps of 1 ms reach 10)
        for outbox in outboxes:
            outbox.push_wire(text_frame("a"), 1)
            outbox.push_wire(text_frame("b"), 1)
        coalescer.flush()
    assert coalescer.window == pytest.approx(0.010)  # a step at a time up to the longest, no further
    for _ in range(6):  # quiet: one frame a window, each window a second after the last
        now[0] += 1.0
        for outbox in outboxes:
            outbox.push_wire(text_frame("c"), 1)
        coalescer.flush()
    assert coalescer.window == pytest.approx(shortest)  # halved down to the shortest, no further
    assert [len(decode_frames(bytes(wire.written))) for wire in wires] == [46] * 4  # nothing lost on the way
    for _ in range(3):  # one frame a window again, but the windows follow each other closely: holding would pay
        now[0] += 0.004
        for outbox in outboxes:
            outbox.push_wire(text_frame("d"), 1)
        coalescer.flush()
    assert coalescer.window == pytest.approx(shortest * 4)


@pytest.mark.anyio
async def test_steady_traffic_keeps_gathering_after_a_window_ends() -> None:
    """Frames that keep coming less than a window apart wait for the next window too: one write per window."""
    now = [0.0]
    coalescer = Coalescer(0.010, clock=lambda: now[0])
    wire = FakeWire(ready=True)
    outbox = Outbox(100, wire=wire, coalescer=coalescer)
    outbox.push_wire(text_frame("first"), 1)  # quiet until now: at once
    outbox.push_wire(text_frame("second"), 1)
    now[0] += 0.010
    coalescer.flush()
    assert wire.writes == 2
    now[0] += 0.0005  # the next frame comes sooner after the window than the window lasts: steady, so it waits
    outbox.push_wire(text_frame("third"), 1)
    assert wire.writes == 2 and len(outbox) == 1
    now[0] += 0.010
    coalescer.flush()
    now[0] += 1.0  # a second of silence: quiet again, at once
    outbox.push_wire(text_frame("fourth"), 1)
    assert wire.writes == 4 and decode_frames(bytes(wire.written)) == ["first", "second", "third", "fourth"]
