"""The checker's ``MemberRecord`` for members that are not ``CheckedMember``, and the figures that go with it.

``support.checked_member.CheckedMember`` keeps its own record. The single-tracker fault tests
also read frames their own way, so here:

- ``FrameRecord``: a member's frames noted in the order received (``welcome`` opens a stint,
  ``resumed`` with ``recovered: false`` adds its ``gone`` range, room events are received,
  its own echoes are acknowledged), e.g. a ``chat-client --json`` process's output;
- ``RecordingBot``: a ``support.bots.Bot`` that notes every frame it reads, through ``recv``
  and ``expect`` or a test's own loop over its socket (``note``);
- ``member_record``: a ``support.resume.Member`` from its welcomes, its events and the
  ``resumed`` answers it got;
- ``verdict``: the checker's counts and its message, for tests that record before they assert;
  ``record_checked``: that, with a figures row, for a test whose chat.log is in one data dir;
- ``kept_from``: a record cut to what retention left of chat.log;
- ``torn_lines``: torn or unparsable lines in chat.log files, counted for ``torn_left``, and
  ``whole_entries``: the lines that parse;
- ``run_seed``: a test's seed, which ``RELIABILITY_SEED`` replaces to replay a failed run.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat_tracker.records import LogEntry
from chat_tracker.storage.chatlog import LogFormatError, parse_line
from support import campaign
from support.bots import Bot, connect_json
from support.checked_member import read_chat_log
from support.checker import KIND_OF_TYPE, CheckFailed, Counts, MemberRecord, Seen, Stint, check
from support.resume import Member
from support.timing import UNIT


def run_seed(default: int) -> int:
    """The seed of a randomised test: ``default``, or RELIABILITY_SEED to replay a failed run."""
    return int(os.environ.get("RELIABILITY_SEED", default))


def verdict(
    entries: Iterable[LogEntry], records: Iterable[MemberRecord], seed: int | None = None
) -> tuple[Counts, str | None]:
    """The checker's counts and its CheckFailed message (None: no violation), for a test that records first."""
    entries, records = list(entries), list(records)
    counts = check(entries, records, seed=seed, strict=False)
    if not counts.violations():
        return counts, None
    try:
        check(entries, records, seed=seed)
    except CheckFailed as failure:
        return counts, str(failure)
    raise AssertionError("the checker counted violations it does not report")


@dataclass
class FrameRecord:
    """What one member received, frame by frame, in the checker's terms."""

    name: str
    stints: list[Stint] = field(default_factory=list)
    sent: dict[str, str] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)
    errors: list[Mapping[str, Any]] = field(default_factory=list)  # for the tests' own counts of refusals

    def note(self, frame: Mapping[str, Any]) -> None:
        kind = frame["type"]
        if kind == "error":
            self.errors.append(frame)
        elif kind == "welcome":
            self.stints.append(Stint(after=frame["seq"]))
        elif kind == "resumed" and not frame["recovered"]:  # what the tracker says it can no longer replay
            first, last = frame["gone"]
            self.stints[-1].gaps.append((first, last))
        elif kind in KIND_OF_TYPE and self.stints:  # room events reach members only, after a welcome
            self.stints[-1].received.append(Seen.from_frame(frame))
            if kind == "message" and frame["name"] == self.name:
                key = frame.get("id") or frame["text"]  # without an id, a test's texts are unique
                self.sent.setdefault(key, frame["text"])
                self.acked.setdefault(key, frame["seq"])

    def said(self, text: str) -> None:
        """A message sent without an id (its echo, if it comes, is acknowledged under its text)."""
        self.sent.setdefault(text, text)

    def record(self, until: int | None = None) -> MemberRecord:
        """The checker's record; ``until`` is the last seq owed in the last stint (a fence it waited for)."""
        if until is not None and self.stints:
            self.stints[-1].until = until
        return MemberRecord(self.name, self.stints, dict(self.sent), dict(self.acked))


def records_of_frames(name: str, frames: Iterable[Mapping[str, Any]], until: int | None = None) -> MemberRecord:
    """The record of a member whose frames, in the order received, are ``frames``."""
    record = FrameRecord(name)
    for frame in frames:
        record.note(frame)
    return record.record(until)


