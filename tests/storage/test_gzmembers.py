"""Gzipped segments entered at a seq: members that name their first seq, read from the one that holds it."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
from pathlib import Path

import pytest

from chat_tracker.core.events import MESSAGE, Event
from chat_tracker.storage import gzmembers, segments
from chat_tracker.storage.chatlog import READS
from chat_tracker.storage.segments import LogFile, segment_name

LINES = 30_000


def _lines(first: int, last: int) -> bytes:
    text = "a line of about the length people type in a chat room, more or less"
    return b"".join(Event(seq, 0.0, MESSAGE, "alpha", f"{text} {seq}").log_line() for seq in range(first, last + 1))


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30,000-line segment, compressed as rotation compresses it."""
    plain = tmp_path_factory.mktemp("gz") / segment_name(1)
    plain.write_bytes(_lines(1, LINES))
    return segments.compress(plain)


def _lines_read(action: object) -> int:
    before = READS.lines
    assert callable(action)
    action()
    return READS.lines - before


def test_a_compressed_segment_is_plain_gzip_of_the_same_lines(packed: Path) -> None:
    """Any gzip reader (Python's, zcat) sees exactly the original lines: the members are standard gzip."""
    assert gzip.decompress(packed.read_bytes()) == _lines(1, LINES)
    unpacked = subprocess.run(["gzip", "-dc", str(packed)], capture_output=True, check=True).stdout
    assert unpacked == _lines(1, LINES)


def test_members_hold_whole_lines_of_bounded_size_and_name_their_first_seq(packed: Path) -> None:
    with packed.open("rb") as raw:
        found = gzmembers.members(raw)
    assert len(found) > 5 and found[0] == gzmembers.Member(1, 0)
    seqs = [member.first_seq for member in found]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    per_member = LINES / len(found)
    assert per_member * len(_lines(1, 1)) <= 1.1 * gzmembers.MEMBER_BYTES


def test_reading_deep_in_a_segment_decompresses_one_member_not_all_before_it(packed: Path) -> None:
    """after=29,990: the lines read are those of one member at most, not 29,990 of them."""
    file = LogFile(packed, 1, compressed=True)
    entries: list[object] = []
    read = _lines_read(lambda: entries.extend(segments.read_after([file], LINES - 10, 5)))
    assert [e.seq for e in entries] == list(range(LINES - 9, LINES - 4))  # type: ignore[attr-defined]
    assert read <= 2 * gzmembers.MEMBER_BYTES // len(_lines(1, 1))
    assert read < LINES // 5


@pytest.mark.parametrize("after", [0, 1, 2, 3_000, 3_001, 15_000, LINES - 1])
def test_every_seq_is_found_whichever_member_it_starts(packed: Path, after: int) -> None:
    with packed.open("rb") as raw:
        starts = [member.first_seq for member in gzmembers.members(raw)]
    for seq in {after, *(s - 1 for s in starts[:3]), *(s for s in starts[:3])}:
        entries = segments.read_after([LogFile(packed, 1, compressed=True)], seq, 3)
        assert [e.seq for e in entries] == [s for s in range(seq + 1, seq + 4) if s <= LINES], seq


def test_the_tail_of_a_compressed_segment_reads_its_last_members_only(packed: Path) -> None:
    file = LogFile(packed, 1, compressed=True)
    entries: list[object] = []
    read = _lines_read(lambda: entries.extend(segments.tail([file], 100)))
    assert [e.seq for e in entries] == list(range(LINES - 99, LINES + 1))  # type: ignore[attr-defined]
    assert read < LINES // 5
    assert segments.last_seq_of(packed) == LINES


def test_a_gz_written_by_an_older_version_is_still_read_from_its_start(tmp_path: Path) -> None:
    """One plain gzip member, no index: read from the start, every seq still found."""
    old = tmp_path / segment_name(1, compressed=True)
    old.write_bytes(gzip.compress(_lines(1, 2_000)))
    with old.open("rb") as raw:
        assert gzmembers.members(raw) == []
    file = LogFile(old, 1, compressed=True)
    assert [e.seq for e in segments.read_after([file], 1_500, 2)] == [1_501, 1_502]
    assert [e.seq for e in segments.tail([file], 2)] == [1_999, 2_000]


def test_a_line_longer_than_a_member_makes_one_longer_member() -> None:
    """Members end at newlines: one long line is never split, it just makes its member longer."""
    long_line = b"7 2026-01-01T00:00:00.000Z msg alpha " + b"x" * (gzmembers.MEMBER_BYTES + 10) + b"\n"
    data = _lines(1, 6) + long_line + _lines(8, 9)
    target = io.BytesIO()
    gzmembers.write(io.BytesIO(data), target, 0)
    assert gzip.decompress(target.getvalue()) == data
    target.seek(0)
    found = [member.first_seq for member in gzmembers.members(target)]
    assert found[0] == 1 and found == sorted(found)


def test_offsets_pick_the_member_holding_the_line() -> None:
    found = [gzmembers.Member(1, 0), gzmembers.Member(101, 500), gzmembers.Member(201, 900)]
    assert gzmembers.offset_after(found, 0) == 0
    assert gzmembers.offset_after(found, 99) == 0
    assert gzmembers.offset_after(found, 100) == 500  # seq 101 starts the second member
    assert gzmembers.offset_after(found, 250) == 900
    assert gzmembers.offset_after([], 250) == 0
    assert gzmembers.offset_for_last(found, 1) == 900
    assert gzmembers.offset_for_last(found, 100) == 500
    assert gzmembers.offset_for_last(found, 101) == 500
    assert gzmembers.offset_for_last(found, 102) == 0


def test_an_old_gz_is_repacked_once_into_indexed_members_with_the_same_lines(tmp_path: Path) -> None:
    """Maintenance rewrites an older version's .gz atomically; the lines and the rotation time are kept."""
    old = tmp_path / segment_name(1, compressed=True)
    old.write_bytes(gzip.compress(_lines(1, 20_000)))
    os.utime(old, (1_000_000.0, 1_000_000.0))
    assert not gzmembers.is_indexed(old)
    assert segments.repack(old)
    assert gzmembers.is_indexed(old) and gzip.decompress(old.read_bytes()) == _lines(1, 20_000)
    assert old.stat().st_mtime == 1_000_000.0 and sorted(p.name for p in tmp_path.iterdir()) == [old.name]
    assert not segments.repack(old)  # once
