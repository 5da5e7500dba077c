"""The whole suite's fixtures and hooks: real trackers, the timeout unit, and no skips in CI.

``tracker`` starts ``python -m chat_tracker`` on a free port with a fresh data directory
and waits for its "Listening on" line; ``start_tracker`` starts more, with extra flags.
Every wait is a multiple of ``support.timing.UNIT``, and pytest-timeout's default budget is
scaled with it (``support.timing``). In CI any skipped test fails the run
(``support.no_skips_in_ci``). A run of every figure-producing test fails when the figures it
counted are not docs/reliability.md's (``support.figures_check``). The helpers themselves are in
tests/support, imported as ``from support.<module> import <name>``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import figures_check, no_skips_in_ci
from support.timing import pytest_collection_modifyitems  # pytest-timeout's budget in units
from support.tracker import RunningTracker, StartTracker, launch_tracker

__all__ = ["pytest_collection_modifyitems"]


def pytest_configure(config: pytest.Config) -> None:
    no_skips_in_ci.pytest_configure(config)  # in CI any skip fails the run
    figures_check.pytest_configure(config)  # a whole campaign's figures must be the docs'


@pytest.fixture(autouse=True)
def private_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own ``$XDG_STATE_HOME``: the device tokens chat-client keeps stay in the test, not in ~."""
    home = tmp_path / "state-home"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


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
