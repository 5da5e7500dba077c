"""The compose test's verdict: after alpha, beta and gamma have played, check what a user would.

    python checker.py

- chat.log (read from the tracker's volume, CHAT_LOG, default /data/chat.log): sequence numbers
  contiguous; this run's joins, the conversation's messages in script order, the leaves (reason
  exit) in script order;
- every member received every event of the room between its welcome and its leaving, its own
  messages included, in chat.log order with chat.log's seq, ts, name and text (TRANSCRIPT_DIR,
  written by member.py), and ended with a ``bye``;
- REST (TRACKER_HTTP, default http://tracker:8000, TRACKER_PASSWORD): /members refuses no password
  and is empty with it; /log returns chat.log's last lines.

Prints one line per check and exits 1 if any failed. Imports only the standard library and
chat_protocol (for chat.log's text unescaping), both in the app image.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat_protocol.text import unescape
from conversation import MEMBERS, expected_leaving_order, expected_messages

Event = dict[str, Any]

# chat.log kinds and the protocol events that announce them to members.
EVENT_TYPE = {"join": "joined", "msg": "message", "leave": "left"}


@dataclass(frozen=True)
class LogLine:
    seq: int
    ts: str
    kind: str
    name: str
    text: str


def parse_chat_log(content: str) -> list[LogLine]:
    """chat.log's lines, text unescaped; ValueError on a line that does not parse."""
    lines = []
    for number, line in enumerate(content.splitlines(), 1):
        fields = line.split(" ", 4)
        if len(fields) < 4:
            raise ValueError(f"chat.log line {number} has fewer than 4 fields: {line!r}")
        seq, ts, kind, name = fields[:4]
        lines.append(LogLine(int(seq), ts, kind, name, unescape(fields[4]) if len(fields) == 5 else ""))
    return lines


def this_run(log: list[LogLine]) -> list[LogLine]:
    """The lines since the tracker's last start."""
    starts = [i for i, line in enumerate(log) if line.kind == "start"]
    return log[starts[-1] :] if starts else log


def check_chat_log(log: list[LogLine]) -> list[str]:
    """Failures of chat.log against the script; empty when all is well."""
    failures = []
    seqs = [line.seq for line in log]
    if not seqs:
        return ["chat.log is empty"]
    if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
        failures.append(f"chat.log sequence numbers are not contiguous: {seqs}")
    run = this_run(log)
    joins = [line.name for line in run if line.kind == "join"]
    if sorted(joins) != sorted(MEMBERS):
        failures.append(f"chat.log joins {joins}, expected each of {list(MEMBERS)} once")
    messages = [(line.name, line.text) for line in run if line.kind == "msg"]
    if messages != expected_messages():
        failures.append(f"chat.log messages {messages}, expected {expected_messages()}")
    leaves = [(line.name, line.text) for line in run if line.kind == "leave"]
    if leaves != [(name, "exit") for name in expected_leaving_order()]:
        failures.append(f"chat.log leaves {leaves}, expected {expected_leaving_order()} with reason exit")
    last_join = max((line.seq for line in run if line.kind == "join"), default=0)
    first_msg = min((line.seq for line in run if line.kind == "msg"), default=0)
    if last_join > first_msg:
        failures.append("a member joined after the first message: not everyone could hear it")
    return failures


def announced(line: LogLine) -> tuple[int, str, str, str, str]:
    """What a member should receive for a chat.log line: (seq, ts, type, name, text or reason)."""
    return (line.seq, line.ts, EVENT_TYPE[line.kind], line.name, line.text)


def received(event: Event) -> tuple[int, str, str, str, str]:
    text = event.get("text") if event["type"] == "message" else event.get("reason", "")
    return (event.get("seq", -1), event.get("ts", ""), event["type"], event.get("name", ""), text or "")


