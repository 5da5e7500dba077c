"""`docker compose run client` in a real terminal (tmux), typed into as a person would."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from support.compose import PASSWORD, ROOT, Compose, get_json
from support.timing import UNIT

pytestmark = [pytest.mark.docker, pytest.mark.tmux, pytest.mark.timeout(int(120 * UNIT))]


class Terminal:
    """A 120x40 tmux pane on a tmux server of its own (the user's tmux is never touched)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"groupchat-test-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.tmux("new-session", "-d", "-s", "chat", "-x", "120", "-y", "40", "bash --norc --noprofile")
        self.tmux("set-option", "-t", "chat", "remain-on-exit", "on")

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=UNIT,
            check=True,
        )
        return done.stdout

    def type(self, text: str) -> None:
        """Type ``text`` literally, then Enter."""
        self.tmux("send-keys", "-t", "chat", "-l", text)
        self.tmux("send-keys", "-t", "chat", "Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "chat", "-S", "-200")

    def wait_for(self, pattern: str, timeout: float = 6 * UNIT) -> re.Match[str]:
        """Poll the screen until the regex ``pattern`` shows; AssertionError with the screen after the timeout."""
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, screen := self.screen(), re.MULTILINE)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} did not appear within {timeout:g} s; the screen:\n{screen}")
            time.sleep(0.1)  # polling interval, not synchronisation: we wait for the text itself
        return found

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=UNIT, check=False)


@pytest.fixture
def terminal(compose: Compose) -> Iterator[Terminal]:
    term = Terminal(compose.env)
    try:
        yield term
    finally:
        print(f"--- the terminal at the end ---\n{term.screen()}")
        term.close()


def test_interactive_client_in_a_terminal(compose: Compose, terminal: Terminal) -> None:
    """Type the password and a name, chat with a scripted member, see its message, exit."""
    compose.up_tracker()
    command = shlex.join(compose.argv("run", "--rm", "client"))
    terminal.type(f"{command}; echo client exited with status $?")

    terminal.wait_for("^Enter server password")
    terminal.type(PASSWORD)
    terminal.wait_for("^Enter your username")
    terminal.type("delta")
    terminal.wait_for(r"Online now \(1\): delta")

    beta = compose.client("beta")
    try:
        beta.expect("its welcome", lambda e: e["type"] == "welcome")
        terminal.wait_for(r"\* beta joined")
        beta.say("hello from a container")
        terminal.wait_for("beta: hello from a container")

        terminal.type("hi from a real terminal")
        beta.expect("delta's message", lambda e: e["type"] == "message" and e["name"] == "delta")
        status, members = get_json(compose.http_base() + "/members", PASSWORD)
        assert status == 200 and sorted(m["name"] for m in members["members"]) == ["beta", "delta"]

        terminal.type("exit")
        assert terminal.wait_for(r"^client exited with status (\d+)").group(1) == "0"
        left = beta.expect("delta leaving", lambda e: e["type"] == "left" and e["name"] == "delta")
        assert left["reason"] == "exit"
        beta.close_input()
        assert beta.finish() == 0, beta.stderr
    finally:
        beta.kill()
    assert PASSWORD not in terminal.screen(), "the password was echoed"
    assert beta.events[-1]["type"] == "bye"
    message = next(e for e in beta.events if e["type"] == "message" and e["name"] == "delta")
    assert message["text"] == "hi from a real terminal"
