"""Rides: a busy room's held frames kept once for all its held members, each getting exactly its own sequence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chat_tracker.core.coalescer import Coalescer
from chat_tracker.core.delivery import SharedFrames
from chat_tracker.core.dialects import JSON, PLAIN, Dialect
from chat_tracker.core.events import MESSAGE, Event
from chat_tracker.core.frames import text_frame
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.ride import Ride
from support.fakes import FakeWire, decode_frames
from support.roomkit import RoomKit


class Listener:
    """What delivery needs of a member to hand it a batch's shared frames."""

    def __init__(self, dialect: Dialect, coalescer: Coalescer, limit: int = 100) -> None:
        self.dialect = dialect
        self.wire = FakeWire(ready=True)
        self.outbox = Outbox(limit, wire=self.wire, coalescer=coalescer)

    def received(self) -> list[str]:
        return decode_frames(bytes(self.wire.written))


def say(rides: dict[Dialect, Ride], listeners: list[Listener], seq: int) -> Event:
    """One message delivered to every listener, as the room delivers a batch."""
    event = Event(seq, 0.0, MESSAGE, "bob", f"m{seq}")
    shared: SharedFrames[Any] = SharedFrames([event], rides)  # a Listener has only what push_to reads
    for listener in listeners:
        shared.push_to(listener)
    shared.finish()
    return event


def riding_pair() -> tuple[Coalescer, dict[Dialect, Ride], Listener, Listener]:
    """Alice and Carol in one room: m1 written to each at once, m2 held on the room's ride."""
    coalescer = Coalescer(1.0)  # flushed by hand
    rides: dict[Dialect, Ride] = {}
    alice, carol = Listener(PLAIN, coalescer), Listener(PLAIN, coalescer)
    say(rides, [alice, carol], 1)
    say(rides, [alice, carol], 2)
    return coalescer, rides, alice, carol


@pytest.mark.anyio
async def test_held_members_ride_the_room_and_each_gets_every_frame_once_in_order() -> None:
    coalescer = Coalescer(1.0)  # flushed by hand
    rides: dict[Dialect, Ride] = {}
    listeners = [Listener(JSON, coalescer) for _ in range(3)] + [Listener(PLAIN, coalescer)]
    events = [say(rides, listeners, seq) for seq in range(1, 6)]
    assert [listener.wire.writes for listener in listeners] == [1, 1, 1, 1]  # the first at once, the rest held
    assert rides[JSON].riders == 3 and rides[PLAIN].riders == 1
    assert len(rides[JSON].chunks) == 4  # four batches kept once, not once per member
    assert [len(listener.outbox) for listener in listeners] == [4, 4, 4, 4]
    coalescer.flush()
    for listener in listeners:
        expected = [listener.dialect.shared(event) for event in events]
        assert listener.wire.writes == 2 and listener.received() == expected
    # They rode frames in this window: they stay on for the next, and what everyone took is let go.
    assert rides[JSON].riders == 3 and rides[PLAIN].riders == 1 and rides[JSON].chunks == []
    say(rides, listeners, 6)
    assert [listener.wire.writes for listener in listeners] == [2, 2, 2, 2]  # held again, without boarding
    coalescer.flush()
    coalescer.flush()  # a window that brought them nothing: they get off, and the ride empties
    for listener in listeners:
        expected = [listener.dialect.shared(event) for event in [*events, Event(6, 0.0, MESSAGE, "bob", "m6")]]
        assert listener.wire.writes == 3 and listener.received() == expected
    assert rides[JSON].riders == 0 and rides[JSON].chunks == []  # nobody left on it: emptied


