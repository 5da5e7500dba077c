"""The independent checker finds each kind of violation, names the seed and the first differing seq, and counts."""

from __future__ import annotations

import pytest

from chat_tracker.records import LogEntry
from support.checker import CheckFailed, MemberRecord, Seen, Stint, check

TS = "2026-12-06T10:00:00.000Z"


def log(*rows: tuple[str, str, str]) -> list[LogEntry]:
    """chat.log entries with seqs 1.. for (kind, name, text) rows."""
    return [LogEntry(seq, TS, kind, name, text) for seq, (kind, name, text) in enumerate(rows, 1)]


def seen(entry: LogEntry) -> Seen:
    return Seen(entry.seq, entry.kind, entry.name, entry.text if entry.kind == "msg" else "")


ROOM = log(
    ("start", "", "tracker"),
    ("join", "ann", ""),
    ("join", "bob", ""),
    ("msg", "ann", "hello"),
    ("msg", "bob", "hi"),
    ("leave", "bob", "closed"),
)


def ann(received: list[Seen], until: int | None = None, gaps: list[tuple[int, int]] | None = None) -> MemberRecord:
    stint = Stint(after=2, until=until, received=received, gaps=gaps or [])
    return MemberRecord("ann", [stint], sent={"a-0": "hello"}, acked={"a-0": 4})


def test_a_faithful_run_counts_and_passes() -> None:
    counts = check(ROOM, [ann([seen(e) for e in ROOM[2:]], until=6)], seed=7)
    assert (counts.acknowledged, counts.received_events, counts.logged_messages) == (1, 4, 2)
    assert counts.violations() == 0


@pytest.mark.parametrize(
    ("received", "counter", "first"),
    [
        ([seen(ROOM[2]), seen(ROOM[4]), seen(ROOM[5])], "missed", 4),  # ann never got her own echo
        ([seen(ROOM[2]), seen(ROOM[3]), seen(ROOM[3]), seen(ROOM[4]), seen(ROOM[5])], "duplicated", 4),
        ([seen(ROOM[2]), seen(ROOM[4]), seen(ROOM[3]), seen(ROOM[5])], "reordered", 4),
        ([seen(ROOM[2]), Seen(4, "msg", "ann", "hellO"), seen(ROOM[4]), seen(ROOM[5])], "forged", 4),
        ([seen(ROOM[2]), seen(ROOM[3]), seen(ROOM[4]), seen(ROOM[5]), Seen(7, "msg", "eve", "x")], "forged", 7),
    ],
)
def test_each_violation_is_counted_and_names_seed_and_first_seq(received: list[Seen], counter: str, first: int) -> None:
    counts = check(ROOM, [ann(received, until=6)], strict=False)
    assert getattr(counts, counter) >= 1 and counts.violations() == getattr(counts, counter)
    with pytest.raises(CheckFailed, match=f"seed 31: first differing seq {first}:"):
        check(ROOM, [ann(received, until=6)], seed=31)


def test_an_acknowledged_message_missing_from_chat_log_is_lost() -> None:
    member = MemberRecord("ann", [], sent={"a-0": "hello", "a-1": "again"}, acked={"a-0": 4, "a-1": 7})
    counts = check(ROOM, [member], strict=False)
    assert (counts.acknowledged, counts.lost) == (2, 1)


def test_a_message_logged_twice_is_duplicated() -> None:
    twice = [*ROOM, LogEntry(7, TS, "msg", "ann", "hello")]
    assert check(twice, [ann([], until=2)], strict=False).duplicated == 1


def test_an_announced_gap_excuses_exactly_its_range() -> None:
    received = [seen(ROOM[2]), seen(ROOM[5])]
    counts = check(ROOM, [ann(received, until=6, gaps=[(4, 5)])])
    assert counts.gaps_announced == 2
    short = check(ROOM, [ann(received, until=6, gaps=[(4, 4)])], strict=False)
    assert (short.gaps_announced, short.missed) == (1, 1)


def test_a_member_cut_off_is_owed_only_up_to_what_it_last_received() -> None:
    assert check(ROOM, [ann([seen(ROOM[2]), seen(ROOM[3])])]).received_events == 2
    with pytest.raises(CheckFailed, match="never received seq 5"):
        check(ROOM, [ann([seen(ROOM[2]), seen(ROOM[3])], until=6)])
