"""A stateful model of the rooms: any sequence of entering, leaving, speaking and connections ending matches it.

Three members (two JSON, one plain text) move among three rooms besides the default one.
After every step the journals are committed, and each member must have received exactly
the messages said in the rooms she was in, while she was in them, each tagged with its
room (JSON ``"room"``; plain text ``[#name] `` for a room she does not write in), in
order; and each room's chat.log must hold exactly the messages said in it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chat_protocol import Limits
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.dialects import JSON, PLAIN, Dialect
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.places import RoomMeta
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.room import Member, Room
from chat_tracker.core.rooms import Rooms
from chat_tracker.journal.local import LocalJournal
from chat_tracker.storage.chatlog import ChatLog
from support.fakes import drain

ROOMS = ["#a", "#b", "#c"]
PEOPLE: dict[str, Dialect] = {"ann": JSON, "bob": JSON, "cy": PLAIN}
POLICY = MemberPolicy(Limits(rate_burst=10**6, rate_per_second=10**6), 10**6, 1.0, monotonic=time.monotonic)


class RoomsModel(RuleBasedStateMachine):
    """Which rooms each member is in, and what each should have received, predicted from first principles."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="rooms-model-"))
        self.journals: list[LocalJournal] = []
        self.logs: dict[str, ChatLog] = {}
        self.rooms = Rooms(Room(self._journal("general"), POLICY), self._open)
        self.members: dict[str, Member] = {}
        self.inside: dict[str, set[str]] = {name: set() for name in PEOPLE}
        self.expected: dict[str, list[tuple[str, str]]] = {name: [] for name in PEOPLE}
        self.received: dict[str, list[tuple[str, str]]] = {name: [] for name in PEOPLE}
        self.said: dict[str, list[str]] = {room: [] for room in ROOMS}
        self.count = 0
        self.writes_in = "#general"  # the plain-text member's room for her lines: others' lines are prefixed
        for name in PEOPLE:
            self._connect(name)

    def _journal(self, name: str) -> LocalJournal:
        log, report = ChatLog.open(self.dir / name)
        self.logs[name] = log
        journal = LocalJournal(log, last_seq=report.last_seq, history_size=100, auto_flush=False)
        self.journals.append(journal)
        return journal

    def _open(self, meta: RoomMeta) -> Room:
        room = Room(self._journal(meta.name.removeprefix("#")), POLICY)
        room.owns_connections = False
        return room

    def _connect(self, name: str) -> None:
        self.members[name] = self.rooms.default.join(name, PEOPLE[name], Outbox(10**6), "127.0.0.1")
        self._commit()
        drain(self.members[name].outbox)  # the welcome and the others' joins: not this model's business

    def _commit(self) -> None:
        for journal in list(self.journals):
            journal.commit()
        for name, member in self.members.items():
            self.received[name].extend(_messages(drain(member.outbox)[0], PEOPLE[name], self.writes_in))

    def teardown(self) -> None:
        for log in self.logs.values():
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(name=st.sampled_from(sorted(PEOPLE)), room=st.sampled_from(ROOMS))
    def enter(self, name: str, room: str) -> None:
        self.rooms.enter(self.members[name], room, PEOPLE[name], prefixed=True)
        self.inside[name].add(room)
        self._commit()

    @rule(name=st.sampled_from(sorted(PEOPLE)), room=st.sampled_from(ROOMS))
    def part(self, name: str, room: str) -> None:
        assert self.rooms.part(self.members[name], room) == (room in self.inside[name])
        self.inside[name].discard(room)
        if name == "cy" and room == self.writes_in:
            self.rooms.write_in(self.members["cy"], "#general", PLAIN)  # as session_rooms.py does after /part
            self.writes_in = "#general"
        self._commit()

    @rule(name=st.sampled_from(sorted(PEOPLE)), room=st.sampled_from(ROOMS))
    def say(self, name: str, room: str) -> None:
        held = self.rooms.member_in(self.members[name], room)
        assert (held is not None) == (room in self.inside[name])
        if held is None:
            return
        self.count += 1
        text = f"m{self.count}"
        held[0].say(held[1], text)
        self.said[room].append(text)
        for other, rooms in self.inside.items():
            if room in rooms and (other != name or PEOPLE[other] is JSON):  # plain text has no echo
                self.expected[other].append((room, text))
        self._commit()

    @precondition(lambda self: self.inside["cy"])
    @rule(data=st.data())
    def plain_member_writes_in(self, data: st.DataObject) -> None:
        room = data.draw(st.sampled_from(sorted(self.inside["cy"])))
        self.rooms.write_in(self.members["cy"], room, PLAIN)
        self.writes_in = room

    @rule(name=st.sampled_from(sorted(PEOPLE)))
    def connection_ends(self, name: str) -> None:
        """Her connection ends (and she comes back as a new connection, in the default room alone)."""
        member = self.members.pop(name)
        self.rooms.connection_ended(member, member.outbox, LeaveReason.LOST)
        self.rooms.default.connection_lost(member, member.outbox, LeaveReason.LOST, resumable=False)
        self._commit()
        self.inside[name].clear()
        if name == "cy":
            self.writes_in = "#general"
        self._connect(name)

    @invariant()
    def each_received_exactly_her_rooms_messages(self) -> None:
        assert self.received == self.expected

    @invariant()
    def each_rooms_log_holds_its_messages(self) -> None:
        for room, texts in self.said.items():
            path = self.dir / room.removeprefix("#") / "chat.log"
            lines = [line.split(" ", 4) for line in path.read_text().splitlines()] if path.exists() else []
            messages = [parts[4] for parts in lines if parts[2] == "msg"]
            assert messages == texts, (room, messages, texts)


def _messages(frames: list[str], dialect: Dialect, writes_in: str) -> list[tuple[str, str]]:
    """The (room, text) of every message in ``frames``, as ``dialect`` shows them (plain: unprefixed, ``writes_in``)."""
    found: list[tuple[str, str]] = []
    for frame in frames:
        if dialect is JSON:
            body = json.loads(frame)
            if body["type"] == "message":
                found.append((body.get("room", "#general"), body["text"]))
        elif frame.startswith("[#") and ": m" in frame:
            prefix, _, rest = frame.partition("] ")
            room = prefix[1:] if prefix[1:] != writes_in else f"{writes_in}, prefixed where she writes"
            found.append((room, rest.split(": ", 1)[1]))
        elif ": m" in frame and not frame.startswith("*"):
            found.append((writes_in, frame.split(": ", 1)[1]))
    return found


RoomsModel.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestRoomsModel = RoomsModel.TestCase
