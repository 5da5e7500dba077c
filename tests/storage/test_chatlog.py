"""chat.log on disk: created on open, continued across restarts, never left with a torn line."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from chat_tracker.core.events import MESSAGE, START, Event
from chat_tracker.storage import chatlog
from chat_tracker.storage.chatlog import ChatLog, LogFormatError, LogWriteError, parse_line, read_last_lines


def _lines(count: int, start: int = 1, text: str = "hello") -> bytes:
    return b"".join(
        Event(seq, 0.0, MESSAGE, "alpha", f"{text} {seq}").log_line() for seq in range(start, start + count)
    )


def test_open_creates_an_empty_log(tmp_path: Path) -> None:
    """Opening a missing data directory creates it and an empty chat.log; the first seq will be 1."""
    data_dir = tmp_path / "new" / "data"
    log, report = ChatLog.open(data_dir)
    log.close()
    assert (data_dir / "chat.log").read_bytes() == b""
    assert report.last_seq == 0 and report.torn_bytes_removed == 0


def test_last_seq_continues_across_reopen(tmp_path: Path) -> None:
    """After a restart the log reports the last seq written before it, and appends after it."""
    log, _ = ChatLog.open(tmp_path)
    log.append(_lines(3))
    log.close()
    log, report = ChatLog.open(tmp_path)
    assert report.last_seq == 3
    log.append(_lines(1, start=4))
    log.close()
    assert [entry.seq for entry in ChatLog.open(tmp_path)[0].tail(10)] == [1, 2, 3, 4]


def test_torn_last_line_is_cut_and_reported(tmp_path: Path) -> None:
    """A last line without its newline (a crash mid-write) is removed at open, and its size reported."""
    whole = _lines(2)
    torn = b"3 2026-11-24T01:50:41.500Z msg alpha half a mess"
    (tmp_path / "chat.log").write_bytes(whole + torn)
    log, report = ChatLog.open(tmp_path)
    log.close()
    assert report.torn_bytes_removed == len(torn)
    assert report.last_seq == 2
    assert (tmp_path / "chat.log").read_bytes() == whole


def test_log_of_only_a_torn_line_becomes_empty(tmp_path: Path) -> None:
    """A file holding nothing but a torn line is emptied, and numbering starts again at 1."""
    (tmp_path / "chat.log").write_bytes(b"1 2026-11-24T01:50:41.500Z join al")
    log, report = ChatLog.open(tmp_path)
    log.close()
    assert (report.last_seq, report.torn_bytes_removed) == (0, 34)
    assert (tmp_path / "chat.log").read_bytes() == b""


def test_a_log_that_is_not_chat_log_is_refused(tmp_path: Path) -> None:
    """A file whose last lines are not chat.log lines is refused rather than renumbered from 1."""
    (tmp_path / "chat.log").write_bytes(b"this is my shopping list\n")
    with pytest.raises(LogFormatError):
        ChatLog.open(tmp_path)


@pytest.fixture
def hundred_lines(tmp_path: Path) -> Path:
    path = tmp_path / "chat.log"
    path.write_bytes(_lines(100))
    return path


@pytest.mark.parametrize("count", [1, 2, 99, 100, 101, 10_000])
def test_read_last_lines_returns_the_last_n_in_order(hundred_lines: Path, count: int) -> None:
    """``read_last_lines(n)`` is the last n lines oldest first, or every line when there are fewer."""
    expected = hundred_lines.read_text(encoding="utf-8").splitlines()[-count:]
    assert read_last_lines(hundred_lines, count) == expected


@pytest.mark.parametrize("count", [0, -1])
def test_read_last_lines_of_nothing(hundred_lines: Path, count: int) -> None:
    """Asking for no lines gives none."""
    assert read_last_lines(hundred_lines, count) == []


def test_read_last_lines_skips_a_line_still_being_written(hundred_lines: Path) -> None:
    """A last line without its newline is not complete, so it is not returned."""
    with hundred_lines.open("ab") as file:
        file.write(b"101 2026-11-24T01:50:41.500Z msg alpha wri")
    assert read_last_lines(hundred_lines, 1) == ["100 1970-01-01T00:00:00.000Z msg alpha hello 100"]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7])
def test_tail_across_chunk_boundaries(tmp_path: Path, count: int) -> None:
    """Lines longer than the 64 KiB read chunk, and multi-byte characters split by it, come back whole."""
    texts = ["é" * 40_000, "x" * 70_000, "😀" * 20_000 + "end", "short", "\n" * 30_000, "y" * 200_000, ""]
    data = b"".join(Event(seq, 0.0, MESSAGE, "alpha", text).log_line() for seq, text in enumerate(texts, 1))
    assert len(data) > 4 * 64 * 1024
    log, _ = ChatLog.open(tmp_path)
    log.append(data)
    assert [entry.text for entry in log.tail(count)] == texts[-count:]
    assert [entry.seq for entry in log.tail(count)] == list(range(len(texts) - count + 1, len(texts) + 1))
    log.close()


def test_last_seq_found_after_a_huge_line(tmp_path: Path) -> None:
    """The last seq is found even when the last line alone spans several read chunks."""
    log, _ = ChatLog.open(tmp_path)
    log.append(_lines(5) + Event(6, 0.0, MESSAGE, "alpha", "z" * 300_000).log_line())
    log.close()
    assert ChatLog.open(tmp_path)[1].last_seq == 6


def _failing_write(real_write: Callable[[int, bytes], int], fail_after: int) -> Callable[[int, bytes], int]:
    """An os.write that writes ``fail_after`` bytes, then fails with ENOSPC (a disk filling up)."""
    budget = [fail_after]

    def write(fd: int, data: bytes) -> int:
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, bytes(data)[: budget[0]])
        budget[0] -= written
        return written

    return write


@pytest.mark.parametrize("fail_after", [0, 1, 30, 100])
def test_failed_append_leaves_no_torn_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_after: int) -> None:
    """A write that fails part-way raises LogWriteError and leaves only the whole lines written before."""
    log, _ = ChatLog.open(tmp_path)
    log.append(_lines(2))
    before = (tmp_path / "chat.log").read_bytes()
    monkeypatch.setattr(os, "write", _failing_write(os.write, fail_after))
    with pytest.raises(LogWriteError) as caught:
        log.append(_lines(3, start=3))
    assert caught.value.errno == errno.ENOSPC
    assert (tmp_path / "chat.log").read_bytes() == before
    monkeypatch.undo()
    log.append(_lines(1, start=3))  # the disk has room again
    log.close()
    assert [parse_line(line).seq for line in (tmp_path / "chat.log").read_text().splitlines()] == [1, 2, 3]


def test_a_write_of_zero_bytes_counts_as_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that makes no progress fails with ENOSPC instead of looping forever."""
    log, _ = ChatLog.open(tmp_path)
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    with pytest.raises(LogWriteError) as caught:
        log.append(_lines(1))
    assert caught.value.errno == errno.ENOSPC
    log.close()


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that accepts a few bytes per write still gets the whole batch, in order."""
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:7]))
    log, _ = ChatLog.open(tmp_path)
    log.append(_lines(3))
    log.close()
    assert (tmp_path / "chat.log").read_bytes() == _lines(3)


def test_parse_line_refuses_non_log_lines() -> None:
    """Lines without seq/ts/kind/name, or with a bad escape, are LogFormatError."""
    for bad in ["", "hello", "x 2026 msg alpha", "1 2026 msg", "1 ts msg alpha bad\\q escape"]:
        with pytest.raises(LogFormatError):
            parse_line(bad)


def test_parse_line_keeps_spaces_in_text() -> None:
    """Everything after the name, spaces included, is the text."""
    entry = parse_line("7 ts msg alpha  two  spaces ")
    assert (entry.seq, entry.kind, entry.name, entry.text) == (7, "msg", "alpha", " two  spaces ")
    assert parse_line("1 ts start -").text == ""
    assert Event(1, 0.0, START).log_line().decode().rstrip("\n").split(" ")[-1] == "-"


def test_chunk_size_is_what_the_boundary_tests_assume() -> None:
    """The read chunk is 64 KiB, so the lines above do cross chunk boundaries."""
    assert chatlog._CHUNK == 64 * 1024
