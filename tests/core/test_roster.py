"""The roster: a saturated room leaves the members on its ride out of each batch, and loses nothing by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_tracker.core.coalescer import Coalescer
from chat_tracker.core.dialects import PLAIN
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room import Member
from chat_tracker.core.room.roster import WALK_FROM
from support.fakes import FakeWire, decode_frames
from support.roomkit import RoomKit

SIZE = WALK_FROM + 8  # a room large enough to keep its walk


def busy_room(tmp_path: Path) -> tuple[RoomKit, Coalescer, dict[str, FakeWire], dict[str, Member]]:
    """A room of SIZE, every join out and every window closed (the coalescer is flushed by hand)."""
    kit = RoomKit.create(tmp_path)
    coalescer = Coalescer(1.0)
    wires = {f"m{index}": FakeWire(ready=True) for index in range(SIZE)}
    members = {
        name: kit.room.join(name, PLAIN, Outbox(1_000, wire=wire, coalescer=coalescer), "127.0.0.1")
        for name, wire in wires.items()
    }
    kit.flush()
    coalescer.flush()
    return kit, coalescer, wires, members


def said_lines(wire: FakeWire) -> list[str]:
    return [line for line in decode_frames(bytes(wire.written)) if line.startswith("m") and ": " in line]


def visited(kit: RoomKit, concerned: set[int | None]) -> list[str]:
    return sorted(member.name for member in kit.room._by_id.visiting(concerned))


@pytest.mark.anyio
async def test_riders_are_left_out_of_the_next_batches_and_each_member_still_gets_every_line_in_order(
    tmp_path: Path,
) -> None:
    kit, coalescer, wires, members = busy_room(tmp_path)
    speaker = members["m0"]
    for turn in range(4):  # within one window: after the first lines, everyone but the speaker rides
        kit.room.say(speaker, f"line {turn}")
        kit.flush()
    # A batch of shared frames visits only the speaker (its own lines took it off the ride) ...
    assert visited(kit, set()) == ["m0"]
    assert visited(kit, {members["m3"].id}) == ["m0", "m3"]  # ... and the riders it concerns
    coalescer.flush()  # the window ends: every rider writes what it rode and stays on, still left out
    assert visited(kit, set()) == ["m0"]
    coalescer.flush()  # a window that brought them nothing: they get off, and are visited again
    assert visited(kit, set()) == sorted(members)
    kit.room.say(members["m1"], "after the window")
    kit.flush()
    coalescer.flush()
    for name, wire in wires.items():
        expected = [f"m0: line {turn}" for turn in range(4)] + ["m1: after the window"]
        if name in ("m0", "m1"):  # plain-text members get no echo of their own lines
            expected = [line for line in expected if not line.startswith(f"{name}: ")]
        assert said_lines(wire) == expected, name


@pytest.mark.anyio
async def test_a_member_who_leaves_while_riding_is_not_visited_again_and_one_who_joins_is(tmp_path: Path) -> None:
    kit, coalescer, wires, members = busy_room(tmp_path)
    for turn in range(2):
        kit.room.say(members["m0"], f"line {turn}")
        kit.flush()
    kit.room.leave(members["m5"], "exit")
    kit.flush()
    late_wire = FakeWire(ready=True)
    kit.room.join("late", PLAIN, Outbox(1_000, wire=late_wire, coalescer=coalescer), "127.0.0.1")
    kit.flush()
    coalescer.flush()
    assert "m5" not in visited(kit, set()) and "late" in visited(kit, set())
    kit.room.say(members["m1"], "for the late one")
    kit.flush()
    coalescer.flush()
    assert said_lines(late_wire) == ["m1: for the late one"]
    assert "m1: for the late one" not in said_lines(wires["m5"])


@pytest.mark.anyio
async def test_a_room_that_grows_to_walk_from_starts_its_walk_without_its_riders(tmp_path: Path) -> None:
    kit = RoomKit.create(tmp_path)
    coalescer = Coalescer(1.0)
    first = [
        kit.room.join(f"m{index}", PLAIN, Outbox(1_000, wire=FakeWire(), coalescer=coalescer), "127.0.0.1")
        for index in range(WALK_FROM - 1)
    ]
    kit.flush()
    coalescer.flush()
    for turn in range(2):  # the small room's members ride: it keeps no walk, so they are visited
        kit.room.say(first[0], f"line {turn}")
        kit.flush()
    assert len(visited(kit, set())) == WALK_FROM - 1
    kit.room.join("grown", PLAIN, Outbox(1_000, wire=FakeWire(), coalescer=coalescer), "127.0.0.1")
    # Its walk starts now: without the riders (the joiner is not on a ride, nor yet delivered).
    assert visited(kit, set()) == ["grown", "m0"]
    kit.flush()
    coalescer.flush()
    assert len(visited(kit, set())) == WALK_FROM
