"""Rotated segments: sizes, names, listing, crash leftovers, retention, and reading across files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from chat_tracker.core.events import MESSAGE, Event
from chat_tracker.errors import Discontinuity
from chat_tracker.storage import segments
from chat_tracker.storage.segments import LogFile, RetentionPolicy, Segment, segment_name

DAY = 86_400.0


def _lines(first: int, last: int) -> bytes:
    return b"".join(Event(seq, 0.0, MESSAGE, "alpha", f"hello {seq}").log_line() for seq in range(first, last + 1))


def _segment(directory: Path, first: int, last: int, compressed: bool = False) -> Path:
    path = directory / segment_name(first, compressed)
    data = _lines(first, last)
    path.write_bytes(gzip.compress(data) if compressed else data)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4096", 4096), ("64K", 65536), ("64M", 64 * 1024**2), ("1G", 1024**3), ("2kib", 2048), ("3 MB", 3 * 1024**2)],
)
def test_sizes_take_a_k_m_g_suffix(text: str, expected: int) -> None:
    """A size is bytes, or a number with K, M or G (powers of 1024)."""
    assert segments.size(text) == expected


@pytest.mark.parametrize("text", ["", "x", "-1", "1.5M", "12T", "M"])
def test_bad_sizes_are_refused(text: str) -> None:
    """Anything else is a ValueError (argparse then names the flag)."""
    with pytest.raises(ValueError, match="not a size"):
        segments.size(text)


def test_segment_names_sort_in_seq_order() -> None:
    """The first seq, zero-padded to 12 digits, so names sort like seqs; ``.gz`` when compressed."""
    assert segment_name(101) == "chat.log.000000000101"
    assert segment_name(7, compressed=True) == "chat.log.000000000007.gz"
    assert sorted(segment_name(n) for n in (10, 9, 100)) == [segment_name(n) for n in (9, 10, 100)]


def test_listing_finds_segments_in_order_and_ignores_others(tmp_path: Path) -> None:
    """Only ``chat.log.<12 digits>[.gz]`` are segments; chat.log, temps and logrotate's names are not."""
    _segment(tmp_path, 11, 20, compressed=True)
    _segment(tmp_path, 1, 10)
    for name in ("chat.log", "chat.log.1", "chat.log-20261201", "chat.log.000000000021.gz.tmp", "other"):
        (tmp_path / name).write_bytes(b"")
    listed = segments.list_segments(tmp_path)
    assert [(s.first_seq, s.compressed) for s in listed] == [(1, False), (11, True)]
    assert {p.name for p in segments.foreign_logs(tmp_path)} == {"chat.log.1", "chat.log-20261201"}


def test_a_plain_segment_wins_over_its_gz_twin(tmp_path: Path) -> None:
    """Mid-compression both exist; readers use the plain one, start-up removes it (the .gz is whole)."""
    _segment(tmp_path, 1, 10)
    _segment(tmp_path, 1, 10, compressed=True)
    (tmp_path / "chat.log.000000000011.gz.tmp").write_bytes(b"half")
    assert [s.compressed for s in segments.list_segments(tmp_path)] == [False]
    assert [p.name for p in segments.leftovers(tmp_path)] == ["chat.log.000000000001", "chat.log.000000000011.gz.tmp"]


def test_compress_is_atomic_and_keeps_the_rotation_time(tmp_path: Path) -> None:
    """gzip to a temp name, rename into place, remove the plain segment; its mtime is kept for retention."""
    plain = _segment(tmp_path, 1, 10)
    os.utime(plain, (1_000_000.0, 1_000_000.0))
    packed = segments.compress(plain)
    assert not plain.exists() and packed.name == "chat.log.000000000001.gz"
    assert gzip.decompress(packed.read_bytes()) == _lines(1, 10)
    assert packed.stat().st_mtime == 1_000_000.0
    assert sorted(p.name for p in tmp_path.iterdir()) == [packed.name]


def _seg(first: int, size: int = 100, age_days: float = 0.0, now: float = 10 * DAY) -> Segment:
    return Segment(Path(segment_name(first)), first, False, size, now - age_days * DAY)


def test_retention_by_count_keeps_the_newest() -> None:
    """--keep-segments N deletes all but the newest N, oldest first."""
    listed = [_seg(1), _seg(11), _seg(21), _seg(31)]
    doomed = RetentionPolicy(keep_segments=2).deletions(listed, 10 * DAY)
    assert [(s.first_seq, rule) for s, rule in doomed] == [(1, "keep-segments 2"), (11, "keep-segments 2")]


