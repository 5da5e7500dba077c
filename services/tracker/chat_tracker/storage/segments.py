"""Rotated segments of chat.log: their names, listing, reading, compression and retention.

A rotated segment is named after the seq of its first line, zero-padded so that
names sort in seq order and a resume from seq S maps straight to one file:
``chat.log.000000000101`` (or ``.gz`` once compressed). Everything here works on
paths and plain data, with no event loop, so recovery and retention are testable
without a tracker; ``rotation.py`` decides when these functions run.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from chat_tracker.errors import Discontinuity
from chat_tracker.records import LogEntry
from chat_tracker.storage import gzmembers
from chat_tracker.storage.chatlog import LOG_NAME, offset_after, parse_or_none, parse_stream, read_last_lines
from chat_tracker.storage.private_files import PRIVATE_MODE

__all__ = [
    "SEQ_DIGITS",
    "LogFile",
    "RetentionPolicy",
    "Segment",
    "compress",
    "fsync_dir",
    "list_segments",
    "parse_size",
    "read_after",
    "segment_name",
    "tail",
]

SEQ_DIGITS = 12
GZ = ".gz"
TMP = ".tmp"
_SEGMENT = re.compile(r"chat\.log\.(\d{12})(\.gz)?")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_SIZE = re.compile(r"(\d+)\s*([KMG]?)(?:I?B)?", re.IGNORECASE)
DAY_SECONDS = 86_400


def size(text: str) -> int:
    """A byte count: ``4096``, ``64K``, ``64M``, ``1G`` (powers of 1024; ``KiB``/``MB`` spellings too)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a size: {text!r} (bytes, or a number with K, M or G)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


parse_size = size  # argparse names a bad value after the function: "invalid size value"


def segment_name(first_seq: int, compressed: bool = False) -> str:
    """``chat.log.<first seq, 12 digits>``, with ``.gz`` when compressed."""
    return f"{LOG_NAME}.{first_seq:0{SEQ_DIGITS}d}" + (GZ if compressed else "")


@dataclass(frozen=True)
class Segment:
    """A rotated segment on disk (never the current chat.log)."""

    path: Path
    first_seq: int
    compressed: bool
    size: int
    mtime: float


def list_segments(data_dir: Path) -> list[Segment]:
    """The rotated segments in ``data_dir``, oldest first; a plain one wins over a ``.gz`` twin."""
    found: dict[int, Segment] = {}
    with contextlib.suppress(FileNotFoundError), os.scandir(data_dir) as entries:
        for entry in entries:
            match = _SEGMENT.fullmatch(entry.name)
            if match is None:
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue  # deleted by retention (or compressed) while we listed
            segment = Segment(Path(entry.path), int(match.group(1)), bool(match.group(2)), stat.st_size, stat.st_mtime)
            if segment.first_seq not in found or not segment.compressed:
                found[segment.first_seq] = segment
    return [found[seq] for seq in sorted(found)]


def foreign_logs(data_dir: Path) -> list[Path]:
    """Files that look like chat.log renamed by someone else (logrotate: ``chat.log.1``, ``chat.log-2026...``)."""
    with contextlib.suppress(FileNotFoundError), os.scandir(data_dir) as entries:
        return [
            Path(entry.path)
            for entry in entries
            if entry.name.startswith(LOG_NAME)
            and entry.name != LOG_NAME
            and not entry.name.endswith(TMP)
            and _SEGMENT.fullmatch(entry.name) is None
            and entry.is_file()
        ]
    return []


def leftovers(data_dir: Path) -> list[Path]:
    """What a crash during compression leaves: a temp ``.gz``, or a plain segment whose ``.gz`` is complete.

    The ``.gz`` is renamed into place only once it is whole and fsynced, so when
    both exist the plain one is the redundant copy.
    """
    names = {path.name for path in _listing(data_dir)}
    stale = [data_dir / name for name in names if name.startswith(LOG_NAME + ".") and name.endswith(GZ + TMP)]
    for name in names:
        match = _SEGMENT.fullmatch(name)
        if match is not None and not match.group(2) and name + GZ in names:
            stale.append(data_dir / name)
    return sorted(stale)


