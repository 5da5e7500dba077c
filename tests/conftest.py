"""Shared fixtures: a real tracker process on 127.0.0.1, started the way users start it.

``tracker`` starts ``python -m chat_tracker`` on a free port with a fresh data
directory and waits for its "Listening on" line; ``start_tracker`` starts more, with
extra flags. Timeouts are multiples of ``chat_testing.UNIT``. In CI any skipped test fails the
run (no_skips_in_ci.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chat_testing import PASSWORD, UNIT, RunningTracker, launch_tracker
from no_skips_in_ci import pytest_configure  # in CI any skip fails the run

__all__ = ["PASSWORD", "UNIT", "RunningTracker", "pytest_configure"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


StartTracker = Callable[..., RunningTracker]


@pytest.fixture
def start_tracker(tmp_path: Path) -> Iterator[StartTracker]:
    """Factory: ``start_tracker(*flags, password=..., env=..., data_dir=...)``; all are stopped at the end."""
    started: list[RunningTracker] = []

    def start(*args: str, data_dir: Path | None = None, **kwargs: object) -> RunningTracker:
        directory = data_dir or tmp_path / f"data{len(started)}"
        tracker = launch_tracker(directory, *args, **kwargs)  # type: ignore[arg-type]
        started.append(tracker)
        return tracker

    yield start
    for tracker in started:
        try:
            tracker.stop()
        except subprocess.TimeoutExpired:
            tracker.kill()


@pytest.fixture
def tracker(start_tracker: StartTracker) -> RunningTracker:
    """A running tracker with default settings and password ``alphonso``."""
    return start_tracker()
