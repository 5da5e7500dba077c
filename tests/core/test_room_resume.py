"""Away, resume, replay and resends in the room itself (fake clocks and timers, no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_protocol import ChatMessage, Joined, Left, Welcome
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.room import Member, MemberState, Refused, Resuming
from chat_tracker.records import Present
from support.roomkit import RoomKit


@pytest.fixture
def kit(tmp_path: Path) -> RoomKit:
    return RoomKit.create(tmp_path, grace=60)


def _welcome(kit: RoomKit, member: Member) -> Welcome:
    (welcome,) = [m for m in kit.received(member) if isinstance(m, Welcome)]
    return welcome


def _resume(kit: RoomKit, welcome: Welcome, after: int) -> Resuming:
    return kit.room.resume(welcome.token, welcome.epoch, after, Outbox(10_000), "127.0.0.2")


def _replay(kit: RoomKit, resuming: Resuming) -> list[str]:
    """What the adapter does: replay (after, until] from the journal's ring, then the held-back events."""
    history = [event for event in kit.journal.recent if event.seq <= resuming.until]
    frames, _ = kit.room.replay_frames(resuming.member, history, resuming.after)
    held, _ = kit.room.replay_frames(resuming.member, kit.room.catch_up(resuming.member, last=True), resuming.until)
    return frames + held


def test_a_lost_member_goes_away_keeps_its_name_and_resumes_with_what_it_missed(kit: RoomKit) -> None:
    alpha, beta = kit.join("alpha"), kit.join("beta")
    kit.flush()
    welcome = _welcome(kit, alpha)
    kit.room.connection_lost(alpha, alpha.outbox, "lost", resumable=True)
    assert alpha.state is MemberState.AWAY and [m.away for m in kit.room.who()] == [True, False]
    with pytest.raises(Refused):
        kit.join("ALPHA")  # the name stays its own
    kit.room.say(beta, "while you were away")
    kit.flush()
    resuming = _resume(kit, welcome, after=welcome.seq + 1)  # it had seen beta's join
    kit.room.say(beta, "during the replay")
    kit.flush()  # held back for alpha until the replay is out
    frames = _replay(kit, resuming)
    assert [f for f in frames if "while you were away" in f or "during the replay" in f] == frames
    assert len(frames) == 2 and resuming.member.state is MemberState.JOINED
    kit.room.say(beta, "live")
    kit.flush()
    assert "live" in alpha.outbox.take_now()[0][-1]
    assert [e.kind for e in kit.entries()] == ["join", "join", "msg", "msg", "msg"]  # no leave, no join
    assert not any(isinstance(m, (Left, Joined)) for m in kit.received(beta)[1:])


def test_the_grace_ending_logs_one_leave_lost(kit: RoomKit) -> None:
    alpha, beta = kit.join("alpha"), kit.join("beta")
    kit.flush()
    welcome = _welcome(kit, alpha)
    kit.room.connection_lost(alpha, alpha.outbox, "lost", resumable=True)
    (timer,) = kit.timers
    assert timer.delay == 60
    timer.fire()
    kit.flush()
    assert [(e.kind, e.name, e.text) for e in kit.entries()][-1] == ("leave", "alpha", "lost")
    assert next(m for m in kit.received(beta) if isinstance(m, Left)).reason == "lost"
    with pytest.raises(Refused) as refused:
        _resume(kit, welcome, after=0)
    assert refused.value.code == "resume_expired"


def test_a_resume_is_refused_for_a_wrong_epoch_a_forged_token_and_a_seq_beyond_the_end(kit: RoomKit) -> None:
    alpha = kit.join("alpha")
    kit.flush()
    welcome = _welcome(kit, alpha)
    outbox = Outbox(10)
    cases = [
        (welcome.token, "another epoch", 0, "resume_wrong_epoch"),
        (welcome.token[:-2] + "xx", welcome.epoch, 0, "resume_bad_token"),
        ("v1:1:beta:" + welcome.token.rsplit(":", 1)[1], welcome.epoch, 0, "resume_bad_token"),
        (welcome.token, welcome.epoch, 99, "resume_beyond_end"),
    ]
    for token, epoch, after, code in cases:
        with pytest.raises(Refused) as refused:
            kit.room.resume(token, epoch, after, outbox, "127.0.0.1")
        assert refused.value.code == code
    assert alpha.state is MemberState.JOINED and alpha.outbox is not outbox  # nothing changed


def test_a_replay_never_reaches_before_the_members_own_join(kit: RoomKit) -> None:
    alpha = kit.join("alpha")
    kit.room.say(alpha, "said before beta came")
    beta = kit.join("beta")
    kit.flush()
    resuming = _resume(kit, _welcome(kit, beta), after=0)
    assert resuming.after == _welcome(kit, beta).seq and _replay(kit, resuming) == []


def test_a_resend_with_a_known_id_is_acknowledged_not_logged(kit: RoomKit) -> None:
    alpha = kit.join("alpha")
    kit.flush()
    kit.room.say(alpha, "once", "id-1")
    kit.room.say(alpha, "once", "id-1")  # before the first is even durable: nothing to echo yet
    kit.flush()
    kit.room.say(alpha, "once", "id-1")
    kit.flush()
    echoes = [m for m in kit.received(alpha) if isinstance(m, ChatMessage)]
    assert [(m.seq, m.id) for m in echoes] == [(2, "id-1"), (2, "id-1")]
    assert [e.kind for e in kit.entries()].count("msg") == 1


def test_restored_members_are_away_until_they_resume_or_their_grace_ends(kit: RoomKit) -> None:
    restored = kit.room.restore([Present("alpha", 7, 1_795_485_000.0), Present("bad name!", 8, 0.0)])
    assert restored == 1 and [(m.name, m.away) for m in kit.room.who()] == [("alpha", True)]
    token = kit.room.tokens.issue("alpha", 7) if kit.room.tokens else ""
    resuming = kit.room.resume(token, "e1", 0, Outbox(10), "127.0.0.1")
    assert resuming.member.state is MemberState.RESUMING and resuming.after == 7


def test_a_refused_message_error_names_its_id(tmp_path: Path) -> None:
    """The session puts the refused message's id in the error, so the client will not send it again."""
    from chat_tracker.core.dialects import JSON
    from chat_tracker.core.session import Session, Timeouts

    kit = RoomKit.create(tmp_path)
    outbox = Outbox(100)
    session = Session(kit.room, JSON, outbox, "127.0.0.1", Timeouts(30, 30))
    session.start(b"", "Bearer unused")
    session.password_checked(True)
    session.receive_text('{"type":"join","name":"alpha"}')
    kit.flush()
    session.receive_text('{"type":"message","text":"   ","id":"m-1"}')
    frames, _ = outbox.take_now()
    assert frames[-1] == '{"type":"error","code":"empty","message":"empty message not sent","id":"m-1"}'
