"""Exit status 4 end to end: the real tracker closes a real ``chat-client`` for a cause of the client's own.

The client paces itself below the announced rate, so it cannot be made to flood; the
two honest ways left are a frame over ``--max-frame-bytes`` (close 1009) and a consumer
that stops reading the client's output (close 4007, too slow).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.client import connect

from client_conftest import PASSWORD, TIMEOUT_UNIT, Client

StartClient = Callable[..., Client]
BIG = 60_000  # characters per message in the slow-consumer test: few frames fill the buffers


def client_environment() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("TRACKER_URL", "CHAT_USERNAME")}
    environment["TRACKER_PASSWORD"] = PASSWORD
    return environment


@pytest.fixture
def unread_client() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``chat-client`` with pipes that nobody reads until the test says so; killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            ["chat-client", *args], env=client_environment(), text=True, encoding="utf-8",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def log_kinds(tracker: Any) -> list[tuple[str, str, str]]:
    return [tuple((line.split(" ", 4) + [""])[2:5]) for line in tracker.log_lines()]  # type: ignore[misc]


def test_frame_over_the_size_limit_exits_4(start_tracker: Any, clients: StartClient) -> None:
    """A line bigger than --max-frame-bytes: the tracker closes with 1009, the client says so and exits 4."""
    tracker = start_tracker("--max-frame-bytes", "512")
    alpha = clients("--json", "--username", "alpha", tracker.url)
    welcome = alpha.event("welcome", name="alpha")
    assert welcome["limits"]["max_frame_bytes"] == 512
    alpha.send("small first")
    alpha.event("message", text="small first")
    alpha.send("x" * 1000)
    status, _, stderr = alpha.finish()
    assert status == 4
    assert stderr == "chat-client: the tracker closed the session: frame over the size limit (close code 1009)\n"
    assert log_kinds(tracker)[-1] == ("leave", "alpha", "closed")


def test_slow_consumer_exits_4(start_tracker: Any, unread_client: Callable[..., subprocess.Popen[str]]) -> None:
    """Nobody reads the client's stdout while the room is busy: close 4007, one line on stderr, exit 4."""
    tracker = start_tracker("--queue-size", "1", "--max-message-chars", str(BIG), "--rate", "10000", "--burst", "10000")
    with connect(tracker.url, open_timeout=TIMEOUT_UNIT, close_timeout=1, max_size=None) as talker:
        # A plain-text member: it gets no echo of its own messages, so it never falls behind itself.
        assert talker.recv(TIMEOUT_UNIT) == "Enter server password..."
        talker.send(PASSWORD)
        for _ in range(2):
            talker.recv(TIMEOUT_UNIT)
        talker.send("talker")
        for _ in range(4):
            talker.recv(TIMEOUT_UNIT)
        slow = unread_client("--json", "--username", "slowpoke", tracker.url)
        assert talker.recv(2 * TIMEOUT_UNIT) == "* slowpoke joined the chat"
        deadline = time.monotonic() + 6 * TIMEOUT_UNIT
        sent = 0
        while not any("slowpoke removed: too slow" in line for line in tracker.output):
            assert time.monotonic() < deadline and sent < 2000, f"still not dropped after {sent} messages"
            talker.send(f"{sent} ".ljust(BIG, "z"))  # stdout is a full pipe: the client's loop blocks, then its socket fills
            sent += 1
        # Read now: within the tracker's 2 s grace the client drains its socket and gets the 4007 close.
        _, stderr = slow.communicate(timeout=4 * TIMEOUT_UNIT)
    assert slow.returncode == 4, stderr
    assert stderr == (
        "chat-client: the tracker closed the session: did not read fast enough; outgoing queue overflowed "
        "(close code 4007)\n"
    )
    assert ("leave", "slowpoke", "slow") in log_kinds(tracker)
