"""chat-client and registered names: /register asked twice and hidden, the passphrase asked when the name wants it
(a terminal), or given by file or environment (piped); against a real tracker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.clients import StartClient
from support.terminal import Terminal, client_command, prompt
from support.timing import UNIT

PASSPHRASE = "correct horse battery"


def add_account(tracker: Any, name: str) -> None:
    """The operator's way: ``chat-tracker accounts add`` against the running tracker's data dir."""
    command = [sys.executable, "-m", "chat_tracker", "accounts", "add", name, "--data-dir", str(tracker.data_dir)]
    env = {**os.environ, "CHAT_PASSPHRASE": PASSPHRASE}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=4 * UNIT, check=False)
    assert done.returncode == 0, done.stderr


def enter(terminal: Terminal, tracker: Any, name: str, **env: str) -> None:
    terminal.start(client_command(tracker.url, **env))
    terminal.wait_for("Enter server password:")
    terminal.type_text(tracker.password)
    terminal.type("Enter")
    terminal.wait_for("Enter your username:")
    terminal.type_text(name)
    terminal.type("Enter")


@pytest.mark.tmux
def test_register_then_sign_in_at_a_terminal(terminal: Terminal, tracker: Any, tmp_path: Path) -> None:
    enter(terminal, tracker, "alpha")
    terminal.wait_for(prompt("alpha"))
    terminal.type_text("/register")
    terminal.type("Enter")
    terminal.wait_for("New passphrase:")
    terminal.type_text(PASSPHRASE)
    terminal.type("Enter")
    terminal.wait_for("The same passphrase again:")
    terminal.type_text(PASSPHRASE)
    terminal.type("Enter")
    terminal.wait_for("alpha is registered: nobody else can use it")
    assert PASSPHRASE not in terminal.screen()  # typed hidden
    terminal.type_text("exit")
    terminal.type("Enter")
    assert terminal.exit_status() == 0

    again = Terminal(tmp_path / "again.sock")  # a second session, in a terminal of its own
    try:
        # On another computer: this one kept the token /register gave it, and would sign in with it.
        enter(again, tracker, "ALPHA", XDG_STATE_HOME=str(tmp_path / "elsewhere"))  # a lookalike: the same account
        again.wait_for("This name is registered: enter its passphrase")
        again.wait_for(re.compile(r"^Passphrase:\s*$", re.MULTILINE))  # the hidden prompt is up: typing is not echoed
        again.type_text("not the passphrase")
        again.type("Enter")
        again.wait_for(re.compile(r"Wrong passphrase\.\n(?:.*\n)*?Passphrase:\s*$", re.MULTILINE))
        again.type_text(PASSPHRASE)
        again.type("Enter")
        again.wait_for(prompt("alpha"))
        screen = again.screen()
    finally:
        subprocess.run(["tmux", "-S", str(again.socket), "kill-server"], capture_output=True, check=False)
    assert PASSPHRASE not in screen and "not the passphrase" not in screen
    assert not any(PASSPHRASE in line for line in tracker.log_lines())


def test_a_piped_client_signs_in_from_the_environment_or_a_file(
    tracker: Any, clients: StartClient, tmp_path: Path
) -> None:
    add_account(tracker, "beta")
    from_env = clients("--json", "--username", "beta", tracker.url, env={"CHAT_PASSPHRASE": PASSPHRASE})
    assert from_env.event("welcome", name="beta")["registered"] is True
    from_env.close_stdin()
    assert from_env.finish()[0] == 0
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n", encoding="utf-8")
    from_file = clients("--json", "--username", "Beta", "--passphrase-file", str(secret), tracker.url)
    assert from_file.event("welcome", name="beta")["registered"] is True
    from_file.close_stdin()
    assert from_file.finish()[0] == 0


def test_a_piped_client_without_the_passphrase_exits_saying_how_to_give_it(tracker: Any, clients: StartClient) -> None:
    add_account(tracker, "gamma")
    client = clients("--username", "gamma", tracker.url)
    status, _, stderr = client.finish()
    assert status == 1
    assert "gamma" in stderr and "--passphrase-file PATH or $CHAT_PASSPHRASE" in stderr, stderr
