"""Calls go one way: delivery renders from data, an overflow is data the room acts on, the room tells replicas itself.

Before, a delivery called back into the room for a welcome's resume offer, an outbox
that overflowed mid-delivery had its adapter call ``drop_slow`` in the middle of the
room's loop, and a member going away went up to the tracker to reach the journal.
Also here: an operation in a state that has no such step raises ``IllegalTransition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from chat_protocol import CloseCode, Limits, RoomInfo, Welcome, decode_server
from chat_tracker.core.delivery import WelcomeTerms, frames_for
from chat_tracker.core.dialects import JSON, Dialect
from chat_tracker.core.events import JOIN, MESSAGE, Event
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room import IllegalTransition, Member, MemberState
from chat_tracker.core.tokens import ResumeTokens
from chat_tracker.records import Present
from support.fakes import drain
from support.roomkit import RoomKit


class Notices:
    """The replica-only side of a shared journal, as the room sees it: who moved here, who dropped."""

    def __init__(self) -> None:
        self.taken_over: list[tuple[str, int, int]] = []
        self.away: list[int] = []

    def take_over(self, name: str, member_id: int, resumes: int) -> None:
        self.taken_over.append((name, member_id, resumes))

    def went_away(self, member_id: int) -> None:
        self.away.append(member_id)


@dataclass
class Recipient:
    id: int
    name: str
    dialect: Dialect
    outbox: Outbox
    since_seq: int | None
    recover_after: int | None = None
    registered: bool = False
    seen_through: int = 0
    catch_up_after: int | None = None
    device_id: str | None = None
    device_token: str | None = None
    rooms: tuple[RoomInfo, ...] = ()
    after_welcome: tuple[str, ...] = ()


def _welcome(kit: RoomKit, member: Member) -> Welcome:
    (welcome,) = [m for m in kit.received(member) if isinstance(m, Welcome)]
    return welcome


def _overflow(member: Member) -> None:
    """What the session's own frames (errors, ``who`` answers) do to a peer that reads nothing."""
    while not member.outbox.overflowed:
        member.outbox.push('{"type":"error","code":"x","message":"unread"}')


def test_a_welcome_is_rendered_from_data_alone() -> None:
    tokens = ResumeTokens(b"k" * 32, "e1")
    ann = Recipient(7, "ann", JSON, Outbox(10), since_seq=3)
    batch = [Event(3, 1.0, JOIN, "ann", origin=7, members=("ann",)), Event(4, 1.0, MESSAGE, "bob", "hi", origin=8)]
    assert frames_for(ann, batch, WelcomeTerms(Limits(), tokens, 30.0)) == 2
    frames, _ = drain(ann.outbox)
    welcome = decode_server(frames[0])
    assert isinstance(welcome, Welcome) and welcome.resume_grace == 30.0
    assert tokens.check(welcome.token).since_seq == 3


def test_a_member_that_falls_behind_during_delivery_is_dropped_once_the_batch_is_out(tmp_path: Path) -> None:
    kit = RoomKit.create(tmp_path)
    alpha, beta = kit.join("alpha", queue_size=3), kit.join("beta")
    seen_by_the_adapter: list[tuple[MemberState, int]] = []
    alpha.outbox.on_overflow = lambda: seen_by_the_adapter.append((alpha.state, kit.room.stats.slow_drops))
    for index in range(5):
        kit.room.say(beta, f"message {index}")
    kit.flush()
    assert seen_by_the_adapter == [(MemberState.JOINED, 0)]  # told while the room was delivering: not yet acted on
    assert alpha.state is MemberState.LEAVING and kit.room.stats.slow_drops == 1
    kit.flush()
    assert [(e.kind, e.name, e.text) for e in kit.entries()][-1] == ("leave", "alpha", "slow")


