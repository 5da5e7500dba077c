"""Many logs, few descriptors: a quiet room's chat.log is closed until its next write, and reads never miss it."""

from __future__ import annotations

from pathlib import Path

from chat_tracker.storage.log_pool import LogPool
from chat_tracker.storage.rotation import RotatingLog


def _open_logs() -> int:
    """This process's descriptors open on a chat.log."""
    opened = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            opened += str(fd.readlink()).endswith("/chat.log")
        except OSError:
            continue  # the listing's own descriptor, closed already
    return opened


def _line(seq: int, text: str) -> bytes:
    return f"{seq} 2026-12-06T00:00:00.000Z msg alice {text}\n".encode()


def test_only_the_logs_written_last_hold_a_descriptor_and_every_write_lands(tmp_path: Path) -> None:
    pool = LogPool(2)
    logs = [RotatingLog(tmp_path / f"room{n}", pool=pool) for n in range(6)]
    for chat_log in logs:
        chat_log.open()
        assert _open_logs() <= pool.size
    for seq in range(1, 4):
        for n, chat_log in enumerate(logs):
            chat_log.append(_line(seq, f"room {n} line {seq}"))
            assert _open_logs() <= pool.size, "a quiet log kept its descriptor"
    for n, chat_log in enumerate(logs):
        texts = [entry.text for entry in chat_log.read_after(0, 10)]
        assert texts == [f"room {n} line {seq}" for seq in range(1, 4)], texts  # read while resting, too
        assert chat_log.tail(1)[0].seq == 3
    for chat_log in logs:
        chat_log.close()
    assert _open_logs() == 0