def test_retention_by_age() -> None:
    """--keep-days D deletes segments last written more than D days ago."""
    listed = [_seg(1, age_days=3), _seg(11, age_days=2.5), _seg(21, age_days=1)]
    doomed = RetentionPolicy(keep_days=2).deletions(listed, 10 * DAY)
    assert [(s.first_seq, rule) for s, rule in doomed] == [(1, "keep-days 2"), (11, "keep-days 2")]


def test_retention_by_bytes_counts_from_the_newest() -> None:
    """--keep-bytes B keeps the newest segments whose total fits in B."""
    listed = [_seg(1, 300), _seg(11, 300), _seg(21, 300)]
    doomed = RetentionPolicy(keep_bytes=650).deletions(listed, 10 * DAY)
    assert [s.first_seq for s, _ in doomed] == [1]
    assert RetentionPolicy(keep_bytes=600).deletions(listed, 10 * DAY)[0][0].first_seq == 1


def test_retention_rules_combine_and_none_keeps_everything() -> None:
    """Each rule may delete; the first rule that removes a segment is the one reported. No rule: nothing."""
    listed = [_seg(1, 500, age_days=5), _seg(11, 100), _seg(21, 100)]
    doomed = RetentionPolicy(keep_segments=3, keep_days=4, keep_bytes=250).deletions(listed, 10 * DAY)
    assert [(s.first_seq, rule) for s, rule in doomed] == [(1, "keep-days 4")]
    assert not RetentionPolicy().active and RetentionPolicy().deletions(listed, 10 * DAY) == []


def test_read_after_crosses_plain_gzip_and_the_current_file(tmp_path: Path) -> None:
    """Reading after a seq goes from segment to segment, compressed or not, into chat.log."""
    files = [
        LogFile(_segment(tmp_path, 1, 10, compressed=True), 1, True),
        LogFile(_segment(tmp_path, 11, 20), 11),
        LogFile(tmp_path / "chat.log", 21, size=len(_lines(21, 25))),
    ]
    (tmp_path / "chat.log").write_bytes(_lines(21, 25) + _lines(26, 26)[:10])  # a line still being written
    assert [e.seq for e in segments.read_after(files, 8, 5)] == [9, 10, 11, 12, 13]
    assert [e.seq for e in segments.read_after(files, 18, 100)] == [19, 20, 21, 22, 23, 24, 25]
    assert [e.seq for e in segments.read_after(files, 0, 100)] == list(range(1, 26))
    assert segments.read_after(files, 25, 10) == []
    assert [e.seq for e in segments.tail(files, 7)] == [19, 20, 21, 22, 23, 24, 25]
    assert [e.seq for e in segments.tail(files, 100)] == list(range(1, 26))


def test_read_after_stops_at_a_deleted_segment(tmp_path: Path) -> None:
    """A gap in the seqs (a segment deleted) ends the read; what follows starts after the gap."""
    files = [LogFile(_segment(tmp_path, 1, 10), 1), LogFile(_segment(tmp_path, 21, 30), 21)]
    with pytest.raises(Discontinuity) as gap:
        segments.read_after(files, 5, 100)
    assert [e.seq for e in gap.value.entries] == [6, 7, 8, 9, 10]
    assert [e.seq for e in segments.read_after(files, 10, 3)] == [21, 22, 23]
    assert [e.seq for e in segments.read_after(files, 14, 3)] == [21, 22, 23]


def test_a_segment_compressed_while_listed_is_read_under_its_new_name(tmp_path: Path) -> None:
    """A listing that named the plain segment still reads it after compression renamed it."""
    plain = _segment(tmp_path, 1, 10)
    listed = [LogFile(plain, 1)]
    segments.compress(plain)
    assert [e.seq for e in segments.read_after(listed, 0, 3)] == [1, 2, 3]


def test_last_seq_of_plain_and_gzip_files(tmp_path: Path) -> None:
    """Start-up reads the last seq of a segment (or of logrotate's file), compressed or not."""
    assert segments.last_seq_of(_segment(tmp_path, 1, 10)) == 10
    assert segments.last_seq_of(_segment(tmp_path, 11, 20, compressed=True)) == 20


def test_tail_of_a_segment_deleted_since_the_listing_asks_for_a_new_listing(tmp_path: Path) -> None:
    """Retention runs beside a start-up read: a vanished plain segment is a Discontinuity, not a crash."""
    oldest, newer = _segment(tmp_path, 1, 10), _segment(tmp_path, 11, 20)
    listed = [LogFile(oldest, 1, size=oldest.stat().st_size), LogFile(newer, 11, size=newer.stat().st_size)]
    oldest.unlink()
    with pytest.raises(Discontinuity) as gap:
        segments.tail(listed, 15)
    assert [e.seq for e in gap.value.entries] == list(range(11, 21))