def check_deliveries(name: str, transcript: list[Event], run: list[LogLine]) -> list[str]:
    """Failures of one member's transcript against chat.log; empty when all is well."""
    if not transcript or transcript[0].get("type") != "welcome":
        return [f"{name}: the transcript does not start with a welcome: {transcript[:1]}"]
    welcome = transcript[0]["seq"]
    join = next((line.seq for line in run if line.kind == "join" and line.name == name), None)
    leave = next((line.seq for line in run if line.kind == "leave" and line.name == name), None)
    if join != welcome or leave is None:
        return [f"{name}: welcome seq {welcome}, chat.log join seq {join}, leave seq {leave}"]
    expected = [announced(line) for line in run if welcome < line.seq < leave and line.kind in EVENT_TYPE]
    got = [received(event) for event in transcript if event.get("type") in EVENT_TYPE.values()]
    failures = []
    if got != expected:
        index = next(
            (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected))
        )
        failures.append(
            f"{name}: received {len(got)} events, chat.log has {len(expected)} for it; first difference at "
            f"#{index}: received {got[index] if index < len(got) else None}, "
            f"chat.log {expected[index] if index < len(expected) else None}"
        )
    last = transcript[-1]
    if last.get("type") != "bye" or last.get("reason") != "left":
        failures.append(f"{name}: the last event is not a bye with reason left: {last}")
    return failures


def check_log_endpoint(events: list[Event], log: list[LogLine]) -> list[str]:
    """/log's events must be chat.log's last lines, field for field."""
    tail = log[-len(events) :] if events else []
    got = [LogLine(e["seq"], e["ts"], e["kind"], e["name"], e["text"]) for e in events]
    if not events or got != tail:
        return [f"/log returned {got}, chat.log's last lines are {tail}"]
    return []


def check_members_endpoint(members: Event) -> list[str]:
    if members != {"count": 0, "members": []}:
        return [f"/members is not empty at the end: {members}"]
    return []


class Tracker:
    """The tracker's REST API, the way curl would ask it."""

    def __init__(self, base: str, password: str) -> None:
        self.base = base.rstrip("/")
        self.password = password
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, path: str, authorization: str | None) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path)
        if authorization:
            request.add_header("Authorization", authorization)
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, None

    def bearer(self) -> str:
        return f"Bearer {self.password}"

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f":{self.password}".encode()).decode()


def check_rest(tracker: Tracker, log: list[LogLine]) -> list[str]:
    failures = []
    status, _ = tracker.get("/members", None)
    if status != 401:
        failures.append(f"/members without the password answered {status}, expected 401")
    status, members = tracker.get("/members", tracker.bearer())
    failures += [f"/members answered {status}"] if status != 200 else check_members_endpoint(members)
    status, body = tracker.get("/log?lines=25", tracker.basic())
    failures += [f"/log answered {status}"] if status != 200 else check_log_endpoint(body["events"], log)
    return failures


def load_transcript(path: Path) -> list[Event]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def report(title: str, failures: list[str]) -> bool:
    print(f"{'ok  ' if not failures else 'FAIL'} {title}", flush=True)
    for failure in failures:
        print(f"     {failure}", flush=True)
    return not failures


def main() -> int:
    log = parse_chat_log(Path(os.environ.get("CHAT_LOG", "/data/chat.log")).read_text(encoding="utf-8"))
    run = this_run(log)
    transcripts = Path(os.environ.get("TRANSCRIPT_DIR", "."))
    tracker = Tracker(os.environ.get("TRACKER_HTTP", "http://tracker:8000"), os.environ["TRACKER_PASSWORD"])
    results = [report("chat.log holds the conversation, in order, with joins and leaves", check_chat_log(log))]
    for name in MEMBERS:
        transcript = load_transcript(transcripts / f"{name}.jsonl")
        failures = check_deliveries(name, transcript, run)
        results.append(report(f"{name} received every event in chat.log order", failures))
    results.append(report("REST: /members empty at the end, /log matches chat.log", check_rest(tracker, log)))
    passed = all(results)
    print("checker: all checks passed" if passed else "checker: FAILED", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
