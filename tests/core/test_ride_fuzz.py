"""Rides under random traffic: members in several rooms, their own frames, full sockets and window ends.

Whatever happens, each member receives every frame queued for it exactly once, in the order it was
queued: a room's batches (shared, possibly on the room's ride, or parked when only joins and leaves
while the tracker announces many), its own frames (an echo, a prompt). A rider that rode frames in a window
stays on for the next; after a pause, the next frames for it are written once the loop turns.
Each room hands a batch only to the members its roster visits (``core/room/roster.py``, keeping its
walk from the first member): its riders are left out until they get off.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_tracker.core.coalescer import Coalescer
from chat_tracker.core.delivery import SharedFrames
from chat_tracker.core.dialects import PLAIN, Dialect
from chat_tracker.core.events import JOIN, MESSAGE, Event
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.ride import Ride
from chat_tracker.core.room.roster import Roster
from support.fakes import FakeClock, FakeWire, decode_frames

MEMBERS = 4
ROOMS = 3

# One step: ("room", room, joins only?), ("own", member), ("flush",), ("full", member), ("drain", member),
# ("busy", whether joins and leaves are parked), ("release",): the notices' window ends, ("pause",): a second
# passes (riders that stayed on are then written as soon as the loop turns), ("turn",): the event loop turns
steps = st.lists(
    st.one_of(
        st.tuples(st.just("room"), st.integers(0, ROOMS - 1), st.booleans()),
        st.tuples(st.just("own"), st.integers(0, MEMBERS - 1)),
        st.tuples(st.just("flush")),
        st.tuples(st.just("pause")),
        st.tuples(st.just("turn")),
        st.tuples(st.just("busy"), st.booleans()),
        st.tuples(st.just("release")),
        st.tuples(st.just("full"), st.integers(0, MEMBERS - 1)),
        st.tuples(st.just("drain"), st.integers(0, MEMBERS - 1)),
    ),
    max_size=60,
)


class Member:
    def __init__(self, member_id: int, coalescer: Coalescer) -> None:
        self.id = member_id
        self.dialect: Dialect = PLAIN
        self.wire = FakeWire(ready=True)
        self.outbox = Outbox(10_000, wire=self.wire, coalescer=coalescer)
        self.expected: list[str] = []

    def drain(self) -> None:
        """What the writer does once the socket is ready again: everything queued, onto the socket."""
        self.wire.is_ready = True
        data, _ = self.outbox.take_wire_now()
        if data:
            self.wire.write(data)


def in_room(room: int, member: int) -> bool:
    return (member + room) % 3 != 0  # every room has some members, every member some rooms


@pytest.mark.anyio
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps, st.booleans())
async def test_every_member_receives_each_of_its_frames_once_in_order(plan: list[tuple[Any, ...]], busy: bool) -> None:
    clock = FakeClock()
    coalescer = Coalescer(1.0, clock=clock)  # flushed by the plan (or by the loop's turn after a pause)
    coalescer.notices_busy = busy  # joins and leaves parked from the start (the plan may change it)
    members = [Member(index, coalescer) for index in range(MEMBERS)]
    rides: list[dict[Dialect, Ride]] = [{} for _ in range(ROOMS)]
    rosters = [Roster(walk_from=1) for _ in range(ROOMS)]
    for room, roster in enumerate(rosters):
        for index, member in enumerate(members):
            if in_room(room, index):
                roster[index] = member  # type: ignore[assignment]  # has what delivery and the roster read
    seq = 0
    for step in plan:
        if step[0] == "room":
            _, room, joins = step
            seq += 1
            event = Event(seq, 0.0, JOIN if joins else MESSAGE, "bob", f"m{seq}")
            shared: SharedFrames[Any] = SharedFrames([event], rides[room], rosters[room])
            for member in rosters[room].visiting((), everyone=shared.notices):
                shared.push_to(member)
            shared.finish()
            for index, member in enumerate(members):
                if in_room(room, index):
                    member.expected.append(PLAIN.shared(event))
        elif step[0] == "own":
            seq += 1
            member = members[step[1]]
            member.outbox.push(f"own {seq}")
            member.expected.append(f"own {seq}")
        elif step[0] == "flush":
            coalescer.flush()
        elif step[0] == "busy":
            coalescer.notices_busy = step[1]  # as the rate would set it (tests/core/test_notices_window.py)
        elif step[0] == "release":
            coalescer.release_parked()
        elif step[0] == "pause":
            clock.advance(1.0)
        elif step[0] == "turn":
            await asyncio.sleep(0)  # one turn of the loop, no time: a flush it was asked for ``soon`` runs
        elif step[0] == "full":
            members[step[1]].wire.is_ready = False
        else:
            members[step[1]].drain()
    coalescer.flush()
    coalescer.release_parked()
    for member in members:
        member.drain()
        assert decode_frames(bytes(member.wire.written)) == member.expected
        assert member.outbox.ride is None and len(member.outbox) == 0
    assert all(ride.riders == 0 for room in rides for ride in room.values())
    for roster in rosters:  # everyone is off the rides: every member is visited again
        assert sorted(member.id for member in roster.visiting(())) == sorted(roster)
