"""``core/rooms.py`` with no socket and no event loop: rooms by name, tagged frames, limits, and coming back.

Each room here is a real ``Room`` on its own chat.log in a temporary directory; journals are
committed by hand, so every assertion reads what the members' outboxes hold after a commit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from chat_protocol import Limits
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.dialects import JSON, PLAIN
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.places import RoomLimits, RoomMeta
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.room import Member, Room
from chat_tracker.core.rooms import Rooms
from chat_tracker.errors import Refused
from chat_tracker.journal.local import LocalJournal
from chat_tracker.storage.chatlog import ChatLog
from support.fakes import drain

POLICY = MemberPolicy(Limits(), 20, 1.0, monotonic=time.monotonic)


class House:
    """A default room and the rooms ``Rooms`` opens, each on its own chat.log under ``base``."""

    def __init__(self, base: Path, limits: RoomLimits | None = None) -> None:
        self.base = base
        self.journals: list[LocalJournal] = []
        default = Room(self._journal(base / "general"), POLICY)
        self.rooms = Rooms(default, self._open, limits)

    def _journal(self, directory: Path) -> LocalJournal:
        log, report = ChatLog.open(directory)
        journal = LocalJournal(log, last_seq=report.last_seq, history_size=100, auto_flush=False)
        self.journals.append(journal)
        return journal

    def _open(self, meta: RoomMeta) -> Room:
        room = Room(self._journal(self.base / meta.name.removeprefix("#")), POLICY)
        room.owns_connections = False
        return room

    def commit(self) -> None:
        for journal in list(self.journals):
            journal.commit()

    def join(self, name: str, dialect: object = JSON) -> Member:
        member = self.rooms.default.join(name, dialect, Outbox(1000), "127.0.0.1")  # type: ignore[arg-type]
        self.commit()
        return member


def frames(member: Member) -> list[dict[str, object]]:
    return [json.loads(text) for text in drain(member.outbox)[0]]


def test_a_rooms_events_reach_its_members_tagged_with_its_name_and_nobody_else(tmp_path: Path) -> None:
    house = House(tmp_path)
    alice, bob, carol = house.join("alice"), house.join("bob"), house.join("carol")
    for member in (alice, bob, carol):
        drain(member.outbox)
    place, sub, already = house.rooms.enter(alice, "#dev", JSON, False)
    assert place.meta.owner == "alice" and not already
    house.rooms.enter(bob, "#DEV", JSON, False)  # the same room, whatever the case
    house.commit()
    place.room.say(sub, "hi dev")
    house.commit()
    assert [(f["type"], f.get("room")) for f in frames(alice)] == [
        ("entered", "#dev"),
        ("joined", "#dev"),
        ("message", "#dev"),
    ]
    assert [f["type"] for f in frames(bob)] == ["entered", "message"]
    assert frames(carol) == []
    assert house.rooms.place("#cl") is house.rooms.place("#c1") is None  # lookalikes fold; neither exists


def test_a_plain_member_reads_the_rooms_she_does_not_write_in_with_their_prefix(tmp_path: Path) -> None:
    house = House(tmp_path)
    alice, bob = house.join("alice", PLAIN), house.join("bob")
    _, sub, _ = house.rooms.enter(bob, "#dev", JSON, False)
    house.rooms.enter(alice, "#dev", PLAIN, False)
    house.rooms.write_in(alice, "#dev", PLAIN)
    house.commit()
    drain(alice.outbox)
    house.rooms.default.say(bob, "in general")
    house.rooms.place("#dev").room.say(sub, "in dev")  # type: ignore[union-attr]
    house.commit()
    assert drain(alice.outbox)[0] == ["[#general] bob: in general", "bob: in dev"]
    house.rooms.write_in(alice, "#general", PLAIN)
    house.rooms.place("#dev").room.say(sub, "again")  # type: ignore[union-attr]
    house.commit()
    assert drain(alice.outbox)[0] == ["[#dev] bob: again"]


def test_a_connection_ending_takes_its_member_out_of_every_room_and_leaves_the_socket_to_the_default_room(
    tmp_path: Path,
) -> None:
    house = House(tmp_path)
    alice = house.join("alice")
    place, _, _ = house.rooms.enter(alice, "#dev", JSON, False)
    house.commit()
    house.rooms.part(alice, "#dev")
    house.commit()
    texts, close = drain(alice.outbox)
    assert json.loads(texts[-1]) == {"type": "parted", "room": "#dev", "reason": "part"} and close is None
    house.rooms.enter(alice, "#dev", JSON, False)
    house.rooms.connection_ended(alice, alice.outbox, LeaveReason.LOST)
    house.commit()
    assert place.room.names() == [] and drain(alice.outbox)[1] is None


def test_the_limits_refuse_with_their_codes(tmp_path: Path) -> None:
    house = House(tmp_path, RoomLimits(per_member=2, total=3, creations_per_hour=10))
    alice, bob = house.join("alice"), house.join("bob")
    house.rooms.enter(alice, "#a", JSON, False)
    house.rooms.enter(alice, "#b", JSON, False)
    with pytest.raises(Refused) as refused:
        house.rooms.enter(alice, "#c", JSON, False)
    assert refused.value.code == "too_many_rooms" and house.rooms.place("#c") is None  # hers: nothing was made
    house.rooms.enter(bob, "#c", JSON, False)
    with pytest.raises(Refused) as refused:
        house.rooms.enter(bob, "#d", JSON, False)
    assert refused.value.code == "too_many_rooms" and house.rooms.place("#d") is None  # the tracker's
    closed = House(tmp_path / "closed", RoomLimits(creation_open=False))
    carol = closed.join("carol")
    with pytest.raises(Refused) as refused:
        closed.rooms.enter(carol, "#new", JSON, False)
    assert refused.value.code == "room_creation_closed"
