"""``chat-tracker accounts`` as an operator runs it: a real process on a real data dir.

Each test runs the installed ``chat-tracker`` with a clean environment (no TRACKER_*
or CHAT_PASSPHRASE of the caller's) and checks what an operator would: the exit
status, what it says, and what the store holds afterwards. No passphrase is ever
printed.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from chat_protocol.accounts import MAX_PASSPHRASE_CHARS, MIN_PASSPHRASE_CHARS
from chat_tracker.core.passphrases import verify_passphrase
from chat_tracker.storage.accounts_db import ACCOUNTS_FILE, SqliteAccounts
from support.accounts import sign_in
from support.environment import program
from support.terminal import Terminal, require_tmux
from support.timing import UNIT
from support.tracker import StartTracker

PASSPHRASE = "correct horse battery"
OTHER_PASSPHRASE = "staple-and-more"


def accounts(
    data_dir: Path | None, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``chat-tracker accounts ARGS --data-dir DATA_DIR``, its stdin not a terminal (piped, as in a script)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_") and k != "CHAT_PASSPHRASE"}
    where = [] if data_dir is None else ["--data-dir", str(data_dir)]
    result = subprocess.run(
        [program("chat-tracker"), "accounts", *args, *where],
        env={**clean, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=2 * UNIT,
        check=False,
    )
    assert PASSPHRASE not in result.stdout + result.stderr and OTHER_PASSPHRASE not in result.stdout + result.stderr
    return result


def add(data_dir: Path, name: str, passphrase: str = PASSPHRASE) -> subprocess.CompletedProcess[str]:
    return accounts(data_dir, "add", name, env={"CHAT_PASSPHRASE": passphrase})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAccounts]:
    """The data dir's store, open as a running tracker would hold it while the CLI works."""
    opened = SqliteAccounts(tmp_path)
    yield opened
    opened.close()


def passphrase_of(store: SqliteAccounts, name: str, candidate: str) -> bool:
    account = store.get(name)
    assert account is not None, f"no account {name}"
    return verify_passphrase(account.passphrase_hash, candidate)


def test_add_from_the_environment_while_the_store_is_open(tmp_path: Path, store: SqliteAccounts) -> None:
    """CHAT_PASSPHRASE, piped (no terminal); the store held open elsewhere sees the account at once."""
    result = add(tmp_path, "Alpha")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Added account Alpha\n", "")
    assert passphrase_of(store, "alpha", PASSPHRASE) and not passphrase_of(store, "alpha", OTHER_PASSPHRASE)
    assert oct((tmp_path / ACCOUNTS_FILE).stat().st_mode & 0o777) == oct(0o600)


def test_add_from_a_passphrase_file(tmp_path: Path, store: SqliteAccounts) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\r\n", encoding="utf-8")  # its line ending is not part of it
    result = accounts(tmp_path, "add", "alpha", "--passphrase-file", str(secret))
    assert result.returncode == 0, result.stderr
    assert passphrase_of(store, "alpha", PASSPHRASE)


def test_the_file_wins_over_the_environment(tmp_path: Path, store: SqliteAccounts) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE, encoding="utf-8")
    result = accounts(tmp_path, "add", "alpha", "--passphrase-file", str(secret), env={"CHAT_PASSPHRASE": "x" * 9})
    assert result.returncode == 0, result.stderr
    assert passphrase_of(store, "alpha", PASSPHRASE)


@pytest.mark.parametrize("second", ["alpha", "ALPHA", "a1pha", "alp.ha"])
def test_a_registered_name_and_its_lookalikes_are_refused(tmp_path: Path, store: SqliteAccounts, second: str) -> None:
    assert add(tmp_path, "alpha").returncode == 0
    result = add(tmp_path, second, OTHER_PASSPHRASE)
    assert result.returncode == 1
    assert (
        result.stderr == f"chat-tracker accounts: error: the name {second!r} is registered (or too close to 'alpha')\n"
    )
    assert passphrase_of(store, "alpha", PASSPHRASE)  # the first one's passphrase stands
    assert len(store.accounts()) == 1


