"""chat.log that can run for years: rotation by size or by UTC day, retention, reopen on SIGHUP.

``RotatingLog`` is what the journal writes to. Each append first compares a byte
counter (and, with daily rotation, the clock) with the limit: O(1), so the hot path
does not slow down. A rotation renames chat.log to ``chat.log.<first seq>`` and
opens a fresh chat.log; the journal's sequence simply goes on in the new file.

Crash safety comes from doing only atomic steps, in an order where every
intermediate state is one start-up already handles:

1. every line is written whole before a rotation (a failed write is cut back);
2. ``fsync`` chat.log, ``rename`` it to its segment name, ``fsync`` the directory;
3. open (create) a fresh chat.log, ``fsync`` the directory, write on.

Killed before 2: chat.log is whole and simply continues. Killed between 2 and 3:
there is no chat.log; start-up creates it and takes the last seq from the newest
segment. Killed after 3 (chat.log empty, or holding a torn first line that start-up
cuts off): the same. No seq is skipped or repeated because the seq always comes
from the last whole line on disk. Compression (``--compress``) and retention run
afterwards in one worker thread, off the event loop; a crash there leaves a temp
``.gz`` or a plain segment beside its complete ``.gz``, both removed at start-up.
"""

from __future__ import annotations

import calendar
import contextlib
import gzip
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from chat_protocol import parse_ts
from chat_tracker.errors import Discontinuity, LogWriteError
from chat_tracker.records import LogEntry
from chat_tracker.storage import segments
from chat_tracker.storage.chatlog import LOG_NAME, ChatLog, OpenReport
from chat_tracker.storage.private_files import make_path_private
from chat_tracker.storage.segments import LogFile, RetentionPolicy, Segment

__all__ = ["RotatingLog", "RotationPolicy", "next_midnight"]

if TYPE_CHECKING:
    from chat_tracker.storage.log_pool import LogPool

log = logging.getLogger("chat_tracker")

ROTATION_RETRY_SECONDS = 1.0
READ_ATTEMPTS = 3


@dataclass(frozen=True)
class RotationPolicy:
    """When to rotate (0 / False: never), what to keep, and whether to gzip rotated segments."""

    max_bytes: int = 0
    daily: bool = False
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    compress: bool = False


def _last_seq_or_zero(path: Path) -> int:
    try:
        return segments.last_seq_of(path)
    except (OSError, EOFError) as error:  # a damaged .gz, or one someone else is still writing
        log.warning("Cannot read the last seq of %s (%s)", path.name, error)
        return 0


def _batch_time(data: bytes, clock: Callable[[], float]) -> float:
    """The time of the first line of a batch of chat.log lines (the clock's, if it cannot be read)."""
    try:
        return parse_ts(data.split(b" ", 2)[1].decode("ascii")).timestamp()
    except (IndexError, UnicodeDecodeError, ValueError):
        return clock()


def next_midnight(timestamp: float) -> float:
    """The first UTC midnight after ``timestamp``."""
    day = datetime.fromtimestamp(timestamp, UTC).date() + timedelta(days=1)
    return float(calendar.timegm(day.timetuple()))


@dataclass(slots=True)
class SegmentStats:
    """What /metrics shows of the segments; updated after each rotation and maintenance run."""

    count: int = 0
    total_bytes: int = 0
    last_rotation: float = 0.0  # Unix time; 0 before the first rotation of this process
    rotations: int = 0
    deleted: int = 0


# Maintenance runs one at a time, whichever log it is for: it runs on worker threads only (never the event
# loop's), and one lock for all spares each room's log one of its own.
_MAINTENANCE = threading.Lock()


