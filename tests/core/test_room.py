"""The room: names, order, fan-out, refusals, the log-before-deliver rule and shutdown (fake clocks, no sockets)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from chat_protocol import ChatMessage, InvalidName, Joined, Left, Limits, NameRefused, ReservedName, Welcome
from chat_tracker.core.dialects import JSON, PLAIN
from chat_tracker.core.room import Kicked, Member, Refused
from chat_tracker.storage.chatlog import LogWriteError
from support.fakes import FakeWire
from support.roomkit import RoomKit


@pytest.fixture
def kit(tmp_path: Path) -> RoomKit:
    return RoomKit.create(tmp_path)


def _seqs(messages: Sequence[object]) -> list[int]:
    return [m.seq for m in messages if isinstance(m, (Welcome, Joined, ChatMessage, Left))]


def test_events_are_logged_in_order_with_consecutive_seqs(kit: RoomKit) -> None:
    """start, joins, a message and a leave become chat.log lines 1..5 in the order they happened."""
    kit.room.start("tracker started")
    alpha = kit.join("alpha")
    beta = kit.join("beta")
    kit.room.say(alpha, "Hi I am alpha")
    kit.room.leave(beta, "exit")
    assert kit.entries() == []  # nothing is written before the flush
    kit.flush()
    got = [(e.seq, e.kind, e.name, e.text) for e in kit.entries()]
    assert got == [
        (1, "start", "-", "tracker started"),
        (2, "join", "alpha", ""),
        (3, "join", "beta", ""),
        (4, "msg", "alpha", "Hi I am alpha"),
        (5, "leave", "beta", "exit"),
    ]


def test_seq_continues_after_a_restart(tmp_path: Path) -> None:
    """A room on an existing chat.log numbers its first event one past the last line."""
    first = RoomKit.create(tmp_path)
    first.join("alpha")
    first.flush()
    first.log.close()
    second = RoomKit.create(tmp_path)
    second.join("beta")
    second.flush()
    assert [e.seq for e in second.entries()] == [1, 2]


@pytest.mark.parametrize(
    "name", ["", "-alpha", "_a", ".a", "al pha", "alpha!", "ålpha", "\u0430lpha", "a" * 33, "a\n", "*star", "! bang"]
)
def test_invalid_names_are_refused(kit: RoomKit, name: str) -> None:
    """Names outside 1-32 of A-Z a-z 0-9 _ - . (starting alphanumeric) are ``name_invalid``."""
    with pytest.raises(InvalidName) as caught:
        kit.join(name)
    assert caught.value.code == "name_invalid"
    assert kit.room.names() == []


@pytest.mark.parametrize(
    "name", ["admin", "ADMIN", "Adm1n", "r00t", "SYSTEM", "tracker", "who", "server", "a-d-m-i-n", "Every0ne"]
)
def test_reserved_names_are_refused_in_any_spelling(kit: RoomKit, name: str) -> None:
    """Reserved names, in any case or lookalike spelling, are ``name_reserved``."""
    with pytest.raises(ReservedName) as caught:
        kit.join(name)
    assert caught.value.code == "name_reserved"


@pytest.mark.parametrize("other", ["alpha", "ALPHA", "Alpha", "a1pha", "A1PHA", "alp.ha", "a-l-p-h-a", "alpha_"])
def test_names_too_close_to_an_online_one_are_taken(kit: RoomKit, other: str) -> None:
    """While alpha is online, the same name in another case or with lookalikes is ``name_taken``."""
    kit.join("alpha")
    with pytest.raises(Refused) as caught:
        kit.join(other)
    assert caught.value.code == "name_taken"
    assert kit.room.names() == ["alpha"]


def test_distinct_names_are_all_admitted(kit: RoomKit) -> None:
    """Names that differ in more than case and lookalikes may be online together; 32 characters is fine."""
    for name in ["alpha", "alpha2", "beta", "a" * 32, "Z"]:
        kit.join(name)
    assert kit.room.names() == ["alpha", "alpha2", "beta", "a" * 32, "Z"]


def test_name_is_free_again_after_its_owner_leaves(kit: RoomKit) -> None:
    """Once alpha leaves, A1PHA can join."""
    alpha = kit.join("alpha")
    kit.room.leave(alpha, "exit")
    kit.join("A1PHA")
    assert kit.room.names() == ["A1PHA"]


def test_newcomer_receives_nothing_older_than_her_welcome(kit: RoomKit) -> None:
    """Events before a join, even in the same unflushed batch, never reach the joiner; her welcome comes first."""
    alpha = kit.join("alpha")
    kit.room.say(alpha, "logged and delivered before beta")
    kit.flush()
    kit.room.say(alpha, "same batch, before beta")
    beta = kit.join("beta")
    kit.room.say(alpha, "after beta")
    kit.flush()
    got = kit.received(beta)
    assert isinstance(got[0], Welcome)
    assert got[0].name == "beta" and got[0].members == ["alpha", "beta"]
    assert got[0].limits == Limits()
    assert [m.text for m in got if isinstance(m, ChatMessage)] == ["after beta"]


WIRINGS: dict[str, Callable[[], FakeWire | None]] = {
    "asgi": lambda: None,  # text frames through the writer task
    "wire-ready": lambda: FakeWire(ready=True),  # pre-built frames written at once
    "wire-busy": lambda: FakeWire(ready=False),  # pre-built frames queued behind a full socket
}


@pytest.mark.parametrize("wiring", list(WIRINGS))
def test_every_member_receives_the_same_events_in_seq_order(kit: RoomKit, wiring: str) -> None:
    """Members see chat.log's order; JSON members get their own messages back, plain ones do not."""
    make_wire = WIRINGS[wiring]
    alpha, beta, gamma = (
        kit.join(n, d, wire=make_wire()) for n, d in (("alpha", JSON), ("beta", JSON), ("gamma", PLAIN))
    )
    bystanders = [kit.join("delta", JSON, wire=make_wire()), kit.join("omega", PLAIN, wire=make_wire())]
    for round_ in range(3):
        kit.room.say(alpha, f"a{round_}")
        kit.room.say(gamma, f"g{round_}")
        kit.room.say(beta, f"b{round_}")
        if round_ != 1:
            kit.flush()  # batches of different sizes
        kit.inbox(alpha)  # the socket drains between batches
    kit.flush()
    logged = [e for e in kit.entries() if e.kind == "msg"]
    for member in (alpha, beta, bystanders[0]):
        got = kit.received(member)
        texts = [m.text for m in got if isinstance(m, ChatMessage)]
        assert texts == [e.text for e in logged]
        seqs = _seqs(got)
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    plain = kit.inbox(gamma).frames
    chat_lines = [line for line in plain if ": " in line and not line.startswith(("Hi ", "Online", "Limits", "Just"))]
    assert chat_lines == [f"{e.name}: {e.text}" for e in logged if e.name != "gamma"]
    assert kit.inbox(bystanders[1]).frames[4:] == [f"{e.name}: {e.text}" for e in logged]