def _listing(data_dir: Path) -> list[Path]:
    with contextlib.suppress(FileNotFoundError):
        return list(data_dir.iterdir())
    return []


def replace_atomically(path: Path, data: bytes, mode: int = PRIVATE_MODE) -> None:
    """Put ``data`` at ``path`` whole or not at all: a temporary file, fsynced, renamed over ``path``."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(descriptor, mode)  # a leftover temporary file keeps its own mode otherwise
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    temporary.replace(path)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a creation in ``directory`` durable (a power cut would otherwise undo it)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compress(segment: Path) -> Path:
    """Gzip ``segment`` to ``segment.gz`` atomically (temp name, fsync, rename), then remove the plain one."""
    target = segment.with_name(segment.name + GZ)
    with segment.open("rb") as source:
        _pack(source, segment.stat(), target)
    segment.unlink()
    fsync_dir(segment.parent)
    return target


def repack(segment: Path) -> bool:
    """Rewrite a ``.gz`` from an older version as indexed members, atomically; False if it already is one."""
    if gzmembers.is_indexed(segment):
        return False
    stat = segment.stat()
    with gzip.open(segment, "rb") as source:
        _pack(source, stat, segment)  # type: ignore[arg-type]
    return True


def _pack(source: BinaryIO, stat: os.stat_result, target: Path) -> None:
    """``source`` as gzip members that can be entered at a seq, at ``target`` atomically, with ``stat``'s times.

    Written to a private temp name, fsynced, renamed over ``target``, and the directory
    fsynced; the temp file is removed if anything fails on the way.
    """
    temp = target.with_name(target.name + TMP)
    try:
        with _private_file(temp) as raw:
            gzmembers.write(source, raw, int(stat.st_mtime))
            raw.flush()
            os.fsync(raw.fileno())
        os.utime(temp, (stat.st_atime, stat.st_mtime))  # retention by age reads the rotation time
        temp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(target.parent)


def _private_file(path: Path) -> BinaryIO:
    """``path`` created (or truncated) for writing, readable by the tracker's user only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_MODE)
    os.fchmod(descriptor, PRIVATE_MODE)  # an older temp file keeps its mode through O_CREAT
    return os.fdopen(descriptor, "wb")


@dataclass(frozen=True)
class RetentionPolicy:
    """Which rotated segments to delete: 0 means no limit of that kind."""

    keep_segments: int = 0
    keep_days: float = 0.0
    keep_bytes: int = 0

    @property
    def active(self) -> bool:
        return bool(self.keep_segments or self.keep_days or self.keep_bytes)

    def deletions(self, segments: list[Segment], now: float) -> list[tuple[Segment, str]]:
        """The segments (oldest first) beyond the policy, each with the rule that removes it."""
        doomed: dict[Path, str] = {}
        newest_first = segments[::-1]
        if self.keep_segments:
            for segment in newest_first[self.keep_segments :]:
                doomed.setdefault(segment.path, f"keep-segments {self.keep_segments}")
        if self.keep_days:
            cutoff = now - self.keep_days * DAY_SECONDS
            for segment in segments:
                if segment.mtime < cutoff:
                    doomed.setdefault(segment.path, f"keep-days {self.keep_days:g}")
        if self.keep_bytes:
            total = 0
            for segment in newest_first:
                total += segment.size
                if total > self.keep_bytes:
                    doomed.setdefault(segment.path, f"keep-bytes {self.keep_bytes}")
        return [(segment, doomed[segment.path]) for segment in segments if segment.path in doomed]


@dataclass(frozen=True)
class LogFile:
    """One file to read events from: a segment, or the current chat.log up to ``size`` bytes."""

    path: Path
    first_seq: int
    compressed: bool = False
    size: int | None = None  # the current chat.log: only bytes known to be whole lines


