"""RotatingLog: rotation by size and by UTC day, start-up recovery from every crash point, retention, reopen."""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest

from chat_tracker.core.events import MESSAGE, Event
from chat_tracker.journal.local import LocalJournal
from chat_tracker.storage.rotation import RotatingLog, RotationPolicy, next_midnight
from chat_tracker.storage.segments import RetentionPolicy, list_segments, segment_name
from support.fakes import FakeClock

MIDNIGHT = 1_796_083_200.0  # 2026-12-01T00:00:00Z


class Inline(Executor):
    """Runs maintenance at once, so a test sees its effect without waiting for a thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _line(seq: int, text: str = "hello", at: float = 0.0) -> bytes:
    return Event(seq, at, MESSAGE, "alpha", f"{text} {seq}").log_line()


def _open(data_dir: Path, clock: Callable[[], float] | None = None, **policy: Any) -> RotatingLog:
    clock = clock or FakeClock(MIDNIGHT - 10)
    rotating = RotatingLog(data_dir, policy=RotationPolicy(**policy), clock=clock, executor=Inline())
    rotating.open()
    return rotating


def _write(rotating: RotatingLog, first: int, last: int, clock: Callable[[], float] | None = None) -> None:
    """Lines ``first``..``last``, stamped with ``clock``'s time as the journal stamps its events."""
    for seq in range(first, last + 1):
        rotating.append(_line(seq, at=clock() if clock is not None else 0.0))


def _seqs_on_disk(data_dir: Path) -> list[int]:
    """Every seq in every segment and chat.log, in file-name order (a segment name sorts by seq)."""
    seqs = []
    for path in [*sorted(data_dir.glob("chat.log.*"), key=lambda p: p.name), data_dir / "chat.log"]:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        seqs += [int(line.split(b" ", 1)[0]) for line in data.splitlines()]
    return seqs


def test_size_rotation_names_segments_by_first_seq(tmp_path: Path) -> None:
    """Past --rotate-bytes, chat.log becomes chat.log.<first seq>; the seq goes on in a fresh chat.log."""
    line_size = len(_line(1))
    rotating = _open(tmp_path, max_bytes=3 * line_size)
    _write(rotating, 1, 10)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["chat.log", segment_name(1), segment_name(4), segment_name(7)]
    assert _seqs_on_disk(tmp_path) == list(range(1, 11))
    assert rotating.stats.rotations == 3 and rotating.stats.count == 3
    assert [e.seq for e in rotating.read_after(2, 100)] == list(range(3, 11))
    assert [e.seq for e in rotating.tail(5)] == [6, 7, 8, 9, 10]
    rotating.close()


def test_daily_rotation_at_utc_midnight(tmp_path: Path) -> None:
    """With --rotate-daily, the first write after UTC midnight goes to a fresh chat.log."""
    clock = FakeClock(MIDNIGHT - 10)
    rotating = _open(tmp_path, clock, daily=True)
    _write(rotating, 1, 3, clock)
    clock.advance(9)
    _write(rotating, 4, 4, clock)
    assert not list(tmp_path.glob("chat.log.*"))
    clock.advance(1)  # midnight
    _write(rotating, 5, 6, clock)
    assert [p.name for p in tmp_path.glob("chat.log.*")] == [segment_name(1)]
    clock.advance(86_400)
    _write(rotating, 7, 7, clock)
    assert sorted(p.name for p in tmp_path.glob("chat.log.*")) == [segment_name(1), segment_name(5)]
    assert _seqs_on_disk(tmp_path) == list(range(1, 8))
    rotating.close()


def test_an_event_stamped_before_midnight_but_written_after_stays_in_its_day(tmp_path: Path) -> None:
    """The day of a batch is the time of its first event, not of the write (a loop turn can straddle midnight)."""
    clock = FakeClock(MIDNIGHT - 10)
    rotating = _open(tmp_path, clock, daily=True)
    _write(rotating, 1, 1, clock)
    clock.advance(10.001)  # the write comes just after midnight...
    rotating.append(_line(2, at=MIDNIGHT - 0.001))  # ...of an event stamped just before it
    assert not list(tmp_path.glob("chat.log.*"))
    _write(rotating, 3, 3, clock)
    assert [p.name for p in tmp_path.glob("chat.log.*")] == [segment_name(1)]
    assert _seqs_on_disk(tmp_path) == [1, 2, 3]
    rotating.close()


