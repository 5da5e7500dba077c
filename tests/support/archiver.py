"""The archiver (``python -m chat_tracker.runtime.archive_cli``) as its own process, and what it wrote.

``launch_archiver`` starts one on a free port and returns once it listens (tests/redis/conftest.py's
``start_archiver`` fixture kills every one at the end); ``all_lines`` reads its chat.log with the
rotated segments; ``wait_until`` polls for what only shows in files.
"""

from __future__ import annotations

import gzip
import sys
import time
from collections.abc import Callable
from pathlib import Path

from support.redis_server import POLL_SECONDS
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, start_server, tracker_env

StartArchiver = Callable[..., RunningTracker]


def archiver_command(redis_url: str, data_dir: Path, *args: str) -> list[str]:
    base = [sys.executable, "-m", "chat_tracker.runtime.archive_cli", "--host", "127.0.0.1", "--port", "0"]
    return [*base, "--redis-url", redis_url, "--data-dir", str(data_dir), *args]


def launch_archiver(redis_url: str, data_dir: Path, *args: str) -> RunningTracker:
    """An archiver of ``redis_url`` into ``data_dir``, with the tests' password; returned once it listens."""
    command = archiver_command(redis_url, data_dir, *args)
    return start_server(command, tracker_env(PASSWORD), PASSWORD, data_dir, RunningTracker)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 2 * UNIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def all_lines(data_dir: Path) -> list[str]:
    """Every chat.log line, the rotated segments first (oldest first), then chat.log."""
    segments = sorted(
        (p for p in data_dir.glob("chat.log.*") if p.name.split(".")[2].isdigit()),
        key=lambda p: int(p.name.split(".")[2]),
    )
    lines: list[str] = []
    for path in [*segments, data_dir / "chat.log"]:
        if path.exists():
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            lines += data.decode().splitlines()
    return lines