def test_plain_members_see_notices_and_escaped_text(kit: RoomKit) -> None:
    """A plain member sees the welcome lines, ``* x joined``, ``name: text`` with controls escaped, ``* x left``."""
    beta = kit.join("beta", PLAIN)
    alpha = kit.join("alpha")
    kit.room.say(alpha, "\x1b[2Jhi\u202e\nthere")
    kit.room.leave(alpha, "flooding")
    kit.flush()
    assert kit.inbox(beta).frames == [
        "Hi beta, You have been added to the server.",
        "Online now (1): beta",
        "Limits: 2000 characters per message, 10 messages/s (bursts of 20).",
        "Just type your message and press Enter; send exit to leave.",
        "* alpha joined the chat",
        "alpha: \\x1b[2Jhi\\u202e\\nthere",
        "* alpha left the chat (removed for flooding)",
    ]


def test_leave_is_idempotent(kit: RoomKit) -> None:
    """However often a member is taken out, chat.log has exactly one leave line for it, with the first reason."""
    alpha = kit.join("alpha")
    kit.join("beta")
    kit.room.leave(alpha, "exit")
    kit.room.leave(alpha, "closed")
    kit.room.drop_slow(alpha)
    kit.flush()
    kit.room.leave(alpha, "lost")
    kit.flush()
    leaves = [(e.name, e.text) for e in kit.entries() if e.kind == "leave"]
    assert leaves == [("alpha", "exit")]
    assert kit.room.stats.leaves == 1 and kit.room.stats.slow_drops == 0


