"""One room's or conversation's chat.log as the archiver writes it: its position, its epoch, its batches.

``room_archiver.py`` keeps one ``RoomLog`` per room besides the default one and per direct
conversation. Each follows the default room's rules (``archiver.py``): where it resumes is
its file's last seq; an event at or below it is skipped; a jump is a gap, logged as an ERROR;
in a new epoch (Redis lost the room) every seq at or below the file's last is refused and
counted. Nothing here talks to Redis: the archiver hands each log the entries it read.
"""

from __future__ import annotations

import logging
import os
import re
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat_tracker.core.events import Event
from chat_tracker.journal import redis_keys
from chat_tracker.journal.redis_keys import Keys, checked_event_of
from chat_tracker.records import LogEntry
from chat_tracker.storage.chatlog import ChatLog, parse_line
from chat_tracker.storage.log_pool import LogPool
from chat_tracker.storage.rotation import RotatingLog, RotationPolicy

__all__ = [
    "CONVERSATION_PATTERN",
    "RoomLog",
    "RoomLogStats",
    "events_after",
    "fsync_path",
    "log_entry_of",
    "open_room_log",
]

log = logging.getLogger("chat_tracker")

Entries = list[tuple[bytes, dict[bytes, bytes]]]  # stream entries as redis-py returns them (bytes, RESP2)

# A conversation's name: its two name keys (a-z 0-9 only), so its directory is a safe path.
CONVERSATION_PATTERN = re.compile(r"@[a-z0-9]+\+[a-z0-9]+")
TRIM_SECONDS = 1.0  # each stream is trimmed at most this often


@dataclass
class RoomLogStats:
    """The rooms' and conversations' counters, summed over all of them (``ArchiverStats``'s meaning)."""

    archived: int = 0
    missing: int = 0
    refused: int = 0
    invalid: int = 0


@dataclass
class RoomLog:
    """A room's (or conversation's) stream in Redis and its chat.log on disk."""

    name: str  # "#dev" or "@alice+bob"
    keys: Keys
    chat_log: RotatingLog
    last_seq: int  # the last seq in the file: the one truth about where to go on
    stats: RoomLogStats
    durable: int = 0  # the last seq fsynced (what ``archived`` may say)
    cursor: str = "0-0"  # the last stream ID read
    epoch: str | None = None  # the room's epoch its stream is read in (None: not checked yet)
    floor: int = 0  # in a new epoch: its seqs up to here are taken by the file already
    recorded: int | None = None  # the ``archived`` value set in Redis by this process
    trimmed_below: int = 0  # the MINID of the last XTRIM
    trimmed_at: float = 0.0  # monotonic time of the last XTRIM
    failing: bool = False  # the last write or fsync failed (logged once until it works again)

    @property
    def unsynced(self) -> bool:
        return self.durable < self.last_seq

    def write(self, entries: Entries) -> None:
        """The batch's events after the file's last seq, as one append (nothing written if it fails)."""
        events = self._events_after(entries)
        if events:
            self._check_gap(events[0].seq)
            self.chat_log.append(b"".join(event.log_line() for event in events))
            self.last_seq = events[-1].seq
            self.stats.archived += len(events)
        self.cursor = entries[-1][0].decode()

    def _events_after(self, entries: Entries) -> list[Event]:
        events, refused, invalid = events_after(entries, self.last_seq, self.floor)
        for entry_id, why in invalid:  # its body is not logged: whatever a foreign writer chose
            self.stats.invalid += 1
            log.error("Stream entry %s of %s is not a room event: %s; not archived", entry_id, self, why)
        if refused:
            self.stats.refused += refused
            log.error("Skipped %d event(s) of %s's new epoch whose seq its chat.log already holds", refused, self)
        return events

    def _check_gap(self, first: int) -> None:
        if first > self.last_seq + 1:
            self.stats.missing += first - self.last_seq - 1
            log.error(
                "%s has a gap: seqs %d-%d are not in the stream (trimmed before they were archived, or lost "
                "with Redis's data); archiving on from seq %d",
                self,
                self.last_seq + 1,
                first - 1,
                first,
            )

    def same_stream(self, room_seq: int, at_last: Entries) -> bool:
        """At start: is the room's stream the one the file was written from? ``at_last``: its entry ``<last>-0``."""
        if self.last_seq == 0:
            return True
        if room_seq < self.last_seq:
            return False
        if at_last:  # still in the stream: the same event as the file's last line?
            return [log_entry_of(redis_keys.event_of(self.last_seq, at_last[0][1]))] == self.chat_log.tail(1)
        return True  # trimmed (only an archiver trims, behind what it wrote) or opened above the file

    def new_epoch(self, epoch: str, room_seq: int) -> None:
        """Redis lost the room: read its new stream from the start, refusing the seqs the file holds."""
        if self.epoch is not None or self.last_seq > 0:
            log.error(
                "Redis lost %s: a new epoch %s (at seq %d, its chat.log at seq %d). Its events at or below "
                "seq %d are NOT written to its chat.log, whose seqs they would repeat",
                self,
                epoch,
                room_seq,
                self.last_seq,
                self.last_seq,
            )
        self.epoch, self.floor, self.cursor = epoch, self.last_seq, "0-0"

    def trim_due(self, keep: int) -> int | None:
        """The MINID to trim the stream to now (behind ``recorded``, keeping ``keep``), or None."""
        if self.recorded is None or time.monotonic() - self.trimmed_at < TRIM_SECONDS:
            return None
        threshold = self.recorded + 1 - keep
        if threshold <= 1 or threshold == self.trimmed_below:
            return None
        self.trimmed_at, self.trimmed_below = time.monotonic(), threshold
        return threshold

    def __str__(self) -> str:
        return self.name


