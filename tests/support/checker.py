"""The independent checker: what every member received, held against chat.log. Written once, used by every fault test.

It knows nothing of how a test made its faults. In: chat.log's entries (all segments, oldest
first) and, per member, what it sent, which of its messages were acknowledged (the echo came
back with a seq) and what it received, stint by stint. Out: counts, for the figures. It checks:

- every acknowledged message is in chat.log exactly once, at its echo's seq, with its text;
- no message a member sent is in chat.log twice (a resend after a resume keeps its id);
- each member's received events are exactly chat.log's member events after its welcome's seq
  (and up to the end of its stint), in order, each once, except ranges the tracker announced
  gone (a resume answered ``recovered: false`` with ``gone: [first, last]``);
- nothing a member received is missing from chat.log or differs from its line there.

A violation raises ``CheckFailed`` with the seed (so that the run can be replayed) and the first
seq at which what a member saw and chat.log differ. ``check(..., strict=False)`` only counts, for
a test that records the counts before asserting them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from chat_tracker.records import LogEntry

KIND_OF_TYPE = {"message": "msg", "joined": "join", "left": "leave"}  # JSON event type -> chat.log kind
MEMBER_KINDS = frozenset(KIND_OF_TYPE.values())  # what every member of the room is sent


class CheckFailed(AssertionError):
    """What the members saw and chat.log disagree."""


@dataclass(frozen=True)
class Seen:
    """One room event as a member received it, in chat.log's terms."""

    seq: int
    kind: str
    name: str
    text: str = ""

    @classmethod
    def from_frame(cls, frame: Mapping[str, Any]) -> Seen:
        """From a JSON event frame (``message``, ``joined``, ``left``)."""
        text = frame.get("text", "") if frame["type"] == "message" else ""
        return cls(frame["seq"], KIND_OF_TYPE[frame["type"]], frame["name"], text)

    def matches(self, entry: LogEntry) -> bool:
        text_matches = self.kind != "msg" or entry.text == self.text
        return entry.kind == self.kind and entry.name == self.name and text_matches


@dataclass
class Stint:
    """One stretch of membership: from a welcome (its ``seq``) through every resume of that welcome's token.

    ``until`` is the last seq the member is owed in this stint: its own leave, or a fence message
    every member waited for at the end. ``None`` means the last seq it received (a member killed
    or cut off is owed nothing after what it saw).
    """

    after: int
    until: int | None = None
    received: list[Seen] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)

    def owed_until(self) -> int:
        if self.until is not None:
            return self.until
        return max((seen.seq for seen in self.received), default=self.after)

    def announced(self, seq: int) -> bool:
        return any(first <= seq <= last for first, last in self.gaps)


@dataclass
class MemberRecord:
    """Everything the checker needs of one member (one name) over a whole run."""

    name: str
    stints: list[Stint] = field(default_factory=list)
    sent: dict[str, str] = field(default_factory=dict)  # message id -> text
    acked: dict[str, int] = field(default_factory=dict)  # message id -> the seq its echo carried


@dataclass
class Counts:
    """What one check counted. ``lost`` ... ``forged`` are the violations."""

    members: int = 0
    acknowledged: int = 0
    logged_messages: int = 0
    received_events: int = 0
    gaps_announced: int = 0
    lost: int = 0
    missed: int = 0
    duplicated: int = 0
    reordered: int = 0
    forged: int = 0

    def violations(self) -> int:
        return self.lost + self.missed + self.duplicated + self.reordered + self.forged

    def as_figures(self) -> dict[str, int]:
        """The counts as keyword arguments for ``support.campaign.record``.

        The figures' ``lost`` is everything lost to someone: an acknowledged message missing
        from chat.log, and an event a member never received with no gap announced (``missed``,
        also kept on its own); ``acknowledged_lost`` is the first kind alone.
        """
        figures = {f.name: getattr(self, f.name) for f in fields(self)}
        figures["lost"] = self.lost + self.missed
        figures["acknowledged_lost"] = self.lost
        return figures

    def add(self, other: Counts) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


@dataclass
class _Findings:
    """Violations as (seq, what) pairs, so that the first one by seq can be named."""

    counts: Counts
    problems: list[tuple[int, str]] = field(default_factory=list)

    def note(self, counter: str, seq: int, what: str) -> None:
        setattr(self.counts, counter, getattr(self.counts, counter) + 1)
        self.problems.append((seq, what))


