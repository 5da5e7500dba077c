"""Exit status 4 end to end: the real tracker closes a real ``chat-client`` for a cause of the client's own.

The client paces itself below the announced rate, so it cannot be made to flood, and it
refuses to send a line whose frame would exceed ``--max-frame-bytes`` (close 1009); the
honest way left is a consumer that stops reading the client's output (close 4007, too slow).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.client import connect

from support.clients import StartClient
from support.environment import program
from support.timing import UNIT
from support.tracker import PASSWORD

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
            [program("chat-client"), *args],
            env=client_environment(),
            text=True,
            encoding="utf-8",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def log_kinds(tracker: Any) -> list[tuple[str, str, str]]:
    return [tuple([*line.split(" ", 4), ""][2:5]) for line in tracker.log_lines()]


def test_line_over_the_frame_limit_is_refused_by_the_client(start_tracker: Any, clients: StartClient) -> None:
    """A piped line bigger than --max-frame-bytes is not sent (it would cost the session): one line, then on."""
    tracker = start_tracker("--max-frame-bytes", "512")
    alpha = clients("--json", "--username", "alpha", tracker.url)
    welcome = alpha.event("welcome")
    assert welcome["limits"]["max_frame_bytes"] == 512
    alpha.send("small first", "x" * 1000, "small after")
    alpha.event("message", text="small first")
    alpha.event("message", text="small after")
    alpha.close_stdin()
    status, _, stderr = alpha.finish()
    assert status == 0
    assert stderr.startswith("chat-client: line not sent: ") and "over the tracker's limit of 512" in stderr
    assert [text for kind, _, text in log_kinds(tracker) if kind == "msg"] == ["small first", "small after"]


def test_slow_consumer_exits_4(start_tracker: Any, unread_client: Callable[..., subprocess.Popen[str]]) -> None:
    """Nobody reads the client's stdout while the room is busy: close 4007, one line on stderr, exit 4."""
    tracker = start_tracker("--queue-size", "1", "--max-message-chars", str(BIG), "--rate", "10000", "--burst", "10000")
    with connect(tracker.url, open_timeout=UNIT, close_timeout=UNIT / 5, max_size=None) as talker:
        # A plain-text member: it gets no echo of its own messages, so it never falls behind itself.
        assert talker.recv(UNIT) == "Enter server password..."
        talker.send(PASSWORD)
        for _ in range(2):
            talker.recv(UNIT)
        talker.send("talker")
        for _ in range(4):
            talker.recv(UNIT)
        slow = unread_client("--json", "--username", "slowpoke", tracker.url)
        assert talker.recv(2 * UNIT) == "* slowpoke joined the chat"
        deadline = time.monotonic() + 6 * UNIT
        sent = 0
        while not any("slowpoke removed: too slow" in line for line in tracker.output):
            assert time.monotonic() < deadline and sent < 2000, f"still not dropped after {sent} messages"
            talker.send(
                f"{sent} ".ljust(BIG, "z")
            )  # stdout is a full pipe: the client's loop blocks, then its socket fills
            sent += 1
        # Read now: within the tracker's 2 s grace the client drains its socket and gets the 4007 close.
        _, stderr = slow.communicate(timeout=4 * UNIT)
    assert slow.returncode == 4, stderr
    assert stderr == (
        "chat-client: the tracker closed the session: did not read fast enough; outgoing queue overflowed "
        "(close code 4007)\n"
    )
    assert ("leave", "slowpoke", "slow") in log_kinds(tracker)
