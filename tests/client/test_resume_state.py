"""The resumable session state: last seq, dedupe, acknowledgement by echo, what to send again."""

from __future__ import annotations

from chat_client.items import rejoined_notice, resumed_notices
from chat_client.resume import MAX_WAITING, Pending, ResumeState, message_ids
from chat_protocol import Bye, ChatMessage, Error, Joined, Left, Limits, Members, Resume, Resumed, Welcome

TS = "2026-12-02T01:00:00.000Z"


def welcome(seq: int = 10, name: str = "alpha", token: str = "tok1", epoch: str = "ep1") -> Welcome:
    return Welcome(seq, TS, name, "hi", [name], Limits(), epoch=epoch, token=token, resume_grace=60)


def resumed(seq: int, replayed: int, messages: int = 0, gone: list[int] | None = None) -> Resumed:
    return Resumed(
        seq=seq,
        name="alpha",
        epoch="ep1",
        token="tok2",
        recovered=gone is None,
        replayed=replayed,
        messages=messages,
        members=["alpha"],
        limits=Limits(),
        gone=gone,
    )


def says(seq: int, text: str, name: str = "alpha", id: str | None = None) -> ChatMessage:
    return ChatMessage(seq, TS, name, text, id)


def state() -> ResumeState:
    return ResumeState(welcome(), ids=message_ids("tag"))


def test_ids_are_a_tag_and_a_counter() -> None:
    """Ids are unique per process: a random 8-hex tag (unless given), a dash, a counter; well under 64 chars."""
    ids = message_ids("cafe0123")
    assert [next(ids), next(ids)] == ["cafe0123-1", "cafe0123-2"]
    tag, _, number = next(message_ids()).partition("-")
    assert len(tag) == 8 and int(tag, 16) >= 0 and number == "1"


def test_resume_request_after_the_last_seq() -> None:
    """The resume asks for what follows the last event received, with the welcome's token and epoch."""
    memory = state()
    assert memory.resume_request() == Resume(token="tok1", epoch="ep1", after=10)
    assert memory.on_event(Joined(11, TS, "beta"))
    assert memory.on_event(Left(12, TS, "beta", "exit"))
    assert memory.resume_request() == Resume(token="tok1", epoch="ep1", after=12)


def test_no_token_means_no_resume() -> None:
    """A tracker that gave no token (older than resume) is rejoined, not resumed."""
    assert ResumeState(welcome(token="")).resume_request() is None


def test_events_already_received_are_dropped() -> None:
    """An event whose seq is not above the last one received is not shown again; untimed frames always are."""
    memory = state()
    assert memory.on_event(says(11, "one", name="beta"))
    assert not memory.on_event(says(11, "one", name="beta"))
    assert not memory.on_event(says(5, "old", name="beta"))
    assert memory.on_event(Members([]))
    assert memory.on_event(Bye("left"))
    assert memory.last_seq == 11


def test_echo_acknowledges_by_id() -> None:
    """An echo carrying our id removes exactly that entry, wherever it is in the FIFO."""
    memory = state()
    first, second = memory.sent("same"), memory.sent("same")
    assert memory.on_event(says(11, "same", id=second.id))
    assert list(memory.unacknowledged) == [first]


def test_a_refused_message_is_never_sent_again() -> None:
    """An error naming our message's id (too long, rate limited...) means no echo will come: it is dropped."""
    memory = state()
    refused, kept = memory.sent("too long"), memory.sent("fine")
    assert memory.on_event(Error("too_long", "message too long", id=refused.id))
    assert list(memory.unacknowledged) == [kept]


def test_echo_without_id_acknowledges_the_oldest_same_text() -> None:
    """A replay from chat.log has no id: the oldest unacknowledged entry with that text is the one."""
    memory = state()
    first, other, again = memory.sent("hi"), memory.sent("other"), memory.sent("hi")
    assert memory.on_event(says(11, "hi"))
    assert list(memory.unacknowledged) == [other, again]
    assert memory.on_event(says(12, "hi", name="beta"))  # someone else's words acknowledge nothing
    assert list(memory.unacknowledged) == [other, again]
    assert first not in memory.unacknowledged


def test_duplicate_echo_acknowledges_only_by_id() -> None:
    """A duplicate (already seen seq) acknowledges by id, never by text: that would eat a later same-text line."""
    memory = state()
    memory.on_event(says(11, "hi"))
    repeat = memory.sent("hi")
    assert not memory.on_event(says(11, "hi"))
    assert list(memory.unacknowledged) == [repeat]
    assert not memory.on_event(says(11, "hi", id=repeat.id))  # a resend the tracker had already logged
    assert not memory.unacknowledged


