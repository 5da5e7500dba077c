"""Real ``chat-client`` processes driven through pipes: scripted members of a real or fake tracker.

``run_client`` starts the venv's ``chat-client`` (never one found on PATH) with the tests'
password unless told otherwise; tests/client/conftest.py's ``clients`` fixture starts them
and ends every one. Waiting is always "read the expected output until a deadline".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from support.environment import program
from support.process import LineReader, Process
from support.timing import UNIT
from support.tracker import PASSWORD


@dataclass
class Client:
    """A ``chat-client`` process: stdin to type into, stdout and stderr read as lines."""

    process: Process

    @property
    def stdout(self) -> LineReader:
        return self.process.out

    @property
    def stderr(self) -> LineReader:
        return self.process.err

    def send(self, *lines: str) -> None:
        self.process.send(*lines)

    def close_stdin(self) -> None:
        self.process.close_stdin()

    def event(self, kind: str, timeout: float = 2 * UNIT, **fields: Any) -> dict[str, Any]:
        """Wait for a ``--json`` event of type ``kind`` whose fields match."""

        def matches(line: str) -> bool:
            body = json.loads(line)
            return bool(body.get("type") == kind and all(body.get(k) == v for k, v in fields.items()))

        return dict(json.loads(self.stdout.wait_for(matches, timeout)))

    def finish(self, timeout: float = 4 * UNIT) -> tuple[int, list[str], str]:
        """Wait for the exit: status, every stdout line, stderr."""
        lines = self.stdout.rest(timeout)
        status = self.process.wait(timeout=timeout)
        return status, lines, self.stderr.text(timeout)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.lines]


StartClient = Callable[..., Client]  # tests/client/conftest.py's clients fixture


def run_client(*args: str, password: str | None = PASSWORD, env: dict[str, str] | None = None) -> Client:
    """Start ``chat-client`` with pipes for stdin, stdout and stderr."""
    environment = {key: value for key, value in os.environ.items() if key not in ("TRACKER_URL", "CHAT_USERNAME")}
    environment.pop("TRACKER_PASSWORD", None)
    if password is not None:
        environment["TRACKER_PASSWORD"] = password
    environment.update(env or {})
    return Client(Process([program("chat-client"), *args], stdin=True, env=environment))
