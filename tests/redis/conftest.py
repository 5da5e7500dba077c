"""Fixtures over a real redis-server (never a fake) and a real archiver process.

``redis_server`` starts ``redis-server`` in the test's directory; missing, it skips,
except in CI (any ``CI`` value: ``chat_testing.in_ci``), where it fails: ``.ci/run`` installs it.
``start_archiver`` starts ``python -m chat_tracker.runtime.archive_cli`` on a free port and
waits for its "Listening on" line; every one started is killed at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chat_testing import PASSWORD, UNIT, RunningTracker, _read_output
from redis_support import RedisServer, running_redis

StartArchiver = Callable[..., RunningTracker]
_LISTENING = re.compile(r"Listening on http://127\.0\.0\.1:(\d+)")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running redis-server with AOF and ``appendfsync always``, in ``tmp_path/redis``."""
    yield from running_redis(tmp_path / "redis")


def archiver_command(redis_url: str, data_dir: Path, *args: str) -> list[str]:
    base = [sys.executable, "-m", "chat_tracker.runtime.archive_cli", "--host", "127.0.0.1", "--port", "0"]
    return [*base, "--redis-url", redis_url, "--data-dir", str(data_dir), *args]


@pytest.fixture
def start_archiver(tmp_path: Path) -> Iterator[StartArchiver]:
    """Factory: ``start_archiver(redis_url, *flags, data_dir=...)``; every archiver is killed at the end."""
    started: list[RunningTracker] = []

    def start(redis_url: str, *args: str, data_dir: Path | None = None) -> RunningTracker:
        directory = data_dir or tmp_path / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
        env.update(PYTHONUNBUFFERED="1", TRACKER_PASSWORD=PASSWORD)
        process = subprocess.Popen(
            archiver_command(redis_url, directory, *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        archiver = RunningTracker(process, 0, PASSWORD, directory)
        started.append(archiver)
        threading.Thread(target=_read_output, args=(archiver,), daemon=True).start()
        match = _LISTENING.search(archiver.wait_for_output(_LISTENING.pattern, timeout=4 * UNIT))
        assert match is not None
        archiver.port = int(match.group(1))
        return archiver

    yield start
    for archiver in started:
        archiver.kill()
