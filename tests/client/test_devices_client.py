"""chat-client as a device of a registered account, on a real tracker: it keeps its token and signs in
with it, two of them are connected at once, and one signs the other out.

alpha's account is registered first (by a JSON bot); chat-client runs in tmux panes, each "computer"
with a state directory of its own (``XDG_STATE_HOME``), or piped. What is checked is what alpha sees:
no passphrase asked the second time, her ``/devices``, the signed-out client's last line and exit
status, and the passphrase asked again on its next run; and what she would find on disk: one token
file, 0600 in a 0700 directory, rewritten by every sign-in, gone once signed out.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.bots import open_bot
from support.clients import StartClient
from support.signin import PASSPHRASE, register
from support.terminal import Terminal, client_command, prompt
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, StartTracker

SIGNED_OUT = "This device was signed out; sign in again with your passphrase"
EXIT_REMOVED = 4  # docs/client.md's "never retried" status


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[list[Terminal]]:
    """tmux panes, one per chat-client run; all killed at the end."""
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        subprocess.run(["tmux", "-S", str(terminal.socket), "kill-server"], capture_output=True, check=False)


def run_at(terminals: list[Terminal], tmp_path: Path, tracker: RunningTracker, state: Path, **env: str) -> Terminal:
    """chat-client as alpha in a new pane, on the computer whose state directory is ``state``."""
    terminal = Terminal(tmp_path / f"run{len(terminals)}.sock")
    terminals.append(terminal)
    environment = {"TRACKER_PASSWORD": PASSWORD, "CHAT_USERNAME": "alpha", "XDG_STATE_HOME": str(state), **env}
    terminal.start(client_command(tracker.url, **environment))
    return terminal


def token_files(state: Path) -> list[Path]:
    return sorted((state / "chat-client").glob("*.json"))


def type_line(terminal: Terminal, line: str) -> None:
    terminal.type_text(line)
    terminal.type("Enter")


def signed_in_with_the_passphrase(
    terminal: Terminal, asked: str = "This name is registered: enter its passphrase"
) -> None:
    terminal.wait_for(asked)
    type_line(terminal, PASSPHRASE)
    terminal.wait_for(prompt("alpha"))


@pytest.mark.tmux
def test_the_second_run_signs_in_with_the_kept_token_and_no_passphrase(
    terminals: list[Terminal], tmp_path: Path, tracker: RunningTracker
) -> None:
    asyncio.run(register(tracker, "alpha"))
    laptop = tmp_path / "laptop"
    first = run_at(terminals, tmp_path, tracker, laptop)
    signed_in_with_the_passphrase(first)
    [kept] = token_files(laptop)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    before = kept.read_text(encoding="utf-8")
    type_line(first, "exit")
    assert first.exit_status() == 0

    second = run_at(terminals, tmp_path, tracker, laptop)
    screen = second.wait_for(prompt("alpha"))
    assert "passphrase" not in screen.lower()  # neither asked for nor refused
    assert "* Hi alpha, you have been added to the server." in screen
    assert token_files(laptop) == [kept] and stat.S_IMODE(kept.stat().st_mode) == 0o600
    after = kept.read_text(encoding="utf-8")
    assert after != before  # the welcome's new token replaced the spent one
    token = json.loads(after)["token"]
    assert token not in second.screen() and token not in "\n".join(tracker.log_lines())


def test_two_clients_of_one_account_both_see_another_members_message(
    tracker: RunningTracker, clients: StartClient, tmp_path: Path
) -> None:
    asyncio.run(register(tracker, "alpha"))
    phones = []
    for place in ("laptop", "phone"):
        env = {"CHAT_PASSPHRASE": PASSPHRASE, "XDG_STATE_HOME": str(tmp_path / place)}
        phone = clients("--json", "--username", "alpha", tracker.url, env=env)
        welcome = phone.event("welcome", name="alpha")
        assert welcome["registered"] is True and welcome["device"]
        assert "device_token" not in welcome  # kept in its file, never printed
        phones.append(phone)

    async def bob_says() -> None:
        bob = await open_bot(tracker.url, PASSWORD, "bob")
        try:
            await bob.say("hello both of you")
            await bob.expect("message", 2 * UNIT)
        finally:
            await bob.ws.close()

    asyncio.run(bob_says())
    for phone in phones:
        assert phone.event("message", name="bob")["text"] == "hello both of you"
        phone.close_stdin()
        assert phone.finish()[0] == 0


DEVICE_LINE = re.compile(r"^\s+(\S+)\s+chat-client on .+\s+last seen [\d:]+(\s+\(this device\))?\s*$", re.MULTILINE)


@pytest.mark.tmux
def test_signing_out_the_other_device_closes_it_and_its_next_run_asks_for_the_passphrase(
    terminals: list[Terminal], tmp_path: Path, tracker: RunningTracker
) -> None:
    asyncio.run(register(tracker, "alpha"))
    laptop, desktop = tmp_path / "laptop", tmp_path / "desktop"
    here = run_at(terminals, tmp_path, tracker, laptop)
    signed_in_with_the_passphrase(here)
    there = run_at(terminals, tmp_path, tracker, desktop)
    signed_in_with_the_passphrase(there)
    [there_file] = token_files(desktop)
    there_id = json.loads(there_file.read_text(encoding="utf-8"))["device"]

    computers = [laptop, desktop]
    type_line(here, "/devices")
    listed = here.wait_for(f"devices signed in to your account ({len(computers)})")
    devices = {match.group(1): bool(match.group(2)) for match in DEVICE_LINE.finditer(listed)}
    assert len(devices) == len(computers) and devices[there_id] is False, listed
    assert sum(devices.values()) == 1  # exactly one is this device

    type_line(here, f"/signout {there_id}")
    here.wait_for(f"device {there_id} is signed out")
    there.wait_for(SIGNED_OUT)
    assert there.exit_status() == EXIT_REMOVED
    assert token_files(desktop) == []  # its token is forgotten: it would not sign anyone in

    again = run_at(terminals, tmp_path, tracker, desktop)
    signed_in_with_the_passphrase(again)
    assert len(token_files(desktop)) == 1


@pytest.mark.tmux
def test_a_device_signed_out_while_it_was_not_running_is_asked_for_the_passphrase(
    terminals: list[Terminal], tmp_path: Path, tracker: RunningTracker
) -> None:
    asyncio.run(register(tracker, "alpha"))
    laptop, desktop = tmp_path / "laptop", tmp_path / "desktop"
    there = run_at(terminals, tmp_path, tracker, desktop)
    signed_in_with_the_passphrase(there)
    [there_file] = token_files(desktop)
    there_id = json.loads(there_file.read_text(encoding="utf-8"))["device"]
    type_line(there, "exit")
    assert there.exit_status() == 0

    here = run_at(terminals, tmp_path, tracker, laptop)
    signed_in_with_the_passphrase(here)
    type_line(here, f"/signout {there_id}")
    here.wait_for(f"device {there_id} is signed out")

    kept = there_file.read_text(encoding="utf-8")
    again = run_at(terminals, tmp_path, tracker, desktop)  # offers the token it kept: refused
    signed_in_with_the_passphrase(again, asked="This device was signed out: enter the passphrase")
    assert there_file.read_text(encoding="utf-8") != kept  # a new device, with a token of its own


@pytest.mark.tmux
def test_signout_of_an_unknown_device_is_refused(
    terminals: list[Terminal], tmp_path: Path, tracker: RunningTracker
) -> None:
    asyncio.run(register(tracker, "alpha"))
    here = run_at(terminals, tmp_path, tracker, tmp_path / "laptop")
    signed_in_with_the_passphrase(here)
    type_line(here, "/signout nosuchdevice")
    here.wait_for("(unknown_device)")
    type_line(here, "/signout")
    here.wait_for("usage: /signout ID")


def test_a_reconnection_that_has_to_join_afresh_signs_in_with_the_newest_token(
    start_tracker: StartTracker, clients: StartClient, tmp_path: Path
) -> None:
    tracker = start_tracker()
    asyncio.run(register(tracker, "alpha"))
    laptop = {"XDG_STATE_HOME": str(tmp_path / "laptop")}
    first = clients("--json", "--username", "alpha", tracker.url, env={**laptop, "CHAT_PASSPHRASE": PASSPHRASE})
    first.event("welcome", name="alpha")
    first.close_stdin()
    assert first.finish()[0] == 0

    client = clients("--json", "--username", "alpha", tracker.url, env=laptop)  # no passphrase: the token only
    client.event("welcome", name="alpha")
    [kept] = token_files(tmp_path / "laptop")
    signed_in = kept.read_text(encoding="utf-8")
    tracker.stop(signal.SIGKILL, timeout=4 * UNIT)  # its sessions die with it: no resume
    tracker = start_tracker("--port", str(tracker.port), data_dir=tracker.data_dir)
    client.stderr.wait_for(lambda line: "joined again as alpha" in line, 4 * UNIT)
    client.event("welcome", name="alpha")
    client.send("back with a fresh token")
    assert client.event("message", name="alpha")["text"] == "back with a fresh token"
    assert kept.read_text(encoding="utf-8") != signed_in  # the rejoin spent the kept token and kept the new one
    client.close_stdin()
    assert client.finish()[0] == 0
