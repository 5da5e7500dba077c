"""Fixtures of the client's tests: real ``chat-client`` processes, fake trackers, a tmux terminal.

Nothing is faked on the client's side: clients are ``chat-client`` processes fed through pipes
(``support.clients``) or typed into in a tmux pane (``support.terminal``). The real tracker
comes from tests/conftest.py, the scripted fake from ``support.fake_tracker``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.clients import Client, StartClient, run_client
from support.fake_tracker import FakeTracker, Handler
from support.terminal import Terminal, require_tmux


@pytest.fixture
def clients() -> Iterator[StartClient]:
    """Start chat-client processes; any still running at the end is killed."""
    started: list[Client] = []

    def factory(*args: str, **kwargs: Any) -> Client:
        client = run_client(*args, **kwargs)
        started.append(client)
        return client

    yield factory
    for client in started:
        client.process.end()


@pytest.fixture
def fake() -> Iterator[Callable[[list[Handler]], FakeTracker]]:
    """Start fake trackers (support.fake_tracker), each with its handlers; all are shut down at the end."""
    started: list[FakeTracker] = []

    def start(handlers: list[Handler]) -> FakeTracker:
        tracker = FakeTracker(handlers)
        started.append(tracker)
        return tracker

    yield start
    for tracker in started:
        tracker.server.shutdown()


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    """A tmux pane on a private tmux server, killed at the end; without tmux, skipped (failed in CI)."""
    require_tmux()
    term = Terminal(tmp_path / "tmux.sock")
    yield term
    subprocess.run(["tmux", "-S", str(term.socket), "kill-server"], capture_output=True, check=False)