def test_leaver_gets_everything_before_its_leave_then_its_close(kit: RoomKit) -> None:
    """A leaving member receives every event logged before its leave, then the close it asked for."""
    alpha, beta = kit.join("alpha"), kit.join("beta")
    kit.room.say(beta, "last words for alpha")
    kit.room.say(alpha, "my own last words")
    kit.room.leave(alpha, "exit", close=(1000, "left", ('{"type":"bye","reason":"left","message":"Bye, alpha."}',)))
    kit.room.say(beta, "alpha is gone")
    kit.flush()
    box = kit.inbox(alpha)
    texts = [m.text for m in kit.received(alpha) if isinstance(m, ChatMessage)]
    assert texts == ["last words for alpha", "my own last words"]
    assert box.frames[-1] == '{"type":"bye","reason":"left","message":"Bye, alpha."}'
    assert box.close is not None and box.close.code == 1000
    beta_got = kit.received(beta)
    assert Left(seq=5, ts=beta_got[-2].ts, name="alpha", reason="exit") == beta_got[-2]  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ["", " ", "\n", "\t \r\n", "\u2028"])
def test_empty_messages_are_refused(kit: RoomKit, text: str) -> None:
    """An empty or whitespace-only message is ``empty`` and is not logged."""
    alpha = kit.join("alpha")
    with pytest.raises(Refused) as caught:
        kit.room.say(alpha, text)
    assert caught.value.code == "empty"
    kit.flush()
    assert [e.kind for e in kit.entries()] == ["join"]


def test_message_length_limit_is_inclusive(tmp_path: Path) -> None:
    """A message of exactly the limit is sent; one character more is ``too_long``, saying both numbers."""
    kit = RoomKit.create(tmp_path, Limits(max_message_chars=10))
    alpha = kit.join("alpha")
    kit.room.say(alpha, "😀" * 10)
    with pytest.raises(Refused) as caught:
        kit.room.say(alpha, "x" * 11)
    assert caught.value.code == "too_long"
    assert "11" in caught.value.message and "10" in caught.value.message
    kit.flush()
    assert [e.text for e in kit.entries() if e.kind == "msg"] == ["😀" * 10]


def test_lone_surrogate_is_refused(kit: RoomKit) -> None:
    """Text with a lone surrogate (possible through JSON's \\ud800) is ``invalid_text`` and not logged."""
    alpha = kit.join("alpha")
    with pytest.raises(Refused) as caught:
        kit.room.say(alpha, "hi \ud800")
    assert caught.value.code == "invalid_text"
    kit.flush()
    assert [e.kind for e in kit.entries()] == ["join"]


def test_rate_limit_then_kicked_for_flooding(tmp_path: Path) -> None:
    """Past the burst messages are ``rate_limited``; past the flood tolerance the member is kicked with 4006."""
    kit = RoomKit.create(tmp_path, Limits(rate_per_second=2, rate_burst=3), flood_tolerance=2)
    alpha, beta = kit.join("alpha"), kit.join("beta")
    for index in range(3):
        kit.room.say(alpha, f"burst {index}")
    for _ in range(2):
        with pytest.raises(Refused) as caught:
            kit.room.say(alpha, "too fast")
        assert caught.value.code == "rate_limited" and not isinstance(caught.value, Kicked)
    with pytest.raises(Kicked) as kicked:
        kit.room.say(alpha, "still too fast")
    assert kicked.value.code == "flooding"
    assert alpha.left and kit.room.names() == ["beta"]
    kit.room.say(alpha, "after the kick")  # ignored: alpha is gone
    kit.flush()
    assert [(e.kind, e.name, e.text) for e in kit.entries()][-1] == ("leave", "alpha", "flooding")
    assert [e.text for e in kit.entries() if e.kind == "msg"] == ["burst 0", "burst 1", "burst 2"]
    box = kit.inbox(alpha)
    assert box.close is not None and box.close.code == 4006
    assert box.frames[-2:] == [
        '{"type":"error","code":"flooding","message":"you kept sending over the rate limit; disconnected"}',
        '{"type":"bye","reason":"flooding","message":"you kept sending over the rate limit; disconnected"}',
    ]
    assert kit.room.stats.refused_messages == 3 and kit.room.stats.flood_drops == 1
    kit.room.say(beta, "beta is unaffected")


