"""Starting the tracker as users do: the password sources and the refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from peers import plain_member

from chat_testing import UNIT

pytestmark = pytest.mark.anyio


def run_tracker(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    return subprocess.run(
        [sys.executable, "-m", "chat_tracker", "--port", "0", "--data-dir", str(tmp_path), *args],
        env={**clean, **env}, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=UNIT,
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
