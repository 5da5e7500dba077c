"""Test support importable from every test directory (tests/ is on pytest's pythonpath).

A real tracker process on 127.0.0.1, started the way users start it.

``tracker`` starts ``python -m chat_tracker`` on a free port with a fresh data
directory and waits for its "Listening on" line; ``start_tracker`` starts more, with
extra flags. Timeouts are multiples of ``UNIT`` (seconds), scaled by the
TEST_TIMEOUT_SCALE environment variable for slow machines.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

UNIT = 5.0 * float(os.environ.get("TEST_TIMEOUT_SCALE", "1"))
# The environment under test: the interpreter running pytest and the scripts installed beside it.
# Not resolved: a venv's python is a symlink, and its bin/ is where the venv's scripts live.
VENV_BIN = Path(sys.executable).parent
PROGRAMS = ("chat-client", "chat-tracker")
PASSWORD = "alphonso"
_LISTENING = re.compile(r"Listening on (https?)://127\.0\.0\.1:(\d+)")
_CI_OFF = ("", "0", "false", "no")


def in_ci() -> bool:
    """Whether the tests run in CI, where every test must run: a missing tool fails, and
    tests/conftest.py fails the run on any skip. Any CI value counts but empty, 0, false and
    no (case-insensitive): services set ``CI=true``, others ``CI=1``. The one place that reads CI."""
    return os.environ.get("CI", "").strip().lower() not in _CI_OFF


def program(name: str) -> str:
    """The absolute path of the project's program ``name`` in the environment under test.

    Never the bare name: whatever the caller's PATH holds (a global install, an old
    version) must not be what a test starts.
    """
    path = VENV_BIN / name
    if not path.is_file():
        raise AssertionError(f"{name} is not installed in {VENV_BIN}: run scripts/test (it installs the project)")
    return str(path)


@dataclass
class RunningTracker:
    """A tracker process and what a test needs to talk to it."""

    process: subprocess.Popen[str]
    port: int
    password: str
    data_dir: Path
    output: list[str] = field(default_factory=list)
    tls: bool = False  # started with --tls-cert/--tls-key: https and wss
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "chat.log"

    def log_lines(self) -> list[str]:
        """chat.log's lines (without newlines)."""
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(encoding="utf-8").splitlines()

    def wait_for_output(self, pattern: str, timeout: float = UNIT) -> str:
        """Wait for a line of the tracker's stdout matching ``pattern``; return it."""
        regex = re.compile(pattern)
        for seen in self.output:
            if regex.search(seen):
                return seen
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            if regex.search(line):
                return line
        raise AssertionError(f"tracker never printed {pattern!r}; output:\n" + "\n".join(self.output))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 2 * UNIT) -> int:
        """Send ``sig`` (by default SIGINT: the chat is over; SIGTERM means a restart) and wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=UNIT)


def _read_output(tracker: RunningTracker) -> None:
    assert tracker.process.stdout is not None
    for line in tracker.process.stdout:
        tracker.output.append(line.rstrip("\n"))
        tracker._lines.put(line.rstrip("\n"))
    tracker._lines.put(None)


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
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    full_env["PYTHONUNBUFFERED"] = "1"
    if password is not None:
        full_env["TRACKER_PASSWORD"] = password
    if not address_limits:
        full_env.update(CROWD_FROM_ONE_ADDRESS)
    full_env["TRACKER_RESUME_GRACE"] = f"{resume_grace:g}"
    full_env.update(env or {})
    command = tracker_command(data_dir, nofile)
    process = subprocess.Popen(
        command + list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=full_env,
    )
    tracker = RunningTracker(process, 0, password or "", data_dir)
    threading.Thread(target=_read_output, args=(tracker,), daemon=True).start()
    try:
        match = _LISTENING.search(tracker.wait_for_output(_LISTENING.pattern, timeout=4 * UNIT))
    except AssertionError:
        tracker.kill()
        raise
    assert match is not None
    tracker.tls, tracker.port = match.group(1) == "https", int(match.group(2))
    return tracker