def test_rate_refills_with_time(tmp_path: Path) -> None:
    """After the burst, waiting 1/rate seconds allows exactly one more message."""
    kit = RoomKit.create(tmp_path, Limits(rate_per_second=4, rate_burst=2))
    alpha = kit.join("alpha")
    kit.room.say(alpha, "1")
    kit.room.say(alpha, "2")
    with pytest.raises(Refused):
        kit.room.say(alpha, "3")
    kit.mono.advance(0.25)
    kit.room.say(alpha, "4")
    with pytest.raises(Refused):
        kit.room.say(alpha, "5")
    kit.mono.advance(10)
    kit.room.say(alpha, "6")
    kit.room.say(alpha, "7")
    with pytest.raises(Refused):
        kit.room.say(alpha, "8")  # the burst caps the saved-up allowance


class FlakyLog:
    """Makes ``kit.log.append`` fail with ENOSPC while ``failing`` is set."""

    def __init__(self, kit: RoomKit) -> None:
        self.failing = False
        self._append = kit.log.append
        kit.log.append = self.append  # type: ignore[method-assign]

    def append(self, data: bytes) -> None:
        if self.failing:
            raise LogWriteError(28, "No space left on device")
        self._append(data)


def test_nothing_is_delivered_before_it_is_logged(kit: RoomKit) -> None:
    """While chat.log cannot be written nobody sees the batch; after a successful flush everyone does, in order."""
    flaky = FlakyLog(kit)
    trouble: list[LogWriteError | None] = []
    kit.journal.on_trouble = trouble.append
    alpha, beta = kit.join("alpha"), kit.join("beta", PLAIN)
    kit.flush()
    kit.inbox(alpha).frames.clear()
    kit.inbox(beta).frames.clear()
    kit.room.say(alpha, "one")
    flaky.failing = True
    kit.flush()
    kit.flush()
    assert kit.inbox(alpha).frames == [] and kit.inbox(beta).frames == []
    assert not kit.room.log_available
    with pytest.raises(Refused) as refused:
        kit.room.say(alpha, "two")
    assert refused.value.code == "log_unavailable"
    with pytest.raises(Refused) as refused_join:
        kit.join("gamma")
    assert refused_join.value.code == "log_unavailable"
    assert [e.kind for e in kit.entries()] == ["join", "join"]
    flaky.failing = False
    kit.flush()
    assert kit.room.log_available
    assert kit.inbox(beta).frames == ["alpha: one"]
    assert [m.text for m in kit.received(alpha) if isinstance(m, ChatMessage)] == ["one"]
    assert [e.text for e in kit.entries() if e.kind == "msg"] == ["one"]
    kit.room.say(alpha, "two")
    kit.flush()
    assert kit.inbox(beta).frames == ["alpha: one", "alpha: two"]
    assert len(trouble) == 2 and isinstance(trouble[0], LogWriteError) and trouble[1] is None
    assert kit.journal.stats.log_write_errors == 2


def test_a_leave_while_the_log_fails_is_logged_later(kit: RoomKit) -> None:
    """A member leaving during a log outage is logged once the log works, and only then closed."""
    flaky = FlakyLog(kit)
    alpha, beta = kit.join("alpha"), kit.join("beta")
    kit.flush()
    flaky.failing = True
    kit.room.leave(alpha, "closed")
    kit.flush()
    assert kit.inbox(alpha).close is None
    flaky.failing = False
    kit.flush()
    assert kit.inbox(alpha).close is not None
    assert [(e.kind, e.name) for e in kit.entries()][-1] == ("leave", "alpha")
    assert isinstance(kit.received(beta)[-1], Left)


