"""Drivers for real ``chat-client`` processes (the real tracker comes from tests/conftest.py).

Nothing is faked: clients are ``chat-client`` processes fed through pipes (or a
tmux pane). Waiting is always "poll for the expected output until a deadline",
never a bare sleep. Deadlines are multiples of TIMEOUT_UNIT, scaled by
TEST_TIMEOUT_SCALE on slow machines, as in tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import pytest

from chat_testing import in_ci, program

if TYPE_CHECKING:  # imported when used: tests/test_environment.py loads this file from elsewhere
    from fake_tracker import FakeTracker, Handler

# Test modules import these drivers as ``client_conftest``: the bare name ``conftest`` is
# whichever directory's conftest pytest loaded last, which is not this one when several test
# directories are given on one command line (``pytest tests/client tests/reliability/...``).
sys.modules.setdefault("client_conftest", sys.modules[__name__])

TIMEOUT_UNIT = 5.0 * float(os.environ.get("TEST_TIMEOUT_SCALE", "1"))
PASSWORD = "alphonso"  # the password of tests/conftest.py's tracker


class LineReader:
    """Collects a stream's lines in a thread, so a test can wait for one with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def next_line(self, deadline: float) -> str | None:
        """The next line; None at end of stream. Raises TimeoutError past the deadline."""
        try:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no new line; so far: {self.lines[-20:]}") from None
        if line is not None:
            self.lines.append(line)
        return line

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """Read until a line matches ``predicate``."""
        deadline = time.monotonic() + timeout
        while (line := self.next_line(deadline)) is not None:
            if predicate(line):
                return line
        raise AssertionError(f"stream ended without the expected line; got: {self.lines[-20:]}")

    def rest(self, timeout: float) -> list[str]:
        """Every line until the end of the stream."""
        deadline = time.monotonic() + timeout
        while self.next_line(deadline) is not None:
            pass
        return self.lines


@dataclass
class Client:
    """A ``chat-client`` process driven through its pipes."""

    process: subprocess.Popen[str]
    stdout: LineReader
    stderr_lines: list[str] = field(default_factory=list)

    def send(self, *lines: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(line + "\n" for line in lines))
        self.process.stdin.flush()

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def event(self, kind: str, timeout: float = 2 * TIMEOUT_UNIT, **fields: Any) -> dict[str, Any]:
        """Wait for a ``--json`` event of type ``kind`` whose fields match."""

        def matches(line: str) -> bool:
            body = json.loads(line)
            return bool(body.get("type") == kind and all(body.get(k) == v for k, v in fields.items()))

        return dict(json.loads(self.stdout.wait_for(matches, timeout)))

    def finish(self, timeout: float = 4 * TIMEOUT_UNIT) -> tuple[int, list[str], str]:
        """Wait for the exit: status, every stdout line, stderr."""
        lines = self.stdout.rest(timeout)
        status = self.process.wait(timeout=timeout)
        assert self.process.stderr is not None
        return status, lines, self.process.stderr.read()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.lines]


def run_client(*args: str, password: str | None = PASSWORD, env: dict[str, str] | None = None) -> Client:
    """Start ``chat-client`` with pipes for stdin, stdout and stderr."""
    environment = {key: value for key, value in os.environ.items() if key not in ("TRACKER_URL", "CHAT_USERNAME")}
    environment.pop("TRACKER_PASSWORD", None)
    if password is not None:
        environment["TRACKER_PASSWORD"] = password
    environment.update(env or {})
    process = subprocess.Popen(
        [program("chat-client"), *args],
        env=environment,
        text=True,
        encoding="utf-8",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    return Client(process, LineReader(process.stdout))


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    """Start chat-client processes; any still running at the end is killed."""
    started: list[Client] = []

    def factory(*args: str, **kwargs: Any) -> Client:
        client = run_client(*args, **kwargs)
        started.append(client)
        return client

    yield factory
    for client in started:
        if client.process.poll() is None:
            client.process.kill()
        client.process.wait()
        for stream in (client.process.stdin, client.process.stdout, client.process.stderr):
            if stream is not None:
                stream.close()


def tmux_required() -> None:
    """Skip without tmux, except in CI, where a missing tmux must fail the run."""
    if shutil.which("tmux") is None:
        if in_ci():
            pytest.fail("tmux is not installed, and this is CI: the interactive test must run")
        pytest.skip("tmux is not installed")


@pytest.fixture
def fake() -> Iterator[Callable[[list[Handler]], FakeTracker]]:
    """Start fake trackers (fake_tracker.py), each with its handlers; all are shut down at the end."""
    from fake_tracker import FakeTracker

    started: list[FakeTracker] = []

    def start(handlers: list[Handler]) -> FakeTracker:
        tracker = FakeTracker(handlers)
        started.append(tracker)
        return tracker

    yield start
    for tracker in started:
        tracker.server.shutdown()