def open_room_log(
    directory: Path,
    name: str,
    keys: Keys,
    policy: RotationPolicy,
    shared: tuple[Executor, LogPool],
    stats: RoomLogStats,
) -> RoomLog:
    """The log in ``directory`` (made, mode 0700, if new), repaired and fsynced: what a killed archiver left counts."""
    executor, pool = shared
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    chat_log = RotatingLog(directory, ChatLog, policy, executor=executor, pool=pool)
    report = chat_log.open()
    if report.torn_bytes_removed:
        log.warning("Repaired %s: removed a torn last line of %d bytes", chat_log.path, report.torn_bytes_removed)
    fsync_path(chat_log.path)
    last = report.last_seq
    return RoomLog(name, keys, chat_log, last, stats, durable=last, cursor=f"{last}-0")


def events_after(entries: Entries, last_seq: int, floor: int) -> tuple[list[Event], int, list[tuple[str, str]]]:
    """A page of stream entries as a log takes them: its room events after ``last_seq``; how many at or below
    ``floor`` were refused (in a new epoch, seqs the log already holds); and the entries no replica wrote (their
    IDs, and why)."""
    events: list[Event] = []
    refused = 0
    invalid: list[tuple[str, str]] = []
    for entry_id, fields in entries:
        seq, sub = redis_keys.seq_of(entry_id)
        if sub:
            continue  # a control entry: for the replicas, not a chat.log line
        if seq <= (events[-1].seq if events else last_seq):
            refused += seq <= floor  # already in the file; in a new epoch, a reused seq
            continue
        event, why = checked_event_of(seq, fields)
        if event is None:
            invalid.append((entry_id.decode(), why))
            continue
        events.append(event)
    return events, refused, invalid


def log_entry_of(event: Event) -> LogEntry:
    """The chat.log entry of a stream's event (what the file's last line is compared with)."""
    return parse_line(event.log_line().decode("utf-8").rstrip("\n"))


def fsync_path(path: Path) -> None:
    """fsync a file by name: any descriptor of it flushes its data (we are its only writer)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def as_entries(reply: Any) -> Entries:
    """A stream's entries as redis-py returns them (typed for mypy)."""
    entries: Entries = reply
    return entries
