"""chat.log: the append-only record of the room, durable against SIGKILL and a full disk.

One ``write(2)`` per batch to an ``O_APPEND`` descriptor: once ``append`` returns,
the lines are in the kernel and survive the tracker being killed. A write that
fails half-way (disk full) is cut back off, so the file never holds a torn line;
a torn line from a crash (power loss, an old version) is cut off at start-up.
Reading the tail seeks from the end: its cost grows with the lines asked for, not
with the size of the file.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from chat_protocol import unescape
from chat_tracker.errors import LogFormatError, LogWriteError
from chat_tracker.records import LogEntry
from chat_tracker.storage.private_files import PRIVATE_MODE, make_private

__all__ = [
    "LOG_NAME",
    "ChatLog",
    "DiscardingChatLog",
    "LogEntry",
    "LogFormatError",
    "LogWriteError",
    "parse_line",
    "parse_or_none",
    "parse_stream",
]

LOG_NAME = "chat.log"
_CHUNK = 64 * 1024


@dataclass
class ReadStats:
    """Lines read back from chat.log and its segments (resumes, /log, start-up), for /metrics and the tests
    that prove a read costs what it should. Counted from worker threads: approximate under races, never reset."""

    lines: int = 0


READS = ReadStats()


def parse_line(line: str) -> LogEntry:
    """Parse one line (without its newline). Raises LogFormatError."""
    parts = line.split(" ", 4)
    if len(parts) < 4 or not parts[0].isdigit():
        raise LogFormatError(f"not a chat.log line: {line[:80]!r}")
    text = parts[4] if len(parts) == 5 else ""
    try:
        return LogEntry(int(parts[0]), parts[1], parts[2], parts[3], unescape(text))
    except ValueError as exc:
        raise LogFormatError(str(exc)) from None


@dataclass(frozen=True)
class OpenReport:
    """What ``ChatLog.open`` found: the last sequence number and any repair made."""

    last_seq: int
    torn_bytes_removed: int
    first_ts: str | None = None  # the time of the first line, for daily rotation


class ChatLog:
    """The open chat.log of one tracker process (a single writer)."""

    def __init__(self, path: Path, fd: int, size: int, first_seq: int | None = None) -> None:
        self.path = path
        self._fd = fd
        self._size = size  # bytes known to be whole lines; the truncation point on failure
        self.first_seq = first_seq  # the seq of the file's first line (None while empty): its segment name

    @classmethod
    def open(cls, data_dir: Path) -> tuple[ChatLog, OpenReport]:
        """Open (creating) ``data_dir/chat.log``, repair a torn tail, find the last seq."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / LOG_NAME
        # chat.log holds every member's messages: 0600, and an older 0640/0644 one is made so at start.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, PRIVATE_MODE)
        make_private(fd)
        size = os.fstat(fd).st_size
        whole = _end_of_last_whole_line(path, size)
        if whole < size:
            os.ftruncate(fd, whole)
        first = _first_entry(path, whole)
        first_seq, first_ts = (first.seq, first.ts) if first is not None else (None, None)
        return cls(path, fd, whole, first_seq), OpenReport(_last_seq(path, whole), size - whole, first_ts)

    @property
    def size(self) -> int:
        """Bytes of whole lines written (what a rotation check compares, and what readers may read)."""
        return self._size

    def rest(self) -> None:
        """Close the descriptor while the log is quiet (a room nobody writes in); the next write opens it again."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _descriptor(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, PRIVATE_MODE)
        return self._fd

    def identity(self) -> tuple[int, int, int]:
        """(device, inode, size) of the open file, to notice it being truncated or replaced underneath."""
        stat = os.fstat(self._descriptor())
        return stat.st_dev, stat.st_ino, stat.st_size

    def adopt_size(self, size: int) -> None:
        """Take the file's real size after someone else changed it (truncated it, appended to it)."""
        self._size = size
        first = _first_entry(self.path, size)
        self.first_seq = first.seq if first is not None else None

    def fsync(self) -> None:
        os.fsync(self._descriptor())

    def append(self, data: bytes) -> None:
        """Append whole lines with as few writes as the kernel allows; all or nothing."""
        view = memoryview(data)
        written = 0
        try:
            fd = self._descriptor()
            while written < len(data):
                count = os.write(fd, view[written:])
                if count == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += count
        except OSError as exc:
            if written:
                self._cut_back()
            raise LogWriteError(exc.errno, f"cannot write {self.path}: {exc.strerror}") from exc
        self._size += written
        if self.first_seq is None:
            self.first_seq = _seq_of(data[:32])  # the head is enough: no copy of the batch

    def _cut_back(self) -> None:
        with contextlib.suppress(OSError):  # nothing better to do; start-up repair removes the torn line
            os.ftruncate(self._descriptor(), self._size)

    def close(self) -> None:
        self.rest()

    def tail(self, count: int) -> list[LogEntry]:
        """The last ``count`` lines, oldest first."""
        return [parse_line(line) for line in read_last_lines(self.path, count)]

    def read_after(self, seq: int, limit: int) -> list[LogEntry]:
        """Up to ``limit`` lines with a seq above ``seq``, oldest first (binary search, then read forward)."""
        with self.path.open("rb") as file:
            file.seek(offset_after(file, seq, self._size))
            after = (entry for entry in parse_stream(file, self._size, seq) if entry.seq > seq)
            return list(itertools.islice(after, max(limit, 0)))