def test_an_overflow_outside_delivery_makes_the_next_request_a_slow_drop(tmp_path: Path) -> None:
    kit = RoomKit.create(tmp_path)
    alpha = kit.join("alpha", queue_size=3)
    kit.flush()
    _overflow(alpha)
    kit.room.say(alpha, "never logged")
    kit.room.leave(alpha, "exit")  # already out, for being too slow
    kit.flush()
    assert [(e.kind, e.text) for e in kit.entries()] == [("join", ""), ("leave", "slow")]
    assert kit.room.stats.slow_drops == 1 and kit.room.stats.messages == 0


def test_a_connection_that_fell_behind_does_not_go_away(tmp_path: Path) -> None:
    kit = RoomKit.create(tmp_path, grace=60)
    alpha = kit.join("alpha", queue_size=3)
    kit.flush()
    _overflow(alpha)
    kit.room.connection_lost(alpha, alpha.outbox, "lost", resumable=True)  # the adapter closed it with 4007
    kit.flush()
    assert alpha.state is MemberState.GONE and kit.room.away_count == 0
    assert [(e.kind, e.text) for e in kit.entries()][-1] == ("leave", "slow")


def test_the_room_tells_the_other_replicas_itself_who_went_away_and_who_resumed_here(tmp_path: Path) -> None:
    kit = RoomKit.create(tmp_path, grace=60)
    kit.room.replicas = notices = Notices()
    alpha = kit.join("alpha")
    kit.flush()
    welcome = _welcome(kit, alpha)
    kit.room.connection_lost(alpha, alpha.outbox, "lost", resumable=True)
    assert notices.away == [alpha.id] and kit.room.on_away is None  # no tracker in between
    kit.room.resume(welcome.token, welcome.epoch, welcome.seq, Outbox(100), "127.0.0.2")
    assert notices.taken_over == [("alpha", alpha.id, 1)]


def test_leaving_during_a_replay_ends_the_replay(tmp_path: Path) -> None:
    """A member taken out while it resumes is held back no more: it gets what comes before its leave, then its close."""
    kit = RoomKit.create(tmp_path, grace=60)
    alpha, beta = kit.join("alpha"), kit.join("beta")
    kit.flush()
    welcome = _welcome(kit, alpha)
    kit.room.connection_lost(alpha, alpha.outbox, "lost", resumable=True)
    resuming = kit.room.resume(welcome.token, welcome.epoch, welcome.seq + 1, Outbox(100), "127.0.0.2")
    kit.room.say(beta, "before the kick")
    kit.room.kick(alpha, "spam")
    assert alpha.state is MemberState.LEAVING and alpha.replay is None
    kit.flush()
    assert alpha.left and kit.room.names() == ["beta"]
    _, close = drain(resuming.member.outbox)
    assert close is not None and close.code == CloseCode.KICKED


def test_handing_held_events_to_a_member_that_is_not_resuming_raises(tmp_path: Path) -> None:
    kit = RoomKit.create(tmp_path)
    alpha = kit.join("alpha")
    kit.flush()
    with pytest.raises(IllegalTransition):
        kit.room.catch_up(alpha, last=True)
    assert alpha.state is MemberState.JOINED


def test_a_message_from_a_member_with_no_connection_raises(tmp_path: Path) -> None:
    kit = RoomKit.create(tmp_path, grace=60)
    alpha = kit.join("alpha")
    kit.flush()
    kit.room.connection_lost(alpha, alpha.outbox, "lost", resumable=True)
    with pytest.raises(IllegalTransition):
        kit.room.say(alpha, "from nowhere")
    kit.flush()
    assert [e.kind for e in kit.entries()] == ["join"]


def test_nobody_enters_a_closed_room(tmp_path: Path) -> None:
    kit = RoomKit.create(tmp_path, grace=60)
    kit.shutdown("tracker stopped", bye=lambda member: ())
    with pytest.raises(IllegalTransition):
        kit.room.restore([Present("alpha", 7, 1_795_485_000.0)])