def check(
    entries: Iterable[LogEntry], members: Iterable[MemberRecord], *, seed: int | None = None, strict: bool = True
) -> Counts:
    """Check every member against chat.log; the counts (CheckFailed on a violation when ``strict``)."""
    log = list(entries)
    members = list(members)
    findings = _Findings(Counts(members=len(members)))
    by_seq = _index(log, findings)
    findings.counts.logged_messages = sum(1 for entry in log if entry.kind == "msg")
    _check_messages(log, by_seq, members, findings)
    owed = [entry.seq for entry in log if entry.kind in MEMBER_KINDS]
    for member in members:
        for stint in member.stints:
            _check_stint(member.name, stint, by_seq, owed, findings)
    if strict and findings.problems:
        raise CheckFailed(_describe(findings, seed))
    return findings.counts


def _index(log: list[LogEntry], findings: _Findings) -> dict[int, LogEntry]:
    """chat.log by seq; a seq used twice or going backwards is a duplicate or a reordering in the log itself."""
    by_seq: dict[int, LogEntry] = {}
    previous = 0
    for entry in log:
        if entry.seq in by_seq:
            findings.note("duplicated", entry.seq, f"chat.log uses seq {entry.seq} twice")
        elif entry.seq < previous:
            findings.note("reordered", entry.seq, f"chat.log has seq {entry.seq} after {previous}")
        by_seq.setdefault(entry.seq, entry)
        previous = max(previous, entry.seq)
    return by_seq


def _check_messages(
    log: list[LogEntry], by_seq: dict[int, LogEntry], members: list[MemberRecord], findings: _Findings
) -> None:
    """Acknowledged messages logged, at their echo's seq; no sent message logged twice."""
    logged = Counter((entry.name, entry.text) for entry in log if entry.kind == "msg")
    first_seq = {(entry.name, entry.text): entry.seq for entry in reversed(log) if entry.kind == "msg"}
    for member in members:
        for msg_id, text in member.sent.items():
            if logged[(member.name, text)] > 1:
                seq = first_seq[(member.name, text)]
                findings.note(
                    "duplicated", seq, f"{member.name}'s {msg_id} is in chat.log {logged[(member.name, text)]} times"
                )
        for msg_id, seq in member.acked.items():
            findings.counts.acknowledged += 1
            entry = by_seq.get(seq)
            if entry is None or (entry.kind, entry.name, entry.text) != ("msg", member.name, member.sent.get(msg_id)):
                findings.note("lost", seq, f"{member.name}'s {msg_id} was acknowledged at seq {seq}, not logged there")


def _check_stint(name: str, stint: Stint, by_seq: dict[int, LogEntry], owed: list[int], findings: _Findings) -> None:
    """The stint's received events against chat.log: each once, in order, matching; none owed missing."""
    previous = stint.after
    received: set[int] = set()
    for seen in stint.received:
        findings.counts.received_events += 1
        entry = by_seq.get(seen.seq)
        if entry is None or not seen.matches(entry):
            findings.note("forged", seen.seq, f"{name} received {seen}, chat.log has {entry}")
        if seen.seq in received:
            findings.note("duplicated", seen.seq, f"{name} received seq {seen.seq} twice")
        elif seen.seq <= previous:
            findings.note("reordered", seen.seq, f"{name} received seq {seen.seq} after {previous}")
        received.add(seen.seq)
        previous = max(previous, seen.seq)
    until = stint.owed_until()
    for seq in (s for s in owed if stint.after < s <= until and s not in received):
        if stint.announced(seq):
            findings.counts.gaps_announced += 1
        else:
            findings.note("missed", seq, f"{name} never received seq {seq} ({by_seq[seq]}), and no gap was announced")


def _describe(findings: _Findings, seed: int | None) -> str:
    seq, what = min(findings.problems)
    counts = findings.counts
    summary = (
        f"{counts.lost} lost, {counts.missed} missed, {counts.duplicated} duplicated, "
        f"{counts.reordered} reordered, {counts.forged} forged"
    )
    replay = f"seed {seed}" if seed is not None else "no seed"
    return f"{replay}: first differing seq {seq}: {what} ({summary}; {len(findings.problems)} findings)"