def _bye(member: Member) -> tuple[str, ...]:
    return (member.dialect.bye("shutdown", "The tracker is shutting down. Bye."),)


def test_shutdown_logs_leaves_and_stop_and_closes_everyone_with_1001(kit: RoomKit) -> None:
    """Shutdown logs one leave per member and a stop line, and closes each outbox with 1001 after its goodbye."""
    alpha, beta = kit.join("alpha"), kit.join("beta", PLAIN)
    kit.room.say(alpha, "pending when the tracker stops")
    empties: list[None] = []
    kit.room.on_empty = lambda: empties.append(None)
    assert kit.shutdown("tracker stopped", _bye) == 2
    got = [(e.kind, e.name, e.text) for e in kit.entries()]
    assert got[2:] == [
        ("msg", "alpha", "pending when the tracker stops"),
        ("leave", "alpha", "shutdown"),
        ("leave", "beta", "shutdown"),
        ("stop", "-", "tracker stopped"),
    ]
    assert kit.inbox(beta).frames[-2:] == [
        "alpha: pending when the tracker stops",
        "* The tracker is shutting down. Bye.",
    ]
    for member in (alpha, beta):
        close = kit.inbox(member).close
        assert close is not None and close.code == 1001
    assert kit.room.names() == [] and kit.room.member_count == 0
    assert kit.shutdown("again", _bye) == 0
    assert [e.kind for e in kit.entries()].count("stop") == 1
    with pytest.raises(Refused) as caught:
        kit.join("gamma")
    assert caught.value.code == "shutting_down"


def test_on_empty_fires_once_when_the_last_member_leaves(kit: RoomKit) -> None:
    """on_empty is called when the last member leaves, not before, and not again for a repeated leave."""
    calls: list[None] = []
    kit.room.on_empty = lambda: calls.append(None)
    alpha, beta = kit.join("alpha"), kit.join("beta")
    kit.room.leave(alpha, "exit")
    assert calls == []
    kit.room.leave(beta, "closed")
    kit.room.leave(beta, "closed")
    assert len(calls) == 1


def test_who_lists_members_with_idle_time(kit: RoomKit) -> None:
    """who() lists members in join order, with UTC join time and seconds since their last message."""
    alpha, _beta = kit.join("alpha"), kit.join("beta")
    kit.mono.advance(5)
    kit.room.say(alpha, "hi")
    kit.mono.advance(2.5)
    info = kit.room.who()
    assert [(m.name, m.idle_seconds) for m in info] == [("alpha", 2.5), ("beta", 7.5)]
    assert info[0].joined_at == "2026-11-24T01:50:40.000Z"


def test_slow_member_is_dropped_on_overflow(kit: RoomKit) -> None:
    """drop_slow removes the member with reason ``slow`` and counts it once."""
    alpha = kit.join("alpha", queue_size=2)
    kit.room.drop_slow(alpha)
    kit.room.drop_slow(alpha)
    kit.flush()
    assert [(e.kind, e.text) for e in kit.entries()][-1] == ("leave", "slow")
    assert kit.room.stats.slow_drops == 1


def test_rejoin_gets_a_fresh_membership(kit: RoomKit) -> None:
    """A name that left and came back receives only what follows its new welcome."""
    alpha, beta = kit.join("alpha"), kit.join("beta")
    kit.room.leave(beta, "exit")
    kit.room.say(alpha, "while beta was away")
    kit.flush()
    beta_again = kit.join("beta")
    kit.room.say(alpha, "welcome back")
    kit.flush()
    got = kit.received(beta_again)
    assert isinstance(got[0], Welcome)
    assert [m.text for m in got if isinstance(m, ChatMessage)] == ["welcome back"]


def test_name_refusal_is_a_name_refused(kit: RoomKit) -> None:
    """Invalid and reserved names share the NameRefused base the adapter catches."""
    assert issubclass(InvalidName, NameRefused) and issubclass(ReservedName, NameRefused)
