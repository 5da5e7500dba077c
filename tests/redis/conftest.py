"""Fixtures over a real redis-server (never a fake) and a real archiver process.

``redis_server`` starts ``redis-server`` in the test's directory; missing, it skips,
except in CI (any ``CI`` value: ``support.environment.in_ci``), where it fails: ``.ci/run`` installs it.
``start_archiver`` starts ``python -m chat_tracker.runtime.archive_cli`` on a free port and
waits for its "Listening on" line; every one started is killed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.archiver import StartArchiver, launch_archiver
from support.redis_server import RedisServer, running_redis
from support.tracker import RunningTracker


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running redis-server with AOF and ``appendfsync always``, in ``tmp_path/redis``."""
    yield from running_redis(tmp_path / "redis")


@pytest.fixture
def start_archiver(tmp_path: Path) -> Iterator[StartArchiver]:
    """Factory: ``start_archiver(redis_url, *flags, data_dir=...)``; every archiver is killed at the end."""
    started: list[RunningTracker] = []

    def start(redis_url: str, *args: str, data_dir: Path | None = None) -> RunningTracker:
        archiver = launch_archiver(redis_url, data_dir or tmp_path / "data", *args)
        started.append(archiver)
        return archiver

    yield start
    for archiver in started:
        archiver.kill()