def test_replay_then_resend_what_is_still_unacknowledged() -> None:
    """After resumed: the replay acknowledges what it shows, the rest is resent in order with the same ids."""
    memory = state()
    logged, lost, later = memory.sent("logged"), memory.sent("lost"), memory.sent("later")
    memory.on_resumed(resumed(seq=13, replayed=2, messages=2))
    assert memory.replaying
    assert memory.token == "tok2"
    assert memory.on_event(says(12, "beta talks", name="beta"))
    assert memory.replaying
    assert memory.on_event(says(13, "logged"))  # read back from chat.log: no id
    assert not memory.replaying
    assert memory.lines_to_resend() == [lost, later]
    assert logged not in memory.unacknowledged
    assert memory.resume_request() == Resume(token="tok2", epoch="ep1", after=13)


def test_nothing_replayed() -> None:
    """``replayed == 0``: the replay is complete at once, and the last seq moves to resumed.seq."""
    memory = state()
    memory.on_resumed(resumed(seq=10, replayed=0))
    assert not memory.replaying
    assert memory.last_seq == 10


def test_gone_events_move_the_last_seq() -> None:
    """Events no longer kept are behind us too: the next resume asks after the replay's end."""
    memory = state()
    memory.on_resumed(resumed(seq=30, replayed=1, gone=[11, 29]))
    assert memory.on_event(Joined(30, TS, "gamma"))
    assert not memory.replaying
    assert memory.last_seq == 30


def test_replay_ends_after_its_count_even_short_of_its_seq() -> None:
    """A replay that stops short of resumed.seq still ends after ``replayed`` events: the resend is not held forever."""
    memory = state()
    memory.on_resumed(resumed(seq=20, replayed=1))
    assert memory.on_event(Joined(15, TS, "gamma"))
    assert not memory.replaying
    assert memory.last_seq == 20


def test_queue_is_bounded() -> None:
    """Lines typed while disconnected are kept up to MAX_WAITING; the next is refused."""
    memory = state()
    kept = [memory.queue(f"line {index}") for index in range(MAX_WAITING)]
    assert all(isinstance(entry, Pending) for entry in kept)
    assert memory.queue("one too many") is None
    assert len(memory.waiting) == MAX_WAITING


def test_waiting_lines_go_after_the_unacknowledged() -> None:
    """The resend is the unacknowledged first, then the waiting lines, which become unacknowledged."""
    memory = state()
    sent = memory.sent("sent before the loss")
    waited = memory.queue("typed while away")
    assert memory.lines_to_resend() == [sent, waited]
    assert not memory.waiting
    typed_during_resend = memory.queue("typed during the resend")
    assert memory.next_waiting() == typed_during_resend
    assert memory.next_waiting() is None
    assert list(memory.unacknowledged) == [sent, waited, typed_during_resend]


def test_fresh_join_resets_position_and_keeps_what_is_owed() -> None:
    """A rejoin (resume refused) takes the new welcome's seq even if lower (new epoch) and keeps the owed lines."""
    memory = state()
    memory.on_event(Joined(50, TS, "beta"))
    owed = memory.sent("owed")
    memory.on_welcome(welcome(seq=3, name="alpha2", token="tok9", epoch="ep2"))
    assert (memory.last_seq, memory.name, memory.epoch) == (3, "alpha2", "ep2")
    assert memory.on_event(Joined(4, TS, "beta"))
    assert memory.lines_to_resend() == [owed]
    assert memory.on_event(says(5, "owed", name="alpha2"))
    assert not memory.unacknowledged


def test_notices() -> None:
    """The wording of the reconnection notices."""
    assert resumed_notices(resumed(seq=10, replayed=0)) == ["reconnected; nothing was missed"]
    assert resumed_notices(resumed(seq=30, replayed=14, messages=12)) == ["reconnected; 12 missed messages follow"]
    assert resumed_notices(resumed(seq=30, replayed=1, messages=1)) == ["reconnected; 1 missed message follows"]
    assert resumed_notices(resumed(seq=130, replayed=0, gone=[120, 130])) == [
        "reconnected; nothing follows",
        "events 120-130 are no longer kept by the tracker and were missed",
    ]
    assert rejoined_notice("the resume token expired", "alpha", 12) == (
        "could not resume (the resume token expired); joined again as alpha; "
        "what was said after seq 12 until now was missed"
    )
    assert rejoined_notice(None, "al\x1bpha", 12).startswith(
        "reconnected (this tracker cannot resume); joined again as al\\x1bpha;"
    )