class RotatingLog:
    """chat.log plus its rotated segments, with one writer (the journal, on the event loop)."""

    def __init__(
        self,
        data_dir: Path,
        log_class: type[ChatLog] = ChatLog,
        policy: RotationPolicy = RotationPolicy(),
        *,
        clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
        pool: LogPool | None = None,
    ) -> None:
        self._pool = pool  # rooms' logs share a few descriptors: a quiet one's file is closed until it is written
        self.path = data_dir / LOG_NAME
        self.policy = policy
        self.stats = SegmentStats()
        self._log_class = log_class
        self._clock = clock
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="chat-log-maintenance")
        self._log: ChatLog | None = None
        self._day_ends = float("inf")
        self._retry_at = 0.0  # after a failed rotation, the next attempt waits until then (monotonic)

    @property
    def data_dir(self) -> Path:
        """chat.log's directory, asked of its path (only off the hot path): a room keeps one Path, not two."""
        return self.path.parent

    # --- start-up -------------------------------------------------------------------------------------

    def open(self) -> OpenReport:
        """Recover from any crash point, open chat.log, and find the last seq (across segments)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for stale in segments.leftovers(self.data_dir):
            log.warning("Removed %s, left by a crash while compressing", stale.name)
            stale.unlink()
        chat_log, report = self._log_class.open(self.data_dir)
        for segment in segments.list_segments(self.data_dir):
            make_path_private(segment.path)  # rotated by an older version, when chat.log was 0640
        self._adopt(chat_log, report.first_ts)
        if self._pool is not None:
            self._pool.writing(self)  # open now: it counts among the pool's open files
        if report.last_seq == 0:
            report = OpenReport(self._last_seq_elsewhere(), report.torn_bytes_removed)
        self._executor.submit(self._run_maintenance)  # compression can take a while: not before listening
        return report

    def _last_seq_elsewhere(self) -> int:
        """chat.log is new or empty: the sequence goes on from the newest segment (ours or logrotate's)."""
        ours = [segments.last_seq_of(s.path) for s in segments.list_segments(self.data_dir)[-1:]]  # must read
        foreign = sorted(segments.foreign_logs(self.data_dir), key=lambda path: path.stat().st_mtime)[-1:]
        return max(ours + [_last_seq_or_zero(path) for path in foreign], default=0)

    def _adopt(self, chat_log: ChatLog, first_ts: str | None) -> None:
        self._log = chat_log
        self.path = chat_log.path  # the same path: one object for both (each is about 250 B, and a room has one)
        started = parse_ts(first_ts).timestamp() if first_ts else None
        self._day_ends = next_midnight(started) if started is not None else float("inf")

    # --- the hot path ---------------------------------------------------------------------------------

    def append(self, data: bytes) -> None:
        """Write whole lines, rotating first when this batch would cross a limit."""
        if self._pool is not None:
            self._pool.writing(self)
        chat_log = self._log if self._log is not None else self._reopen_after_failure()
        if chat_log.size and self._due(chat_log.size + len(data), data):
            chat_log = self._rotate(chat_log)
        self._write(chat_log, data)

    def _write(self, chat_log: ChatLog, data: bytes) -> None:
        """The batch into chat.log; the first batch of a fresh one starts its day (daily rotation)."""
        fresh = chat_log.first_seq is None
        chat_log.append(data)
        if fresh and self.policy.daily:
            self._day_ends = next_midnight(_batch_time(data, self._clock))

    def _due(self, size_after: int, data: bytes) -> bool:
        limit = self.policy.max_bytes
        # By the time of the batch's first event, not of the write: an event stamped 23:59:59.999
        # and written a moment after midnight still belongs to its own day's segment.
        new_day = self.policy.daily and _batch_time(data, self._clock) >= self._day_ends
        due = (limit > 0 and size_after > limit) or new_day
        return due and time.monotonic() >= self._retry_at

    # --- rotation -------------------------------------------------------------------------------------

    def _rotate(self, chat_log: ChatLog) -> ChatLog:
        """Steps 1-3 of the docstring's list: chat.log as a segment, and a fresh chat.log (postponed: the same one)."""
        first_seq = chat_log.first_seq
        assert first_seq is not None  # the file is not empty
        target = self.data_dir / segments.segment_name(first_seq)
        if target.exists() or target.with_name(target.name + segments.GZ).exists():
            return self._postpone(chat_log, f"{target.name} exists already")
        with contextlib.suppress(OSError):
            chat_log.fsync()  # the data first, then the name: a power cut never renames a hole
        try:
            self._rename_to(target)
        except OSError as error:
            return self._postpone(chat_log, error.strerror or str(error))
        chat_log.close()
        self._log = None
        self._rotated(target, chat_log.size)
        return self._open_fresh()

    def _rename_to(self, segment: Path) -> None:
        """Step 2, once chat.log is fsynced: it becomes ``segment``, durably (OSError: nothing renamed)."""
        self.path.rename(segment)
        self._sync_dir()

    def _postpone(self, chat_log: ChatLog, why: str) -> ChatLog:
        log.error("Cannot rotate %s (%s); still writing to it, retrying in a second", self.path, why)
        self._retry_at = time.monotonic() + ROTATION_RETRY_SECONDS
        return chat_log

    def _open_fresh(self) -> ChatLog:
        """A new chat.log after a rotation; failing (disk trouble), the journal retries the batch."""
        try:
            chat_log, report = self._log_class.open(self.data_dir)
        except OSError as error:
            raise LogWriteError(error.errno, f"cannot open a fresh {self.path}: {error.strerror}") from error
        self._sync_dir()
        self._adopt(chat_log, report.first_ts)
        return chat_log

    def _sync_dir(self) -> None:
        try:
            segments.fsync_dir(self.data_dir)
        except OSError as error:  # the rename or creation happened; only its durability on power loss is at stake
            log.warning("Cannot fsync %s (%s)", self.data_dir, error.strerror)

    def _reopen_after_failure(self) -> ChatLog:
        self._open_fresh()
        assert self._log is not None
        log.warning("Opened a fresh %s after a failed rotation", self.path)
        return self._log

    def rest(self) -> None:
        """Close chat.log's descriptor while the log is quiet (``LogPool``); its next write opens it again."""
        if self._log is not None:
            self._log.rest()

    def _rotated(self, segment: Path, size: int) -> None:
        self.stats.rotations += 1
        self.stats.last_rotation = self._clock()
        log.info("Rotated chat.log to %s (%d bytes)", segment.name, size)
        self._executor.submit(self._run_maintenance)

    # --- compression and retention (a worker thread) -------------------------------------------------

    def _run_maintenance(self) -> None:
        with _MAINTENANCE:
            if self.policy.compress:
                self._compress_all()
            self._apply_retention()
            listed = segments.list_segments(self.data_dir)
            self.stats.count, self.stats.total_bytes = len(listed), sum(s.size for s in listed)

    def _compress_all(self) -> None:
        for segment in segments.list_segments(self.data_dir):
            if segment.compressed:
                self._repack(segment.path)
                continue
            try:
                packed = segments.compress(segment.path)
            except OSError as error:
                log.warning("Cannot compress %s (%s); left uncompressed", segment.path.name, error.strerror)
                return
            log.info("Compressed %s", packed.name)

    def _repack(self, path: Path) -> None:
        """A ``.gz`` of an older version becomes one a read can enter at a seq (once; in this thread)."""
        try:
            if segments.repack(path):
                log.info("Indexed %s (gzip members a read can enter at a seq)", path.name)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            log.warning("Cannot index %s (%s); read from its start", path.name, error)

    def _apply_retention(self) -> None:
        retention = self.policy.retention
        if not retention.active:
            return
        for segment, rule in retention.deletions(segments.list_segments(self.data_dir), self._clock()):
            self._delete(segment, rule)

    def _delete(self, segment: Segment, rule: str) -> None:
        try:
            segment.path.unlink()
        except FileNotFoundError:
            return
        except OSError as error:
            log.error("Cannot delete %s (%s)", segment.path.name, error.strerror)
            return
        self.stats.deleted += 1
        log.info("Deleted %s (%d bytes; retention: %s)", segment.path.name, segment.size, rule)

    # --- reopen (SIGHUP) and changes made underneath ---------------------------------------------------

    def reopen(self) -> None:
        """Reopen chat.log by name (logrotate's ``create`` mode renamed it); the sequence goes on."""
        old = self._log
        try:
            self._open_fresh()
        except LogWriteError as error:
            log.error("Cannot reopen %s (%s); still writing to the old file", self.path, error.strerror)
            self._log = old
            return
        if old is not None:
            old.close()
        log.info("Reopened %s", self.path)

    def check_underneath(self) -> None:
        """Notice chat.log truncated, grown by someone else, or replaced; warn and go on correctly.

        Called about once a second, off the hot path. Writes are ``O_APPEND``, so they
        never land at a stale offset; this keeps the tracker's own bookkeeping (the
        rotation counter, the size readers stop at) true to the file.
        """
        chat_log = self._log
        if chat_log is None:
            return
        try:
            device, inode, size = chat_log.identity()
            named = self.path.stat()
        except FileNotFoundError:
            named = None
        if named is None or (named.st_dev, named.st_ino) != (device, inode):
            log.warning("%s was renamed or replaced underneath the tracker; reopening it", self.path)
            self.reopen()
        elif size != chat_log.size:
            verb = "truncated" if size < chat_log.size else "written to"
            log.warning(
                "%s was %s underneath the tracker (%d bytes, expected %d); continuing the sequence. "
                "Rotate with --rotate-bytes/--rotate-daily or logrotate's create mode, never copytruncate",
                self.path,
                verb,
                size,
                chat_log.size,
            )
            chat_log.adopt_size(size)

    # --- reading (worker threads) ---------------------------------------------------------------------

    def files(self) -> list[LogFile]:
        """Every file to read, oldest first: the segments, then chat.log up to its whole lines."""
        # chat.log first, then the listing: a rotation in between shows as a gap (read again),
        # never as events silently missing at the end.
        chat_log = self._log
        listed = segments.files_of(segments.list_segments(self.data_dir))
        if chat_log is not None and chat_log.first_seq is not None:
            listed.append(LogFile(self.path, chat_log.first_seq, size=chat_log.size))
        return listed

    def read_after(self, seq: int, limit: int) -> list[LogEntry]:
        """Entries after ``seq`` across segments; stops short at a real gap (the journal reports it gone)."""
        for _ in range(READ_ATTEMPTS - 1):
            with contextlib.suppress(Discontinuity):
                return segments.read_after(self.files(), seq, limit)
        try:
            return segments.read_after(self.files(), seq, limit)
        except Discontinuity as gap:
            return gap.entries

    def tail(self, count: int) -> list[LogEntry]:
        for _ in range(READ_ATTEMPTS - 1):
            with contextlib.suppress(Discontinuity):
                return segments.tail(self.files(), count)
        try:
            return segments.tail(self.files(), count)
        except Discontinuity as gap:
            return gap.entries

    @property
    def size(self) -> int:
        return self._log.size if self._log is not None else 0

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)  # a compression under way finishes
        if self._log is not None:
            self._log.close()
            self._log = None
