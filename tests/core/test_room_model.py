"""A stateful model of the room: any sequence of joins, leaves, messages and flushes matches a simple model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chat_protocol import ChatMessage, Joined, Left, Limits, NameRefused, Welcome, has_lone_surrogate, name_key
from chat_tracker.core.dialects import JSON, PLAIN
from chat_tracker.core.room import Member, Refused
from support.roomkit import RoomKit

NAMES = st.sampled_from(
    ["alpha", "ALPHA", "a1pha", "alp.ha", "beta", "b-e-t-a", "gamma", "Gamma", "delta0", "deltao", "admin", "bad name"]
)
TEXTS = st.text(st.one_of(st.characters(), st.sampled_from(["\ud800", "\n", " ", "\u202e"])), max_size=12)
REASONS = st.sampled_from(["exit", "closed", "lost"])


class RoomModel(RuleBasedStateMachine):
    """Who is online and what chat.log holds, predicted from first principles."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="room-model-"))
        self.kit = RoomKit.create(self.dir, Limits(rate_burst=10**6, rate_per_second=10**6))
        self.online: list[Member] = []  # in join order
        self.expected_log: list[tuple[str, str, str]] = []
        self.logged_upto = 0  # lines of expected_log that a flush has written

    def teardown(self) -> None:
        self.kit.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(name=NAMES, plain=st.booleans())
    def join(self, name: str, plain: bool) -> None:
        taken = any(name_key(m.name) == name_key(name) for m in self.online)
        try:
            member = self.kit.join(name, PLAIN if plain else JSON)
        except NameRefused:
            assert name in ("admin", "bad name")
            return
        except Refused as refusal:
            code: str | None = refusal.code
        else:
            code = None
        if code is not None:
            assert code == "name_taken" and taken
            return
        assert not taken and name not in ("admin", "bad name")
        self.online.append(member)
        self.expected_log.append(("join", name, ""))

    @precondition(lambda self: self.online)
    @rule(index=st.integers(0, 100), reason=REASONS, repeat=st.booleans())
    def leave(self, index: int, reason: str, repeat: bool) -> None:
        member = self.online.pop(index % len(self.online))
        self.kit.room.leave(member, reason)
        if repeat:
            self.kit.room.leave(member, "closed")
        self.expected_log.append(("leave", member.name, reason))

    @precondition(lambda self: self.online)
    @rule(index=st.integers(0, 100), text=TEXTS)
    def say(self, index: int, text: str) -> None:
        member = self.online[index % len(self.online)]
        if not text.strip():
            expected: str | None = "empty"
        elif has_lone_surrogate(text):
            expected = "invalid_text"
        else:
            expected = None
        try:
            self.kit.room.say(member, text)
        except Refused as refusal:
            code: str | None = refusal.code
        else:
            code = None
        assert code == expected
        if code is not None:
            return
        self.expected_log.append(("msg", member.name, text))

    @rule()
    def flush(self) -> None:
        self.kit.flush()
        self.logged_upto = len(self.expected_log)
        logged = [(e.kind, e.name, e.text) for e in self.kit.entries()]
        assert logged == self.expected_log
        assert [e.seq for e in self.kit.entries()] == list(range(1, len(logged) + 1))
        for member in self.online:
            self._check_inbox(member)

    def _check_inbox(self, member: Member) -> None:
        """A JSON member got its welcome first, then events in strictly increasing seq order."""
        if member.dialect is not JSON:
            return
        got = self.kit.received(member)
        assert isinstance(got[0], Welcome) and got[0].name == member.name
        seqs = [m.seq for m in got if isinstance(m, (Welcome, Joined, ChatMessage, Left))]
        assert seqs == sorted(set(seqs))

    @invariant()
    def names_match(self) -> None:
        assert self.kit.room.names() == [m.name for m in self.online]
        assert [i.name for i in self.kit.room.who()] == [m.name for m in self.online]


RoomModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestRoomModel = RoomModel.TestCase
TestRoomModel.__doc__ = (
    "Joins, leaves, messages and flushes in any order keep room.who() and chat.log equal to the model."
)
