"""The checker's records built from other members' frames: stints, gaps, acknowledgements; torn lines counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from chat_tracker.records import LogEntry
from support.bots import Bot
from support.member_records import kept_from, member_record, records_of_frames, torn_lines, verdict
from support.resume import Member

TS = "2026-12-06T10:00:00.000Z"
LOG = [
    LogEntry(1, TS, "start", "", "tracker"),
    LogEntry(2, TS, "join", "ann", ""),
    LogEntry(3, TS, "join", "bob", ""),
    LogEntry(4, TS, "msg", "bob", "hi"),
    LogEntry(5, TS, "msg", "ann", "hello"),
    LogEntry(6, TS, "leave", "bob", "lost"),
    LogEntry(7, TS, "join", "bob", ""),
    LogEntry(8, TS, "msg", "bob", "back"),
]


def frame(entry: LogEntry) -> dict[str, Any]:
    kind = {"msg": "message", "join": "joined", "leave": "left"}[entry.kind]
    return {"type": kind, "seq": entry.seq, "name": entry.name, "text": entry.text, "reason": entry.text}


def test_each_welcome_opens_a_stint_and_own_echoes_are_acknowledged() -> None:
    bob = [{"type": "welcome", "seq": 3}, frame(LOG[3]), frame(LOG[4]), {"type": "welcome", "seq": 7}, frame(LOG[7])]
    record = records_of_frames("bob", bob)
    assert [(s.after, [seen.seq for seen in s.received]) for s in record.stints] == [(3, [4, 5]), (7, [8])]
    assert record.acked == {"hi": 4, "back": 8} and record.sent == {"hi": "hi", "back": "back"}
    counts, violation = verdict(LOG, [record], seed=5)
    assert violation is None and (counts.acknowledged, counts.received_events) == (2, 3)


def test_a_missing_event_is_reported_with_the_seed_and_its_seq() -> None:
    record = records_of_frames("bob", [{"type": "welcome", "seq": 3}, frame(LOG[4])], until=5)
    counts, violation = verdict(LOG, [record], seed=5)
    assert counts.missed == 1 and violation is not None and violation.startswith("seed 5: first differing seq 4:")


def test_a_resume_that_did_not_recover_announces_its_gone_range() -> None:
    gone = {"type": "resumed", "seq": 8, "recovered": False, "gone": [3, 4]}
    frames = [{"type": "welcome", "seq": 2}, gone, frame(LOG[4]), frame(LOG[5]), frame(LOG[6]), frame(LOG[7])]
    counts, violation = verdict(LOG, [records_of_frames("ann", frames)])
    assert violation is None and counts.gaps_announced == 2


def test_kept_from_checks_only_what_retention_left() -> None:
    frames = [{"type": "welcome", "seq": 2}, *(frame(entry) for entry in LOG[2:])]
    kept = kept_from(records_of_frames("ann", frames), 6)
    counts, violation = verdict(LOG[5:], [kept])
    assert violation is None and (counts.received_events, counts.acknowledged) == (3, 0)


def test_torn_lines_counts_a_torn_tail_and_lines_that_do_not_parse(tmp_path: Path) -> None:
    log = tmp_path / "chat.log"
    log.write_bytes(f"1 {TS} start  tracker\nnot a line\n2 {TS} msg ann half a li".encode())
    assert torn_lines(log, tmp_path / "absent") == 2
    log.write_bytes(f"1 {TS} start  tracker\n".encode())
    assert torn_lines(log) == 0


def test_a_resume_member_is_put_back_in_order_by_seq() -> None:
    """support.resume.Member keeps events apart from welcomes: its record splits them at each welcome's seq."""
    bob = Member(Bot(cast(Any, None), "bob"), {"type": "welcome", "seq": 3, "token": "t", "epoch": "e"})
    bob.events += [frame(LOG[3]), frame(LOG[4]), frame(LOG[7])]
    bob.other.append({"type": "welcome", "seq": 7})
    gone = {"type": "resumed", "seq": 5, "recovered": False, "gone": [4, 4]}
    record = member_record(bob, [gone], said=["never echoed"])
    assert [(s.after, [seen.seq for seen in s.received], s.gaps) for s in record.stints] == [
        (3, [4, 5], [(4, 4)]),
        (7, [8], []),
    ]
    assert record.sent == {"never echoed": "never echoed", "hi": "hi", "back": "back"}
