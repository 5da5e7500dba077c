"""A room shared by replicas, as pure logic: the others' members, lost name races, moves and kicks.

``SharedStream`` stands for the Redis journal: it gives seqs in the order events reach
it, from this replica (``append``) or another one (``from_elsewhere``), and hands them
back in that order, as the stream reader does.
"""

from __future__ import annotations

import pytest

from chat_protocol import CloseCode, Limits, decode_server
from chat_protocol.messages import ChatMessage, Error, Left, Moderation, Resumed, Welcome
from chat_tracker.core.dialects import JSON, PLAIN
from chat_tracker.core.events import JOIN, KICK, LEAVE, MESSAGE, Event, EventKind
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.room import Member, MemberState, Room
from chat_tracker.core.tokens import ResumeTokens
from chat_tracker.errors import Recover, Refused
from chat_tracker.journal.protocol import Deliver, History, JournalStats, OnTrouble
from support.fakes import FakeClock, drain

HERE, ELSEWHERE = 1, 2
OTHER_ID = ELSEWHERE * 1_000_000_000 + 1


class SharedStream:
    """The stream of a room shared by replicas, delivered when the test says so."""

    def __init__(self) -> None:
        self.stats = JournalStats()
        self.on_trouble: OnTrouble | None = None
        self.pending: list[Event] = []
        self.seq = 0
        self._deliver: Deliver | None = None

    last_seq = property(lambda self: self.seq)
    recent: tuple[Event, ...] = ()  # nothing kept in memory: no returning member's welcome reads it here
    writable = True
    epoch = "e1"

    def subscribe(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def append(
        self,
        kind: EventKind,
        name: str = "-",
        text: str = "",
        origin: int | None = None,
        members: tuple[str, ...] = (),
        msg_id: str | None = None,
    ) -> None:
        self.pending.append(Event(0, 1.0, kind, name, text, origin, (), msg_id))

    def from_elsewhere(self, kind: EventKind, name: str, text: str = "", origin: int | None = OTHER_ID) -> None:
        self.append(kind, name, text, origin)

    def deliver(self) -> list[Event]:
        batch = []
        for event in self.pending:
            self.seq += 1
            event.seq = self.seq
            batch.append(event)
        self.pending = []
        if batch and self._deliver is not None:
            self._deliver(batch)
        return batch

    async def sync(self) -> None: ...

    async def read_after(self, seq: int, limit: int) -> History:
        return History(())

    async def tail(self, count: int) -> list[object]:
        return []

    async def close(self) -> None: ...


class Notices:
    """Where a shared room tells the other replicas who moved here and who dropped (the Redis journal)."""

    def __init__(self) -> None:
        self.taken_over: list[tuple[str, int, int]] = []
        self.away: list[int] = []

    def take_over(self, name: str, member_id: int, resumes: int) -> None:
        self.taken_over.append((name, member_id, resumes))

    def went_away(self, member_id: int) -> None:
        self.away.append(member_id)


def shared_room() -> tuple[Room, SharedStream]:
    stream = SharedStream()
    policy = MemberPolicy(Limits(), 20, 1.0, monotonic=FakeClock(100.0))
    tokens = ResumeTokens(b"k" * 32, "e1")
    room = Room(
        stream,  # type: ignore[arg-type]
        policy,
        clock=FakeClock(1_795_485_040.0),
        monotonic=FakeClock(100.0),
        tokens=tokens,
        grace=30.0,
        shared=True,
        first_id=HERE * 1_000_000_000 + 1,
    )
    room.replica = HERE
    return room, stream


def join(room: Room, name: str) -> Member:
    return room.join(name, JSON, Outbox(1000), "127.0.0.1")


def received(member: Member) -> list[object]:
    frames, _ = drain(member.outbox)
    return [decode_server(frame) for frame in frames]


def test_a_member_of_another_replica_is_listed_and_holds_its_name_here() -> None:
    room, stream = shared_room()
    stream.from_elsewhere(JOIN, "bob")
    stream.deliver()
    assert room.names() == ["bob"]
    assert [info.name for info in room.who()] == ["bob"]
    with pytest.raises(Refused) as refused:
        join(room, "BOB")  # a lookalike, held on another replica
    assert refused.value.code == "name_taken"


def test_a_welcome_lists_the_room_as_of_its_join_wherever_each_member_is() -> None:
    room, stream = shared_room()
    stream.from_elsewhere(JOIN, "bob")
    ann = join(room, "ann")
    stream.deliver()
    (welcome,) = received(ann)
    assert isinstance(welcome, Welcome) and sorted(welcome.members) == ["ann", "bob"]


def test_a_local_joiner_that_loses_the_race_for_its_name_is_told_name_taken() -> None:
    room, stream = shared_room()
    ann = join(room, "ann")
    stream.pending.clear()  # Redis refused our join: another replica's came first
    stream.from_elsewhere(JOIN, "Ann")
    stream.deliver()
    frames, close = drain(ann.outbox)
    assert close is not None and close.reason == "name_taken"
    error = decode_server(frames[-1])
    assert isinstance(error, Error) and error.code == "name_taken"
    assert room.names() == ["Ann"] and ann.state is MemberState.GONE


def test_a_join_the_journal_refused_closes_its_member() -> None:
    room, stream = shared_room()
    ann = join(room, "ann")
    (event,) = stream.pending
    stream.pending.clear()
    room.refused(event)
    _, close = drain(ann.outbox)
    assert close is not None and close.reason == "name_taken" and room.names() == []


def test_a_kick_made_elsewhere_removes_the_member_here_at_its_seq() -> None:
    room, stream = shared_room()
    ann = join(room, "ann")
    stream.deliver()
    stream.append(KICK, "ann", '{"reason":"spam"}')  # as another replica's admin logs it
    stream.deliver()
    assert [e.kind for e in stream.pending] == [LEAVE]  # this replica logs her leave
    stream.deliver()
    frames, close = drain(ann.outbox)
    assert close is not None and close.code == CloseCode.KICKED
    assert any(isinstance(decode_server(f), Moderation) for f in frames)


def test_a_kick_of_a_member_served_elsewhere_is_left_to_its_replica() -> None:
    room, stream = shared_room()
    stream.from_elsewhere(JOIN, "bob")
    stream.deliver()
    bob = room.find("bob")
    assert bob is not None and bob.state is MemberState.REMOTE
    room.kick(bob, "spam")
    stream.deliver()
    assert [e.kind for e in stream.pending] == []  # no leave from here: bob's replica logs it
    stream.from_elsewhere(LEAVE, "bob", "kicked")
    stream.deliver()
    assert room.names() == []


def test_a_member_that_resumed_on_another_replica_is_closed_here_with_4010() -> None:
    room, stream = shared_room()
    ann = join(room, "ann")
    connection = ann.outbox
    stream.deliver()
    room.control({"c": "owner", "o": ann.id, "r": ELSEWHERE})
    _, close = drain(connection)
    assert close is not None and close.code == CloseCode.REPLACED
    assert ann.state is MemberState.REMOTE and room.names() == ["ann"]
    room.control({"c": "away", "o": ann.id, "r": ELSEWHERE})
    assert [info.away for info in room.who()] == [True]


def test_a_member_of_another_replica_resumes_here_and_the_move_is_recorded() -> None:
    room, stream = shared_room()
    stream.from_elsewhere(JOIN, "bob")
    (join_event,) = stream.deliver()
    room.replicas = notices = Notices()
    assert room.tokens is not None
    token = room.tokens.issue("bob", join_event.seq)
    resuming = room.resume(token, "e1", join_event.seq, Outbox(100), "127.0.0.1")
    moved = [name for name, _, _ in notices.taken_over]
    assert moved == ["bob"] and resuming.member.state is MemberState.RESUMING
    stream.from_elsewhere(MESSAGE, "carol", "hi", origin=OTHER_ID + 1)
    stream.deliver()
    assert [e.text for e in room.catch_up(resuming.member, last=True)] == ["hi"]


def test_a_member_resuming_ahead_of_this_replicas_reader_never_gets_what_it_had_again() -> None:
    """Resumed here after seq 7 while this replica has read up to 4 (it was cut off from Redis): when its reader
    catches up, seqs 5-7 reach the others here but not that member (found by the nemesis, seed 10)."""
    room, stream = shared_room()
    stream.from_elsewhere(JOIN, "bob")
    (join_event,) = stream.deliver()
    for number in (1, 2):
        stream.from_elsewhere(MESSAGE, "carol", f"before {number}", origin=OTHER_ID + 1)
    stream.deliver()
    ann = join(room, "ann")
    stream.deliver()
    assert room.tokens is not None and stream.seq == 4
    outbox = Outbox(100)
    resuming = room.resume(room.tokens.issue("bob", join_event.seq), "e1", 7, outbox, "127.0.0.1")
    assert (resuming.after, resuming.until) == (7, 7) and room.catch_up(resuming.member, last=True) == []
    received(ann)
    for number in range(5, 9):
        stream.from_elsewhere(MESSAGE, "carol", f"message {number}", origin=OTHER_ID + 1)
    stream.deliver()
    assert [m.seq for m in map(decode_server, drain(outbox)[0]) if hasattr(m, "seq")] == [8]
    assert [m.seq for m in received(ann) if hasattr(m, "seq")] == [5, 6, 7, 8]


def test_a_leave_logged_elsewhere_for_a_member_here_closes_it_with_1012() -> None:
    room, stream = shared_room()
    ann = join(room, "ann")
    stream.deliver()
    stream.append(LEAVE, "ann", "lost", ann.id)  # reaped by another replica while this one was cut off
    stream.deliver()
    frames, close = drain(ann.outbox)
    assert close is not None and close.code == CloseCode.SERVICE_RESTART
    assert not any(isinstance(decode_server(f), Left) for f in frames) and room.names() == []


def test_a_token_of_the_lost_epoch_joins_again_and_is_told_recovered_false() -> None:
    room, stream = shared_room()
    lost = ResumeTokens(b"o" * 32, "old")
    room.previous_tokens = lost
    with pytest.raises(Recover) as recover:
        room.resume(lost.issue("ann", 3), "old", 7, Outbox(100), "127.0.0.1")
    assert (recover.value.name, recover.value.after) == ("ann", 7)
    ann = room.join("ann", JSON, Outbox(100), "127.0.0.1", recover_after=7)
    stream.seq = 40  # the new epoch's seqs start above the old ones
    stream.deliver()
    (resumed,) = received(ann)
    assert isinstance(resumed, Resumed) and resumed.recovered is False and resumed.epoch == "e1"
    assert resumed.seq == 41 and resumed.gone == [8, 40]
    with pytest.raises(Refused) as refused:  # a token of an epoch never known here
        room.resume(lost.issue("ann", 3), "other", 7, Outbox(100), "127.0.0.1")
    assert refused.value.code == "resume_wrong_epoch"


def test_another_replicas_start_and_stop_lines_reach_no_member() -> None:
    room, stream = shared_room()
    ann = join(room, "ann")
    stream.deliver()
    received(ann)
    stream.append(EventKind.START, text="tracker started (replica 3)")
    stream.from_elsewhere(MESSAGE, "bob", "still here")
    stream.append(EventKind.STOP, text="tracker stopped")
    stream.deliver()
    assert [m.text for m in received(ann) if hasattr(m, "text")] == ["still here"]


def test_a_resume_on_another_replica_spends_the_token_here_too() -> None:
    room, stream = shared_room()
    stream.from_elsewhere(JOIN, "bob")
    (join_event,) = stream.deliver()
    assert room.tokens is not None
    spent = room.tokens.issue("bob", join_event.seq, 0)
    room.control({"c": "owner", "o": OTHER_ID, "r": ELSEWHERE, "g": 1})  # bob resumed there with it
    with pytest.raises(Refused) as refused:
        room.resume(spent, "e1", join_event.seq, Outbox(100), "127.0.0.1")
    assert refused.value.code == "resume_bad_token"
    room.replicas = notices = Notices()
    room.resume(room.tokens.issue("bob", join_event.seq, 1), "e1", join_event.seq, Outbox(100), "127.0.0.1")
    assert [resumes for _, _, resumes in notices.taken_over] == [2]  # the take-over carries the new count to the others
    room.control({"c": "owner", "o": OTHER_ID, "r": ELSEWHERE, "g": 1})  # an older move, read late
    with pytest.raises(Refused):
        room.resume(room.tokens.issue("bob", join_event.seq, 1), "e1", join_event.seq, Outbox(100), "127.0.0.1")


def test_a_replica_starting_late_learns_each_members_resume_count_from_the_roster() -> None:
    room, _ = shared_room()
    room.install([(OTHER_ID, "bob", 5, 1_795_485_000.0, ELSEWHERE, 2)])
    assert room.tokens is not None
    with pytest.raises(Refused):
        room.resume(room.tokens.issue("bob", 5, 1), "e1", 5, Outbox(100), "127.0.0.1")
    assert room.resume(room.tokens.issue("bob", 5, 2), "e1", 5, Outbox(100), "127.0.0.1").member.resumes == 3


@pytest.mark.anyio  # the grace timer of a member that goes away needs the running loop
async def test_a_replica_that_skipped_trimmed_events_closes_its_members_with_1012_and_they_can_resume() -> None:
    """The journal skipped seqs it could no longer read: no member here may receive a later event as if none were
    missing. A JSON member goes away (it resumes, told what is gone); a plain-text one, which cannot, leaves."""
    room, stream = shared_room()
    ann = join(room, "ann")
    cid = room.join("cid", PLAIN, Outbox(1000), "127.0.0.1")
    stream.deliver()
    connections = [ann.outbox, cid.outbox]
    assert room.fell_behind(bye=lambda member: (member.dialect.bye("restart", "restarting"),)) == 2
    for connection in connections:
        _, close = drain(connection)
        assert close is not None and close.code == CloseCode.SERVICE_RESTART
    assert ann.state is MemberState.AWAY and cid.left
    stream.seq = 57  # the seqs the journal skipped
    stream.from_elsewhere(MESSAGE, "bob", "after the gap")
    stream.deliver()
    assert drain(connections[0])[0] == []  # nothing after the gap on the closed connection
    assert room.tokens is not None and ann.since_seq is not None
    resuming = room.resume(room.tokens.issue("ann", ann.since_seq), "e1", 2, Outbox(100), "127.0.0.1")
    assert resuming.member is ann and (resuming.after, resuming.until) == (2, stream.seq)  # cid's leave, then bob


def test_a_resend_never_delivered_here_is_left_to_the_journal_which_knows_if_it_was_logged() -> None:
    """Its first copy may be pending, or logged in a range this replica's reader found trimmed (nemesis seed 2):
    only Redis, which keeps every member's ids, can tell; a single tracker would ignore it (it delivers all)."""
    room, stream = shared_room()
    ann = join(room, "ann")
    stream.deliver()
    room.say(ann, "hi", "m-1")
    room.say(ann, "hi", "m-1")
    assert [(e.text, e.msg_id) for e in stream.pending] == [("hi", "m-1"), ("hi", "m-1")]


def test_a_resend_logged_before_is_answered_with_the_first_echo_once_this_replica_is_past_it() -> None:
    room, stream = shared_room()
    ann = join(room, "ann")
    stream.from_elsewhere(MESSAGE, "bob", "after ann")
    stream.deliver()
    received(ann)
    resends = [
        Event(stream.seq - 1, 1.0, MESSAGE, "ann", "hi", ann.id, (), "m-1"),
        Event(stream.seq + 1, 1.0, MESSAGE, "ann", "later", ann.id, (), "m-2"),  # its own delivery answers it
    ]
    for first in resends:
        room.logged_before(first)
    room.logged_before(Event(stream.seq, 1.0, MESSAGE, "bob", "hi", OTHER_ID, (), "b-1"))  # not served here
    answers = received(ann)
    assert [(m.seq, m.id) for m in answers if isinstance(m, ChatMessage)] == [(stream.seq - 1, "m-1")]
    assert room.stats.duplicates == len(resends)


def test_a_resend_made_while_resuming_is_answered_after_the_replay_if_the_replay_covered_it() -> None:
    room, stream = shared_room()
    stream.from_elsewhere(JOIN, "bob")
    (join_event,) = stream.deliver()
    stream.from_elsewhere(MESSAGE, "carol", "while away", origin=OTHER_ID + 1)
    stream.deliver()
    assert room.tokens is not None
    outbox = Outbox(100)
    resuming = room.resume(room.tokens.issue("bob", join_event.seq), "e1", join_event.seq, outbox, "127.0.0.1")
    bob = resuming.member
    room.logged_before(Event(resuming.until, 1.0, MESSAGE, "bob", "gone", bob.id, (), "b-1"))  # in the replay's range
    room.logged_before(Event(resuming.until + 1, 1.0, MESSAGE, "bob", "held", bob.id, (), "b-2"))  # held, or live
    assert drain(outbox)[0] == []  # nothing before the replay
    room.catch_up(bob, last=True)
    answers = [decode_server(frame) for frame in drain(outbox)[0]]
    assert [(m.seq, m.id) for m in answers if isinstance(m, ChatMessage)] == [(resuming.until, "b-1")]