@pytest.mark.parametrize(
    ("name", "passphrase", "says"),
    [
        ("admin", PASSPHRASE, "the name 'admin' is reserved"),
        ("no spaces", PASSPHRASE, "invalid name"),
        ("alpha", "x" * (MIN_PASSPHRASE_CHARS - 1), f"at least {MIN_PASSPHRASE_CHARS} characters"),
        ("alpha", "x" * (MAX_PASSPHRASE_CHARS + 1), f"at most {MAX_PASSPHRASE_CHARS} characters"),
    ],
    ids=["reserved", "invalid", "short", "long"],
)
def test_usage_errors_exit_2_and_add_nothing(
    tmp_path: Path, store: SqliteAccounts, name: str, passphrase: str, says: str
) -> None:
    result = add(tmp_path, name, passphrase)
    assert result.returncode == 2 and says in result.stderr and result.stderr.count("\n") == 1
    assert store.accounts() == []


def test_without_a_terminal_or_a_passphrase_it_says_where_to_give_one(tmp_path: Path, store: SqliteAccounts) -> None:
    result = accounts(tmp_path, "add", "alpha")
    assert result.returncode == 2
    assert "--passphrase-file" in result.stderr and "CHAT_PASSPHRASE" in result.stderr
    assert store.accounts() == []


def test_list_shows_each_account_with_its_devices(tmp_path: Path, store: SqliteAccounts) -> None:
    for name in ("carol", "alpha"):
        assert add(tmp_path, name).returncode == 0
    sign_in(store, "alpha", "laptop", now=1_800_000_000.0)
    sign_in(store, "alpha", "phone", now=1_800_000_060.0)
    table = accounts(tmp_path, "list")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "CREATED", "DEVICES", "LAST", "SEEN"]
    assert lines[1].split()[0::2] == ["alpha", "2"] and lines[1].split()[3] == "2027-01-15T08:01:00Z"
    assert lines[2].split()[0::2] == ["carol", "0"] and lines[2].split()[3] == "never"
    listed = json.loads(accounts(tmp_path, "list", "--json").stdout)
    assert [(a["name"], a["devices"], a["last_seen"]) for a in listed] == [
        ("alpha", 2, "2027-01-15T08:01:00Z"),
        ("carol", 0, None),
    ]
    assert all("hash" not in json.dumps(a) for a in listed)


def test_list_of_an_empty_store(tmp_path: Path) -> None:
    assert accounts(tmp_path, "list", "--json").stdout == "[]\n"
    assert accounts(tmp_path, "list").stdout.split() == ["NAME", "CREATED", "DEVICES", "LAST", "SEEN"]


def test_reset_gives_a_new_passphrase(tmp_path: Path, store: SqliteAccounts) -> None:
    assert add(tmp_path, "alpha").returncode == 0
    token = sign_in(store, "alpha")
    kept = accounts(tmp_path, "reset", "ALPHA", env={"CHAT_PASSPHRASE": OTHER_PASSPHRASE})
    assert kept.returncode == 0 and "devices stay signed in" in kept.stdout
    assert passphrase_of(store, "alpha", OTHER_PASSPHRASE) and not passphrase_of(store, "alpha", PASSPHRASE)
    assert store.device_by_token(token) is not None
    out = accounts(tmp_path, "reset", "alpha", "--sign-out", env={"CHAT_PASSPHRASE": PASSPHRASE})
    assert out.returncode == 0 and "1 device signed out" in out.stdout
    assert store.device_by_token(token) is None and passphrase_of(store, "alpha", PASSPHRASE)


def test_reset_and_remove_of_an_unknown_account(tmp_path: Path, store: SqliteAccounts) -> None:
    for command in (["reset", "nobody1"], ["remove", "nobody1"]):
        result = accounts(tmp_path, *command, env={"CHAT_PASSPHRASE": PASSPHRASE})
        assert (result.returncode, result.stderr) == (1, "chat-tracker accounts: error: no account 'nobody1'\n")