@pytest.mark.anyio
async def test_a_frame_of_its_own_takes_a_rider_off_after_what_it_rode() -> None:
    """An echo, a prompt or another room's batch for one rider comes after the room's frames before it."""
    coalescer, rides, alice, carol = riding_pair()
    alice.outbox.push("* a prompt for alice alone")
    say(rides, [alice, carol], 3)  # alice gets back on
    other_room: dict[Dialect, Ride] = {}
    say(other_room, [alice], 100)  # another room's ride: off this one first
    say(rides, [alice, carol], 4)
    coalescer.flush()
    assert alice.received() == ["bob: m1", "bob: m2", "* a prompt for alice alone", "bob: m3", "bob: m100", "bob: m4"]
    assert carol.received() == ["bob: m1", "bob: m2", "bob: m3", "bob: m4"]
    coalescer.flush()  # carol rode m4 and stayed on; a window with nothing takes her off
    assert [ride.riders for ride in (*rides.values(), *other_room.values())] == [0, 0]


@pytest.mark.anyio
async def test_a_rider_closing_sends_what_it_rode_before_its_goodbye() -> None:
    coalescer, rides, alice, carol = riding_pair()
    alice.outbox.close(1001, "bye", ("goodbye",))
    say(rides, [alice, carol], 3)  # closing: nothing more for alice
    data, close = alice.outbox.take_wire_now()
    assert decode_frames(data) == ["bob: m2", "goodbye"] and close is not None and close.code == 1001
    coalescer.flush()
    coalescer.flush()  # carol stayed on after the first, and gets off after a window with nothing
    assert carol.received() == ["bob: m1", "bob: m2", "bob: m3"] and rides[PLAIN].riders == 0


@pytest.mark.anyio
async def test_a_rider_behind_a_full_socket_overflows_at_the_window_end_and_leaves_the_ride() -> None:
    coalescer = Coalescer(1.0)
    rides: dict[Dialect, Ride] = {}
    slow, quick = Listener(PLAIN, coalescer, limit=2), Listener(PLAIN, coalescer, limit=2)
    for seq in range(1, 6):
        say(rides, [slow, quick], seq)
    slow.wire.is_ready = False
    coalescer.flush()
    assert slow.outbox.overflowed and len(slow.outbox) == 0
    assert not quick.outbox.overflowed and quick.received() == [f"bob: m{seq}" for seq in range(1, 6)]
    assert rides[PLAIN].riders == 1  # quick stayed on; a window with nothing takes it off
    coalescer.flush()
    assert rides[PLAIN].riders == 0


@pytest.mark.anyio
async def test_a_rider_whose_socket_fills_leaves_its_frames_to_the_writer_in_order() -> None:
    coalescer = Coalescer(1.0)
    rides: dict[Dialect, Ride] = {}
    member = Listener(PLAIN, coalescer)
    for seq in range(1, 4):
        say(rides, [member], seq)
    member.wire.is_ready = False
    coalescer.flush()
    assert len(member.outbox) == 2 and member.outbox.ride is None
    member.outbox.push_wire(text_frame("after"), 1)
    data, _ = member.outbox.take_wire_now()
    assert member.received() == ["bob: m1"] and decode_frames(data) == ["bob: m2", "bob: m3", "after"]


@pytest.mark.anyio
async def test_a_plain_sender_riding_its_room_gets_the_others_messages_but_never_its_own(tmp_path: Path) -> None:
    """Plain-text members see no echo of their own lines: one on the room's ride must get off before it is said."""
    kit = RoomKit.create(tmp_path)
    coalescer = Coalescer(1.0)  # flushed by hand
    wires = {name: FakeWire(ready=True) for name in ("alice", "carol")}
    members = {
        name: kit.room.join(name, PLAIN, Outbox(100, wire=wire, coalescer=coalescer), "127.0.0.1")
        for name, wire in wires.items()
    }
    kit.flush()
    coalescer.flush()
    for turn in range(3):  # each says a line a turn: both ride the room between their own lines
        for name, member in members.items():
            kit.room.say(member, f"{name} {turn}")
            kit.flush()
    coalescer.flush()
    for name, wire in wires.items():
        lines = [line for line in decode_frames(bytes(wire.written)) if line.startswith(("alice: ", "carol: "))]
        other = "carol" if name == "alice" else "alice"
        assert lines == [f"{other}: {other} {turn}" for turn in range(3)], name
