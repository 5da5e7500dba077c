"""Riders stay on: a member that rode a room's frames in a window rides the next without being visited or boarding.

While a room keeps busy, its riders write what they rode at each window's end and stay on, held for the
next window: the room leaves them out of its batches, and the ride lets go of what everyone took. A window
that brings a rider nothing takes it off. A ride's batch after a pause (longer than frames keep coming) is
not held for a window: its riders get off and it is written at once, as a quiet member's frame is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chat_tracker.core.coalescer import Coalescer
from chat_tracker.core.dialects import JSON, PLAIN, Dialect
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room import Member
from chat_tracker.core.room.roster import WALK_FROM
from support.fakes import FakeClock, FakeWire, decode_frames
from support.roomkit import RoomKit

SIZE = WALK_FROM + 4


class BusyRoom:
    """A room of SIZE on a fake clock, every join out and every window closed (flushed by hand)."""

    def __init__(self, tmp_path: Path, speaker: Dialect = PLAIN) -> None:
        self.kit = RoomKit.create(tmp_path)
        self.clock = FakeClock()
        self.coalescer = Coalescer(1.0, clock=self.clock)
        self.wires = {f"m{index}": FakeWire(ready=True) for index in range(SIZE)}
        self.members: dict[str, Member] = {
            name: self.kit.room.join(
                name, speaker if name == "m0" else PLAIN, Outbox(1_000, wire=wire, coalescer=self.coalescer), "::1"
            )
            for name, wire in self.wires.items()
        }
        self.kit.flush()
        self.coalescer.flush()
        self.speaker = self.members["m0"]

    def say(self, text: str) -> None:
        self.kit.room.say(self.speaker, text)
        self.kit.flush()

    def visited(self) -> list[str]:
        return sorted(member.name for member in self.kit.room._by_id.visiting(set()))

    def heard(self, name: str) -> list[str]:
        return [line for line in decode_frames(bytes(self.wires[name].written)) if line.startswith("m0: ")]

    def riding(self) -> int:
        return sum(ride.riders for ride in self.kit.room._rides.values())


def listeners(room: BusyRoom) -> list[str]:
    return [name for name in room.members if name != "m0"]


@pytest.mark.anyio
async def test_a_busy_rooms_riders_stay_on_window_after_window_and_get_every_line_once_in_order(tmp_path: Path) -> None:
    room = BusyRoom(tmp_path)
    room.say("line 0")  # written at once to everyone: a window opens
    lines = 1
    for window in range(5):
        for _ in range(3):
            room.say(f"line {lines}")
            lines += 1
        writes = [room.wires[name].writes for name in listeners(room)]
        room.clock.advance(0.005)  # frames keep coming well within a window of each other
        room.coalescer.flush()
        assert [room.wires[name].writes for name in listeners(room)] == [count + 1 for count in writes]
        assert room.visited() == ["m0"], f"window {window}: riders visited"  # still on: left out of the batches
        assert room.riding() == len(listeners(room))
        assert all(ride.chunks == [] for ride in room.kit.room._rides.values())  # what everyone took is let go
    room.coalescer.flush()  # a window that brought them nothing: off, and visited again
    assert room.riding() == 0 and room.visited() == sorted(room.members)
    for name in listeners(room):
        assert room.heard(name) == [f"m0: line {index}" for index in range(lines)], name


@pytest.mark.anyio
async def test_riders_that_stayed_on_hold_the_next_line_for_the_window_while_lines_keep_coming(tmp_path: Path) -> None:
    room = BusyRoom(tmp_path)
    room.say("first")
    room.say("second")  # held: the riders get on
    room.clock.advance(0.002)
    room.coalescer.flush()  # they write "second" and stay on
    room.say("third")  # right after: a window opens for it
    await asyncio.sleep(0)  # one turn of the event loop, no time: nothing is due yet
    assert room.heard("m1") == ["m0: first", "m0: second"]
    room.coalescer.flush()
    assert room.heard("m1") == ["m0: first", "m0: second", "m0: third"]


@pytest.mark.anyio
@pytest.mark.parametrize("speaker", [PLAIN, JSON], ids=["no window open", "the speaker's echo opened one"])
async def test_after_a_pause_a_riders_next_line_is_written_at_once_not_held_for_a_window(
    tmp_path: Path, speaker: Dialect
) -> None:
    room = BusyRoom(tmp_path, speaker)
    room.say("first")
    room.say("second")
    room.coalescer.flush()  # the riders stay on, and no window is open
    room.clock.advance(10.0)  # a pause: lines no longer keep coming
    room.say("after the pause")
    for name in listeners(room):
        assert room.heard(name) == ["m0: first", "m0: second", "m0: after the pause"], name
    assert room.riding() == 0 and room.visited() == sorted(room.members)  # off: quiet members again
    room.say("right after")  # within the window the first line opened: held, on the ride again
    assert room.heard("m1")[-1] == "m0: after the pause" and room.riding() == len(listeners(room))
    room.coalescer.flush()  # they rode a line in this window: written, and on for the next (flushed once each)
    assert room.heard("m1")[-1] == "m0: right after" and room.riding() == len(listeners(room))


@pytest.mark.anyio
async def test_a_rider_that_stayed_on_gets_a_frame_of_its_own_after_what_it_rode(tmp_path: Path) -> None:
    room = BusyRoom(tmp_path)
    room.say("first")
    room.say("second")
    room.coalescer.flush()
    room.clock.advance(10.0)
    rider = room.members["m1"]
    rider.outbox.push("* a prompt for m1 alone")  # no window open: one is asked for, and it goes out
    await asyncio.sleep(0)
    said = decode_frames(bytes(room.wires["m1"].written))
    assert said[-3:] == ["m0: first", "m0: second", "* a prompt for m1 alone"]
    assert rider.outbox.ride is None and "m1" in room.visited()  # off the ride: the room visits it again