class RecordingBot(Bot):
    """A ``Bot`` whose every frame read is noted for the checker."""

    def __init__(self, ws: Any, name: str) -> None:
        super().__init__(ws, name)
        self.frames = FrameRecord(name)

    def note(self, frame: Mapping[str, Any]) -> None:
        self.frames.note(frame)

    async def recv(self, timeout: float = UNIT) -> dict[str, Any]:
        message = await super().recv(timeout)
        self.note(message)
        return message

    async def say(self, text: str) -> None:
        self.frames.said(text)
        await super().say(text)

    def record(self, until: int | None = None) -> MemberRecord:
        return self.frames.record(until)


async def open_recording(url: str, password: str, name: str) -> RecordingBot:
    """``support.bots.open_bot`` for a ``RecordingBot``: joined, its welcome noted."""
    bot = RecordingBot(await connect_json(url, password), name)
    hello = await bot.recv(4 * UNIT)
    assert hello["type"] == "hello" and hello["authenticated"], hello
    await bot.ws.send(json.dumps({"type": "join", "name": name}))
    welcome = await bot.expect("welcome", 4 * UNIT)
    assert welcome["name"] == name
    return bot


def member_record(
    member: Member, resumed: Iterable[Mapping[str, Any]] = (), until: int | None = None, said: Iterable[str] = ()
) -> MemberRecord:
    """A ``support.resume.Member``'s record: its welcomes (each a stint), events and ``resumed`` answers.

    A Member keeps room events apart from other frames, so they are put back in order by seq:
    a welcome's or a resume answer's seq is the room's last seq when it was sent, and every
    event of the stint it opens or continues comes after the welcome's.
    """
    welcomes = [member.welcome, *(frame for frame in member.other if frame["type"] == "welcome")]
    answers = [answer for answer in resumed if answer["type"] == "resumed"]
    frames = sorted(
        [*welcomes, *answers, *member.events],
        key=lambda frame: (frame["seq"], frame["type"] not in ("welcome", "resumed")),
    )
    record = FrameRecord(member.name)
    for text in said:  # sent without an id and perhaps never echoed (to catch one logged twice)
        record.said(text)
    for frame in frames:
        record.note(frame)
    return record.record(until)


def kept_from(record: MemberRecord, first_seq: int) -> MemberRecord:
    """``record`` from ``first_seq`` on: what can be checked once retention deleted chat.log's older lines."""
    stints = [
        Stint(max(s.after, first_seq - 1), s.until, [e for e in s.received if e.seq >= first_seq], list(s.gaps))
        for s in record.stints
    ]
    acked = {key: seq for key, seq in record.acked.items() if seq >= first_seq}
    return MemberRecord(record.name, stints, dict(record.sent), acked)


def record_checked(figure: str, data_dir: Path, members: Iterable[MemberRecord], **figures: Any) -> Counts:
    """The members against ``data_dir``'s chat.log: a row of ``figures`` and the counts, then the verdict.

    The row holds the true counts even when the check fails; the failure names the first differing seq.
    """
    counts, violation = verdict(read_chat_log(data_dir), members)
    campaign.record(figure, **figures, **counts.as_figures())
    assert violation is None, violation
    return counts


def torn_lines(*paths: Path) -> int:
    """How many lines of these chat.log files (plain or gzipped, absent ones skipped) are torn or do not parse."""
    return sum(torn for _, torn in map(_read_leniently, paths))


def whole_entries(*paths: Path) -> list[LogEntry]:
    """The lines of these chat.log files that parse, for a check that records its counts before
    the strict reading (``support.campaign.check_log_file``) fails on a torn one."""
    return [entry for path in paths for entry in _read_leniently(path)[0]]


def _read_leniently(path: Path) -> tuple[list[LogEntry], int]:
    """A chat.log file's entries (none if absent) and how many of its lines are torn or do not parse."""
    if not path.exists():
        return [], 0
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    entries, torn = [], int(bool(data) and not data.endswith(b"\n"))
    for line in data[: data.rfind(b"\n") + 1].decode("utf-8", errors="replace").splitlines():
        try:
            entries.append(parse_line(line))
        except LogFormatError:
            torn += 1
    return entries, torn