def test_next_midnight_is_utc() -> None:
    assert next_midnight(MIDNIGHT - 0.001) == MIDNIGHT
    assert next_midnight(MIDNIGHT) == MIDNIGHT + 86_400


def test_restart_after_a_daily_segment_of_yesterday_rotates_first(tmp_path: Path) -> None:
    """A chat.log whose first line is from before midnight is rotated at the first write after a restart."""
    clock = FakeClock(MIDNIGHT - 10)
    rotating = _open(tmp_path, clock, daily=True)
    (tmp_path / "chat.log").write_bytes(Event(1, MIDNIGHT - 5, MESSAGE, "a", "x").log_line())
    rotating.close()
    clock.advance(20)
    rotating = _open(tmp_path, clock, daily=True)
    _write(rotating, 2, 2, clock)
    assert [p.name for p in tmp_path.glob("chat.log.*")] == [segment_name(1)]
    rotating.close()


def _crash_state(data_dir: Path, state: str) -> None:
    """Leave ``data_dir`` as a SIGKILL at ``state`` of rotating a chat.log of seqs 1-5 would."""
    data_dir.mkdir()
    segment = data_dir / segment_name(1)
    segment.write_bytes(b"".join(_line(seq) for seq in range(1, 6)))
    if state == "before-rename":
        segment.rename(data_dir / "chat.log")
    elif state == "after-reopen":
        (data_dir / "chat.log").write_bytes(b"")
    elif state == "mid-write":
        (data_dir / "chat.log").write_bytes(_line(6)[:20])
    elif state == "mid-compress":
        (data_dir / (segment.name + ".gz.tmp")).write_bytes(gzip.compress(segment.read_bytes())[:30])
    elif state == "after-compress":
        (data_dir / (segment.name + ".gz")).write_bytes(gzip.compress(segment.read_bytes()))


@pytest.mark.parametrize(
    "state", ["before-rename", "after-rename", "after-reopen", "mid-write", "mid-compress", "after-compress"]
)
def test_start_up_recovers_from_every_crash_point(tmp_path: Path, state: str) -> None:
    """Whatever step a SIGKILL interrupted, start-up continues at seq 6 with every line kept once."""
    data_dir = tmp_path / "data"
    _crash_state(data_dir, state)
    rotating = RotatingLog(data_dir, policy=RotationPolicy(max_bytes=10_000), executor=Inline())
    assert rotating.open().last_seq == 5
    _write(rotating, 6, 7)
    assert _seqs_on_disk(data_dir) == list(range(1, 8))
    assert not list(data_dir.glob("*.tmp"))
    assert len(list(data_dir.glob("chat.log.*"))) == (0 if state == "before-rename" else 1)
    rotating.close()


def test_restart_after_logrotate_renamed_chat_log(tmp_path: Path) -> None:
    """logrotate's create mode left chat.log empty beside chat.log.1: the sequence goes on from chat.log.1."""
    (tmp_path / "chat.log.1").write_bytes(b"".join(_line(seq) for seq in range(1, 9)))
    (tmp_path / "chat.log").write_bytes(b"")
    rotating = RotatingLog(tmp_path, executor=Inline())
    assert rotating.open().last_seq == 8
    rotating.close()


