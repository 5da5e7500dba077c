"""A real tracker process on 127.0.0.1, started the way users start it.

``launch_tracker`` starts ``python -m chat_tracker`` on a free port with a data directory
and returns once it printed "Listening on"; tests/conftest.py's ``start_tracker`` and
``tracker`` fixtures stop what they started. ``start_server`` does the same for any command
that prints that line (the archiver, a replica in a network namespace).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from support.process import Process
from support.timing import UNIT

PASSWORD = "alphonso"
LISTENING = re.compile(r"Listening on (https?)://[^\s:/]+:(\d+)")


@dataclass
class RunningTracker:
    """A tracker process and what a test needs to talk to it."""

    process: Process
    port: int
    password: str
    data_dir: Path
    tls: bool = False  # started with --tls-cert/--tls-key: https and wss

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def output(self) -> list[str]:
        """Every line the tracker printed so far (stdout and stderr)."""
        return self.process.out.everything()

    @property
    def log_path(self) -> Path:
        return self.data_dir / "chat.log"

    def log_lines(self) -> list[str]:
        """chat.log's lines (without newlines)."""
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(encoding="utf-8").splitlines()

    def wait_for_output(self, pattern: str, timeout: float = UNIT) -> str:
        """Wait for a line of the tracker's output matching ``pattern`` (printed before the call or after)."""
        regex = re.compile(pattern)
        line = self.process.out.find(lambda seen: regex.search(seen) is not None, timeout)
        if line is None:
            raise AssertionError(f"tracker never printed {pattern!r}; output:\n" + "\n".join(self.output))
        return line

    def stop(self, sig: int = signal.SIGINT, timeout: float = 2 * UNIT) -> int:
        """Send ``sig`` (by default SIGINT: the chat is over; SIGTERM means a restart) and wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        self.process.end()


Server = TypeVar("Server", bound=RunningTracker)
StartTracker = Callable[..., RunningTracker]  # tests/conftest.py's start_tracker fixture

CROWD_FROM_ONE_ADDRESS = {
    "TRACKER_MAX_CONNECTIONS_PER_ADDRESS": "100000",
    "TRACKER_MAX_UNAUTHENTICATED_PER_ADDRESS": "100000",
    "TRACKER_JOINS_PER_MINUTE": "1000000",
}
# Sets RLIMIT_NOFILE, then runs the tracker as ``python -m chat_tracker`` would (a preexec_fn
# would do it in the forked child, which is unsafe while the test's reader threads run).
_WITH_NOFILE = (
    "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv.pop(1)), "
    "int(sys.argv.pop(1)))); runpy.run_module('chat_tracker', run_name='__main__', alter_sys=True)"
)


def tracker_command(data_dir: Path, nofile: tuple[int, int] | None = None) -> list[str]:
    """The command line of a tracker on 127.0.0.1, a free port, ``data_dir``; optionally with ``nofile``."""
    start = [sys.executable, "-m", "chat_tracker"]
    if nofile is not None:
        start = [sys.executable, "-c", _WITH_NOFILE, str(nofile[0]), str(nofile[1])]
    return [*start, "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)]


def tracker_env(password: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment without any TRACKER_ setting of its own, unbuffered, with ``password`` and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    env["PYTHONUNBUFFERED"] = "1"
    if password is not None:
        env["TRACKER_PASSWORD"] = password
    env.update(extra or {})
    return env


def start_server(
    command: Sequence[str], env: Mapping[str, str], password: str, data_dir: Path, kind: type[Server]
) -> Server:
    """Start ``command`` (its stderr into its stdout); return once it printed "Listening on", or kill it and fail."""
    server = kind(Process(command, stderr="stdout", env=env), 0, password, data_dir)
    try:
        match = LISTENING.search(server.wait_for_output(LISTENING.pattern, timeout=4 * UNIT))
    except AssertionError:
        server.kill()
        raise
    assert match is not None
    server.tls, server.port = match.group(1) == "https", int(match.group(2))
    return server


def launch_tracker(
    data_dir: Path,
    *args: str,
    password: str | None = PASSWORD,
    env: dict[str, str] | None = None,
    nofile: tuple[int, int] | None = None,
    address_limits: bool = False,
    resume_grace: float = 0.0,
) -> RunningTracker:
    """Start a tracker on 127.0.0.1 and a free port; return once it listens.

    ``nofile``: the (soft, hard) RLIMIT_NOFILE the tracker starts with. Tests run their
    crowds (hundreds of members, name races, idle sockets) from 127.0.0.1, which the
    per-address limits exist to refuse, so those limits are lifted (through the
    environment: flags still win) unless ``address_limits`` asks for the defaults.
    ``resume_grace`` is 0 unless asked for: a lost member leaves at once, as the tests
    of everything but resuming expect (the product's default is 60 s).
    """
    settings = {} if address_limits else dict(CROWD_FROM_ONE_ADDRESS)
    settings["TRACKER_RESUME_GRACE"] = f"{resume_grace:g}"
    full_env = tracker_env(password, settings | (env or {}))
    command = tracker_command(data_dir, nofile) + list(args)
    return start_server(command, full_env, password or "", data_dir, RunningTracker)
