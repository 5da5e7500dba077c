"""A real terminal for the interactive client: one tmux pane on a private tmux server.

``Terminal`` types with ``tmux send-keys`` and reads what ``tmux capture-pane`` shows, polling
until the expected text appears or a deadline passes; ``client_command`` is the shell command
that starts ``chat-client`` in it. tests/client/conftest.py's ``terminal`` fixture makes one.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from support.environment import program, require
from support.timing import UNIT

STATUS = re.compile(r"\[exit status (\d+)\]")


class Terminal:
    """One tmux pane, 120x40, on a private tmux server."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args], check=True, capture_output=True, text=True
        ).stdout

    def start(self, command: str) -> None:
        # The shell keeps the pane open after the client exits, showing its status.
        script = f'{command}; echo "[exit status $?]"; exec sleep 3600'
        self.tmux("new-session", "-d", "-s", "chat", "-x", "120", "-y", "40", "sh", "-c", script)

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "chat", *keys)

    def type_text(self, text: str) -> None:
        self.tmux("send-keys", "-t", "chat", "-l", text)  # -l: literally, no key names

    def screen(self, *, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "chat")

    def wait_for(self, text: str | re.Pattern[str], timeout: float = 2 * UNIT) -> str:
        """Poll the screen until ``text`` shows; return the screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if (text in screen) if isinstance(text, str) else text.search(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen:\n{screen}")
            time.sleep(0.05)  # polling interval, not synchronisation

    def exit_status(self, timeout: float = 2 * UNIT) -> int:
        match = STATUS.search(self.wait_for(STATUS, timeout))
        assert match is not None
        return int(match.group(1))

    def prompt_line(self) -> str:
        """The last non-empty line: where the input is."""
        return [line for line in self.screen().splitlines() if line.strip()][-1]


def client_command(url: str, **env: str) -> str:
    """chat-client in a clean environment (no password or username given), plus ``env``."""
    unset = "-u TRACKER_PASSWORD -u CHAT_USERNAME -u TRACKER_URL -u NO_COLOR"
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    return f"env {unset} {assignments} {shlex.quote(program('chat-client'))} {shlex.quote(url)}"


def prompt(name: str) -> re.Pattern[str]:
    """The input prompt (tmux drops trailing spaces from captured lines)."""
    return re.compile(f"(?m)^{re.escape(name)}>")


def require_tmux() -> None:
    """Skip without tmux, except in CI, where a missing tmux must fail the run."""
    require(shutil.which("tmux") is not None, "tmux is not installed")