def test_retention_runs_after_each_rotation_and_logs_each_deletion(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--keep-segments 2: older segments go, one log line each; chat.log is never deleted."""
    caplog.set_level(logging.INFO, "chat_tracker")
    rotating = _open(tmp_path, max_bytes=2 * len(_line(1)), retention=RetentionPolicy(keep_segments=2))
    _write(rotating, 1, 9)
    assert sorted(p.name for p in tmp_path.glob("chat.log.*")) == [segment_name(5), segment_name(7)]
    deleted = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Deleted")]
    assert deleted == [
        f"Deleted {segment_name(n)} ({2 * len(_line(1))} bytes; retention: keep-segments 2)" for n in (1, 3)
    ]
    assert (tmp_path / "chat.log").exists() and rotating.stats.deleted == 2
    assert rotating.read_after(0, 100)[0].seq == 5  # the journal reports 1-4 as gone
    rotating.close()


def test_compressed_segments_are_read_like_plain_ones(tmp_path: Path) -> None:
    """--compress: rotated segments become .gz and are read the same."""
    rotating = _open(tmp_path, max_bytes=2 * len(_line(1)), compress=True)
    _write(rotating, 1, 7)
    assert sorted(p.name for p in tmp_path.glob("chat.log.*")) == [segment_name(n, True) for n in (1, 3, 5)]
    assert [e.seq for e in rotating.read_after(0, 100)] == list(range(1, 8))
    assert [e.seq for e in rotating.tail(4)] == [4, 5, 6, 7]
    rotating.close()


def test_truncation_underneath_is_noticed_and_the_sequence_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """copytruncate empties chat.log: a warning, the size bookkeeping adopted, the next line is the next seq."""
    rotating = _open(tmp_path, max_bytes=10_000)
    _write(rotating, 1, 5)
    os.truncate(tmp_path / "chat.log", 0)
    rotating.check_underneath()
    assert any("truncated underneath" in r.getMessage() for r in caplog.records)
    assert rotating.size == 0
    _write(rotating, 6, 6)
    assert _seqs_on_disk(tmp_path) == [6]
    assert [e.seq for e in rotating.read_after(0, 10)] == [6]
    rotating.close()


def test_rename_underneath_is_reopened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """chat.log renamed without a SIGHUP: noticed, reopened by name, the sequence goes on."""
    rotating = _open(tmp_path)
    _write(rotating, 1, 3)
    (tmp_path / "chat.log").rename(tmp_path / "chat.log.1")
    rotating.check_underneath()
    assert any("renamed or replaced" in r.getMessage() for r in caplog.records)
    _write(rotating, 4, 4)
    assert (tmp_path / "chat.log").read_bytes() == _line(4)
    rotating.close()


def test_reopen_after_an_external_rename(tmp_path: Path) -> None:
    """SIGHUP after logrotate renamed chat.log: new lines go to the new chat.log."""
    rotating = _open(tmp_path)
    _write(rotating, 1, 2)
    (tmp_path / "chat.log").rename(tmp_path / "chat.log-20261201")
    rotating.reopen()
    _write(rotating, 3, 3)
    assert (tmp_path / "chat.log").read_bytes() == _line(3)
    assert (tmp_path / "chat.log-20261201").read_bytes() == _line(1) + _line(2)
    rotating.close()


@pytest.mark.anyio
async def test_the_journal_reads_after_a_seq_across_segments_and_reports_gone(tmp_path: Path) -> None:
    """Resume-style read_after past the ring: across segment boundaries; a deleted segment is ``gone``."""
    rotating = _open(tmp_path, max_bytes=3 * len(_line(1)), retention=RetentionPolicy(keep_segments=2))
    journal = LocalJournal(rotating, last_seq=0, history_size=2, clock=FakeClock(MIDNIGHT - 10), auto_flush=False)
    for index in range(1, 16):
        journal.append(MESSAGE, "alpha", f"hello {index}")
        journal.commit()
    kept = [s.first_seq for s in list_segments(tmp_path)]
    assert len(kept) == 2
    history = await journal.read_after(0, 100)
    assert history.gone == (1, kept[0] - 1)
    assert [e.seq for e in history.events] == list(range(kept[0], 16))
    across = await journal.read_after(kept[0], 4)  # from the first kept segment into the next
    assert across.complete and [e.seq for e in across.events] == list(range(kept[0] + 1, kept[0] + 5))
    await journal.close()