def test_remove_takes_the_account_and_its_devices(tmp_path: Path, store: SqliteAccounts) -> None:
    assert add(tmp_path, "alpha").returncode == 0
    token = sign_in(store, "alpha")
    result = accounts(tmp_path, "remove", "a1pha")  # any spelling of it
    assert (result.returncode, result.stdout) == (0, "Removed account alpha and its 1 device\n")
    assert store.get("alpha") is None and store.device_by_token(token) is None
    assert add(tmp_path, "alpha", OTHER_PASSPHRASE).returncode == 0  # the name is free again


def test_the_data_dir_from_the_trackers_variable(tmp_path: Path) -> None:
    data_dir = tmp_path / "from-env"
    result = accounts(None, "add", "alpha", env={"TRACKER_DATA_DIR": str(data_dir), "CHAT_PASSPHRASE": PASSPHRASE})
    assert result.returncode == 0, result.stderr
    assert (data_dir / ACCOUNTS_FILE).is_file()
    before = accounts(None, "--data-dir", str(data_dir), "list", "--json")  # the flag before the command too
    assert [account["name"] for account in json.loads(before.stdout)] == ["alpha"]
    missing = accounts(tmp_path / "nowhere", "list")
    assert missing.returncode == 1 and "no data dir" in missing.stderr


def test_asked_twice_and_hidden_on_a_terminal(tmp_path: Path, store: SqliteAccounts) -> None:
    require_tmux()
    terminal = Terminal(tmp_path / "tmux.sock")
    command = [program("chat-tracker"), "accounts", "add", "alpha", "--data-dir", str(tmp_path)]
    terminal.start("env -u CHAT_PASSPHRASE " + shlex.join(command))
    try:
        terminal.wait_for("Passphrase for alpha:")
        terminal.type_text(PASSPHRASE)
        terminal.type("Enter")
        terminal.wait_for("The same passphrase again:")
        terminal.type_text(PASSPHRASE)
        terminal.type("Enter")
        shown = terminal.wait_for("Added account alpha")
        assert terminal.exit_status() == 0 and PASSPHRASE not in shown
    finally:
        subprocess.run(["tmux", "-S", str(terminal.socket), "kill-server"], capture_output=True, check=False)
    assert passphrase_of(store, "alpha", PASSPHRASE)


def test_two_different_passphrases_on_a_terminal_change_nothing(tmp_path: Path, store: SqliteAccounts) -> None:
    require_tmux()
    terminal = Terminal(tmp_path / "tmux.sock")
    command = [program("chat-tracker"), "accounts", "add", "alpha", "--data-dir", str(tmp_path)]
    terminal.start("env -u CHAT_PASSPHRASE " + shlex.join(command))
    try:
        for typed in (PASSPHRASE, OTHER_PASSPHRASE):
            terminal.wait_for("again:" if typed == OTHER_PASSPHRASE else "Passphrase for alpha:")
            terminal.type_text(typed)
            terminal.type("Enter")
        shown = terminal.wait_for("differ")
        assert terminal.exit_status() == 2 and PASSPHRASE not in shown and OTHER_PASSPHRASE not in shown
    finally:
        subprocess.run(["tmux", "-S", str(terminal.socket), "kill-server"], capture_output=True, check=False)
    assert store.accounts() == []


def test_beside_a_running_tracker_on_the_same_data_dir(start_tracker: StartTracker, tmp_path: Path) -> None:
    """The tracker keeps its data dir while the command adds, lists and removes: neither disturbs the other."""
    tracker = start_tracker(data_dir=tmp_path)
    assert add(tmp_path, "alpha").returncode == 0
    assert [a["name"] for a in json.loads(accounts(tmp_path, "list", "--json").stdout)] == ["alpha"]
    assert accounts(tmp_path, "remove", "alpha").returncode == 0
    assert httpx.get(f"{tracker.http_url}/healthz", timeout=UNIT).status_code == 200
    assert tracker.stop() == 0 and tracker.log_lines()[-1].endswith("tracker stopped")
