"""The compose test's checker, on made-up runs: it passes a good one and catches each kind of fault.

No Docker needed: the run is built from the script, as a correct tracker would log and deliver it.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from checker import (
    LogLine,
    check_chat_log,
    check_deliveries,
    check_log_endpoint,
    check_members_endpoint,
    parse_chat_log,
    this_run,
)
from conversation import MEMBERS, SCRIPT

Event = dict[str, Any]


def ts(seq: int) -> str:
    return f"2026-11-24T01:50:{seq:02d}.000Z"


def good_run() -> tuple[list[LogLine], dict[str, list[Event]]]:
    """chat.log and the members' transcripts of a correct run of the script."""
    log = [LogLine(1, ts(1), "start", "-", "tracker started")]
    for name in MEMBERS:
        log.append(LogLine(len(log) + 1, ts(len(log) + 1), "join", name, ""))
    for step in SCRIPT:
        kind, text = ("msg", step.text) if step.text is not None else ("leave", "exit")
        log.append(LogLine(len(log) + 1, ts(len(log) + 1), kind, step.who, text))
    transcripts = {}
    for name in MEMBERS:
        join = next(line.seq for line in log if line.kind == "join" and line.name == name)
        leave = next(line.seq for line in log if line.kind == "leave" and line.name == name)
        events: list[Event] = [{"type": "welcome", "seq": join, "ts": ts(join), "name": name, "members": []}]
        for line in log:
            if join < line.seq < leave:
                events.append(as_event(line))
        events.append({"type": "bye", "reason": "left", "message": f"Bye, {name}."})
        transcripts[name] = events
    return log, transcripts


def as_event(line: LogLine) -> Event:
    event: Event = {"seq": line.seq, "ts": line.ts, "name": line.name}
    if line.kind == "msg":
        return {**event, "type": "message", "text": line.text}
    if line.kind == "join":
        return {**event, "type": "joined"}
    return {**event, "type": "left", "reason": line.text}


def all_failures(log: list[LogLine], transcripts: dict[str, list[Event]]) -> list[str]:
    failures = check_chat_log(log)
    for name in MEMBERS:
        failures += check_deliveries(name, transcripts[name], this_run(log))
    return failures


def test_a_correct_run_passes() -> None:
    """Nothing to report on a correct run."""
    assert all_failures(*good_run()) == []


def test_a_message_lost_for_one_member_is_caught() -> None:
    """A message missing from one member's transcript fails that member's check."""
    log, transcripts = good_run()
    transcripts["beta"] = [e for e in transcripts["beta"] if e.get("text") != "I am gamma"]
    failures = all_failures(log, transcripts)
    assert len(failures) == 1 and failures[0].startswith("beta: received")


def test_messages_out_of_order_are_caught() -> None:
    """Two messages swapped in a transcript fail the check."""
    log, transcripts = good_run()
    events = transcripts["gamma"]
    events[5], events[6] = events[6], events[5]
    assert [f[:6] for f in all_failures(log, transcripts)] == ["gamma:"]


def test_a_missing_leave_notice_is_caught() -> None:
    """alpha must be told that beta left."""
    log, transcripts = good_run()
    transcripts["alpha"] = [e for e in transcripts["alpha"] if e.get("type") != "left"]
    assert [f[:6] for f in all_failures(log, transcripts)] == ["alpha:"]


def test_chat_log_faults_are_caught() -> None:
    """A gap in seq, a message missing from chat.log, a wrong leave reason: each is reported."""
    log, _ = good_run()
    gap = log[:5] + [replace(line, seq=line.seq + 1) for line in log[5:]]
    assert any("not contiguous" in f for f in check_chat_log(gap))
    missing = [line for line in log if line.text != "One day I will be sigma"]
    assert any("messages" in f for f in check_chat_log(missing))
    lost = [replace(line, text="lost") if line.kind == "leave" else line for line in log]
    assert any("leaves" in f for f in check_chat_log(lost))


def test_a_missing_bye_is_caught() -> None:
    """Each member's transcript must end with the tracker's bye."""
    log, transcripts = good_run()
    broken = copy.deepcopy(transcripts)
    broken["gamma"].pop()
    assert any("bye" in f for f in all_failures(log, broken))


def test_rest_checks() -> None:
    """/members must be empty; /log must be chat.log's tail, field for field."""
    log, _ = good_run()
    assert check_members_endpoint({"count": 0, "members": []}) == []
    assert check_members_endpoint({"count": 1, "members": [{"name": "alpha"}]}) != []
    tail = [line.__dict__ for line in log[-3:]]
    assert check_log_endpoint(tail, log) == []
    assert check_log_endpoint(tail[:-1], log) != []
    assert check_log_endpoint([], log) != []


def test_chat_log_lines_parse_and_unescape() -> None:
    """chat.log's escaped text comes back as sent; an empty text field is allowed."""
    lines = parse_chat_log("1 T start - tracker started\n2 T join alpha\n3 T msg alpha a\\\\b\\nc\n")
    assert [(line.seq, line.kind, line.name, line.text) for line in lines] == [
        (1, "start", "-", "tracker started"),
        (2, "join", "alpha", ""),
        (3, "msg", "alpha", "a\\b\nc"),
    ]