def parse_stream(stream: BinaryIO, size: int | None, after: int = -1) -> Iterator[LogEntry]:
    """Whole, parseable lines from the stream's position (up to ``size`` bytes of the file, if given).

    Lines with a seq up to ``after`` are skipped unparsed: entering a file at a seq costs
    a split per line before it, not a parse.
    """
    while size is None or stream.tell() < size:
        line = stream.readline()
        if not line.endswith(b"\n"):
            return  # the end, or a line still being written
        READS.lines += 1
        if after >= 0 and (_seq_of(line[:24]) or 0) <= after:
            continue
        entry = parse_or_none(line[:-1].decode("utf-8", errors="replace"))
        if entry is not None:
            yield entry


def parse_or_none(line: str) -> LogEntry | None:
    try:
        return parse_line(line)
    except LogFormatError:
        return None


class DiscardingChatLog(ChatLog):
    """Benchmark-only: reads like chat.log but writes nothing, to price durability.

    Enabled by TRACKER_BENCH_DISABLE_LOG=1 and never by a documented flag: a tracker
    running with it loses the record the product promises.
    """

    def append(self, data: bytes) -> None:
        return None


def read_last_lines(path: Path, count: int, size: int | None = None) -> list[str]:
    """The last ``count`` complete lines of a file (of its first ``size`` bytes), read backwards in chunks."""
    if count <= 0:
        return []
    with path.open("rb") as file:
        end = file.seek(0, os.SEEK_END) if size is None else min(size, file.seek(0, os.SEEK_END))
        data = b""
        position = end
        while position > 0 and data.count(b"\n") <= count:
            step = min(_CHUNK, position)
            position -= step
            file.seek(position)
            data = file.read(step) + data
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ends with a newline
    else:
        lines = lines[:-1]  # a line still being written: not complete yet
    if position > 0:
        lines = lines[1:]  # the first piece may be the end of a longer line
    READS.lines += min(count, len(lines))
    return [line.decode("utf-8", errors="replace") for line in lines[-count:]]


def offset_after(file: BinaryIO, seq: int, size: int) -> int:
    """The offset of a line at or before the first line whose seq is above ``seq`` (seqs only grow)."""
    low, high = 0, size  # ``low`` is always at or before the wanted line: a line start with seq <= ``seq``, or 0
    while high - low > _CHUNK:
        middle = (low + high) // 2
        file.seek(middle)
        file.readline()  # the rest of the line ``middle`` fell in
        start = file.tell()
        line_seq = _seq_of(file.readline())
        if line_seq is not None and line_seq <= seq:
            low = start
        else:
            high = middle
    return low


def _seq_of(line: bytes) -> int | None:
    head = line.split(b" ", 1)[0]
    return int(head) if head.isdigit() else None


def _first_entry(path: Path, size: int) -> LogEntry | None:
    """The first line of the file, parsed (None for an empty file or a first line that does not parse)."""
    if size == 0:
        return None
    with path.open("rb") as file:
        line = file.readline()
    try:
        return parse_line(line.rstrip(b"\n").decode("utf-8", errors="replace"))
    except LogFormatError:
        return None


def _end_of_last_whole_line(path: Path, size: int) -> int:
    """The offset just past the last newline (0 if there is none)."""
    with path.open("rb") as file:
        position = size
        while position > 0:
            step = min(_CHUNK, position)
            position -= step
            file.seek(position)
            chunk = file.read(step)
            index = chunk.rfind(b"\n")
            if index >= 0:
                return position + index + 1
    return 0


def _last_seq(path: Path, size: int) -> int:
    """The sequence number of the last parseable line before ``size`` (0 for a new log)."""
    if size == 0:
        return 0
    for line in reversed(read_last_lines(path, 100)):
        try:
            return parse_line(line).seq
        except LogFormatError:
            continue
    raise LogFormatError(f"{path} has no chat.log line among its last 100 lines; move it aside to start afresh")
