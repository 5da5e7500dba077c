"""Starting the tracker as users do: the password sources and the refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.peers import plain_member
from support.terminal import require_tmux
from support.timing import UNIT

pytestmark = pytest.mark.anyio


def run_tracker(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    return subprocess.run(
        [sys.executable, "-m", "chat_tracker", "--port", "0", "--data-dir", str(tmp_path), *args],
        env={**clean, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=UNIT,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no server password: set TRACKER_PASSWORD or TRACKER_PASSWORD_FILE"),
        ({"TRACKER_PASSWORD": ""}, "the server password from TRACKER_PASSWORD is empty"),
        ({"TRACKER_PASSWORD_FILE": "/nonexistent/secret"}, "cannot read TRACKER_PASSWORD_FILE"),
        ({"TRACKER_PASSWORD": "x", "TRACKER_PORT": "http"}, "error"),
    ],
    ids=["none", "empty", "missing-file", "bad-env-port"],
)
def test_refuses_to_start_without_a_usable_password(tmp_path: Path, env: dict[str, str], message: str) -> None:
    """No password (and no terminal), an empty one, or an unreadable file: one line on stderr, exit 2."""
    result = run_tracker(tmp_path, env)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "chat.log").exists() or "start" not in (tmp_path / "chat.log").read_text()


async def test_password_file_wins_over_the_environment(start_tracker: object, tmp_path: Path) -> None:
    """TRACKER_PASSWORD_FILE (a Docker secret) is used before TRACKER_PASSWORD; its newline is ignored."""
    secret = tmp_path / "secret"
    secret.write_text("from-the-file\n", encoding="utf-8")
    tracker = start_tracker(  # type: ignore[operator]
        password="from-the-env", env={"TRACKER_PASSWORD_FILE": str(secret)}
    )
    async with plain_member(tracker.url, "from-the-file", "alpha"):
        pass
    assert not any("from-the-file" in line or "from-the-env" in line for line in tracker.output)


def test_password_prompt_on_a_terminal(tmp_path: Path) -> None:
    """Started on a terminal without a password, the tracker asks for one (hidden) and then listens."""
    import time

    require_tmux()
    session = f"tracker-prompt-{os.getpid()}"  # also the name of a tmux server of its own
    tracker = f"{sys.executable} -m chat_tracker --host 127.0.0.1 --port 0 --data-dir {tmp_path}"
    # The pane outlives the tracker, so a failure shows what it printed.
    command = f"env -u TRACKER_PASSWORD -u TRACKER_PASSWORD_FILE {tracker}; echo tracker exited $?; sleep 60"

    def screen() -> str:
        return subprocess.run(
            ["tmux", "-L", session, "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
        ).stdout

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 4 * UNIT
        while time.monotonic() < deadline:
            shown = screen()
            if text in shown:
                return shown
            time.sleep(0.1)  # polling the screen for the event, bounded by the deadline
        raise AssertionError(f"never saw {text!r}:\n{screen()}")

    subprocess.run(
        ["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", "150", "-y", "30", command], check=True
    )
    try:
        wait_for("Enter server password to be used for login...")
        subprocess.run(["tmux", "-L", session, "send-keys", "-t", session, "typed-secret", "Enter"], check=True)
        shown = wait_for("Listening on http://127.0.0.1:")
        assert "typed-secret" not in shown  # hidden while typed, never printed
        subprocess.run(["tmux", "-L", session, "send-keys", "-t", session, "C-c"], check=True)
        wait_for("Tracker stopped")
    finally:
        subprocess.run(["tmux", "-L", session, "kill-server"], capture_output=True, check=False)
