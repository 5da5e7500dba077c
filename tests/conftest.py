"""The whole suite's fixtures and hooks: real trackers, the timeout unit, and no skips in CI.

``tracker`` starts ``python -m chat_tracker`` on a free port with a fresh data directory
and waits for its "Listening on" line; ``start_tracker`` starts more, with extra flags.
Every wait is a multiple of ``support.timing.UNIT``, and pytest-timeout's default budget is
scaled with it (``support.timing``). In CI any skipped test fails the run
(``support.no_skips_in_ci``). The helpers themselves are in tests/support, imported as
``from support.<module> import <name>``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.no_skips_in_ci import pytest_configure  # in CI any skip fails the run
from support.timing import pytest_collection_modifyitems  # pytest-timeout's budget in units
from support.tracker import RunningTracker, StartTracker, launch_tracker

__all__ = ["pytest_collection_modifyitems", "pytest_configure"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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
