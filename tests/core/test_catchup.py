"""What a returning member's welcome says she missed, and how presence reads, from data alone."""

from __future__ import annotations

from chat_protocol import ONLINE_TEXT, decode_server
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.catchup import catch_up, plain_lines
from chat_tracker.core.events import JOIN, LEAVE, MESSAGE, START, Event


def ring(first: int, last: int) -> list[Event]:
    """Consecutive events: a message from bob at every seq, a start line at every tenth."""
    return [Event(seq, 0.0, START if seq % 10 == 0 else MESSAGE, "bob", f"m{seq}") for seq in range(first, last + 1)]


def test_what_memory_holds_is_shown_and_older_seqs_are_counted() -> None:
    recent = ring(101, 200)
    caught = catch_up("alpha", 50, 151, recent)
    assert caught.untold == 50  # seqs 51-100: older than memory
    assert [event.seq for event in caught.missed] == [s for s in range(101, 151) if s % 10]  # no start lines
    assert caught.unread == caught.untold + len(caught.missed)
    lines = plain_lines(caught)
    assert lines[0] == f"* While you were away: {caught.unread} events since seq 50."
    assert "GET /log?after=50" in lines[1] and lines[2] == "bob: m101" and lines[-1].startswith("* That is everything")


def test_nothing_missed_says_nothing_and_her_own_comings_and_goings_are_no_news() -> None:
    assert plain_lines(catch_up("alpha", 150, 151, ring(101, 200))) == []
    own = [Event(5, 0.0, LEAVE, "alpha", LeaveReason.OFFLINE), Event(6, 0.0, MESSAGE, "bob", "hi")]
    caught = catch_up("alpha", 4, 7, own)
    assert [event.text for event in caught.missed] == ["hi"] and caught.untold == 0


def test_presence_is_its_own_frame_and_line() -> None:
    back = Event(3, 0.0, JOIN, "alpha", ONLINE_TEXT)
    gone = Event(4, 0.0, LEAVE, "alpha", LeaveReason.OFFLINE)
    parted = Event(5, 0.0, LEAVE, "alpha", LeaveReason.PART)
    assert (back.plain_frame(), gone.plain_frame()) == ("* alpha is online", "* alpha is offline")
    frames = [decode_server(event.json_frame()) for event in (back, gone, parted)]
    assert [type(frame).__name__ for frame in frames] == ["Presence", "Presence", "Left"]
    assert parted.plain_frame() == "* alpha left the chat (for good)"
    assert Event(6, 0.0, JOIN, "bob").plain_frame() == "* bob joined the chat"  # a guest's join is as ever