def files_of(segments: list[Segment]) -> list[LogFile]:
    return [LogFile(s.path, s.first_seq, s.compressed) for s in segments]


def read_after(files: list[LogFile], seq: int, limit: int) -> list[LogEntry]:
    """Up to ``limit`` entries after ``seq`` across ``files`` (oldest first), stopping at a gap in the seqs.

    Entries start at the first seq still kept above ``seq`` (the caller reports what
    precedes it as gone). Raises Discontinuity at a gap, with nothing read lost: the
    caller lists the files again (a rotation may have raced the listing) or accepts
    the gap as real.
    """
    start = max((i for i, f in enumerate(files) if f.first_seq <= seq + 1), default=0)
    entries: list[LogEntry] = []
    for file in files[start:]:
        expected = max(file.first_seq, seq + 1)  # a file holds whole runs of seqs, from its name on
        for entry in _entries_after(file, seq, limit - len(entries)):
            if entry.seq != expected or (entries and entry.seq != entries[-1].seq + 1):
                raise Discontinuity(entries)
            entries.append(entry)
            expected += 1
        if len(entries) >= limit:
            break
    return entries


def tail(files: list[LogFile], count: int) -> list[LogEntry]:
    """The last ``count`` entries across ``files``, oldest first."""
    entries: list[LogEntry] = []
    for file in reversed(files):
        if len(entries) >= count:
            break
        try:
            older = _last_entries(file, count - len(entries))
        except Discontinuity:
            raise Discontinuity(entries) from None  # what was read, newest files first, is kept
        if older and entries and older[-1].seq + 1 != entries[0].seq:
            raise Discontinuity(entries)
        entries = older + entries
    return entries


def last_seq_of(path: Path) -> int:
    """The seq of the last parseable line of a plain or gzip file (0 if none)."""
    compressed = path.name.endswith(GZ)
    entries = _last_entries(LogFile(path, 0, compressed), 1)
    return entries[-1].seq if entries else 0


def _entries_after(file: LogFile, seq: int, limit: int) -> Iterator[LogEntry]:
    if limit <= 0:
        return
    count = 0
    with _open(file, lambda found: gzmembers.offset_after(found, seq)) as stream:
        if not file.compressed:
            stream.seek(offset_after(stream, seq, file.size if file.size is not None else _size_of(stream)))
        for entry in parse_stream(stream, file.size, seq):
            if entry.seq > seq:
                yield entry
                count += 1
                if count >= limit:
                    return


def _last_entries(file: LogFile, count: int) -> list[LogEntry]:
    if not file.compressed:
        try:
            lines = read_last_lines(file.path, count, file.size)
        except FileNotFoundError:
            # Deleted by retention (or compressed) since the listing: the caller lists the files again.
            raise Discontinuity([]) from None
        return [entry for entry in map(parse_or_none, lines) if entry is not None]
    kept: deque[LogEntry] = deque(maxlen=count)
    with _open(file, lambda found: gzmembers.offset_for_last(found, count)) as stream:
        kept.extend(parse_stream(stream, None))
    return list(kept)


@contextlib.contextmanager
def _open(file: LogFile, member: Callable[[list[gzmembers.Member]], int]) -> Iterator[BinaryIO]:
    """Open a segment, a compressed one from the member ``member`` picks; one compressed meanwhile as its .gz."""
    try:
        raw = file.path.open("rb", buffering=0 if file.compressed else -1)  # gzip buffers; headers are preads
    except FileNotFoundError:
        if file.compressed or file.size is not None:
            raise Discontinuity([]) from None  # deleted by retention, or chat.log mid-rotation
        with _open(LogFile(file.path.with_name(file.path.name + GZ), file.first_seq, True), member) as packed:
            yield packed
        return
    with raw:
        if not file.compressed:
            yield raw
            return
        with gzmembers.unpacked(raw, member) as stream:
            yield stream


def _size_of(stream: BinaryIO) -> int:
    return os.fstat(stream.fileno()).st_size
