"""accounts.db on real files: the store's contract, its modes, WAL, migrations, and two connections at once."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chat_tracker.core.accounts import AccountStore
from chat_tracker.errors import AccountStoreError
from chat_tracker.storage.accounts_db import ACCOUNTS_FILE, MIGRATIONS, SCHEMA_VERSION, SqliteAccounts
from support.accounts import CONTRACT, CONTRACT_IDS, NOW, register, sign_in
from support.timing import UNIT

WRITES = 200  # read-position advances per writer in the concurrency test


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAccounts]:
    opened = SqliteAccounts(tmp_path)
    yield opened
    opened.close()


@pytest.mark.parametrize("check", CONTRACT, ids=CONTRACT_IDS)
def test_contract(store: SqliteAccounts, check: Callable[[AccountStore], None]) -> None:
    check(store)  # mypy checks that SqliteAccounts is an AccountStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_files_are_private_even_under_an_open_umask(tmp_path: Path) -> None:
    """accounts.db, and the -wal and -shm SQLite makes beside it, are 0600 whatever the umask allows."""
    old = os.umask(0)
    try:
        store = SqliteAccounts(tmp_path)
        register(store, "alpha")  # a write: the WAL has content while the store is open
        files = [tmp_path / name for name in (ACCOUNTS_FILE, ACCOUNTS_FILE + "-wal", ACCOUNTS_FILE + "-shm")]
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
        store.close()
    finally:
        os.umask(old)


def test_a_readable_file_left_by_someone_else_is_made_private(tmp_path: Path) -> None:
    SqliteAccounts(tmp_path).close()
    for suffix in ("", "-wal", "-shm"):  # the WAL and shm of an open store, left readable
        path = tmp_path / (ACCOUNTS_FILE + suffix)
        path.touch()
        path.chmod(0o644)
    store = SqliteAccounts(tmp_path)
    try:
        assert [mode(tmp_path / (ACCOUNTS_FILE + s)) for s in ("", "-wal", "-shm")] == [0o600] * 3
    finally:
        store.close()


def test_wal_and_foreign_keys_and_the_schema_version(store: SqliteAccounts, tmp_path: Path) -> None:
    register(store, "alpha")
    with sqlite3.connect(tmp_path / ACCOUNTS_FILE) as other:  # another program looking at the file
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
        assert other.execute("SELECT name FROM accounts").fetchall() == [("alpha",)]


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    store = SqliteAccounts(tmp_path)
    register(store, "alpha")
    token = sign_in(store, "alpha")
    store.advance_read_position("alpha", 42)
    store.close()
    again = SqliteAccounts(tmp_path)
    try:
        device = again.device_by_token(token)
        assert device is not None and device.account_key == "alpha"
        assert again.read_position("alpha") == 42
    finally:
        again.close()


def test_a_version_1_file_is_migrated_with_its_data(tmp_path: Path) -> None:
    """A file made by the first schema (accounts and devices, no read positions) opens under the current one."""
    with sqlite3.connect(tmp_path / ACCOUNTS_FILE) as old:
        for statement in MIGRATIONS[0]:
            old.execute(statement)
        old.execute("INSERT INTO accounts VALUES ('alpha', 'Alpha', ?, '$argon2id$old')", (NOW,))
        old.execute("INSERT INTO devices VALUES ('d1', 'alpha', 'laptop', ?, ?, 'h1')", (NOW, NOW + 5))
        old.execute("PRAGMA user_version = 1")
    old.close()
    store = SqliteAccounts(tmp_path)
    try:
        account = store.get("alpha")
        assert account is not None and (account.name, account.passphrase_hash) == ("Alpha", "$argon2id$old")
        assert [(d.id, d.label, d.last_seen) for d in store.devices("alpha")] == [("d1", "laptop", NOW + 5)]
        assert store.advance_read_position("alpha", 7) == 7  # the table migration 2 made
    finally:
        store.close()
    with sqlite3.connect(tmp_path / ACCOUNTS_FILE) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    SqliteAccounts(tmp_path).close()
    with sqlite3.connect(tmp_path / ACCOUNTS_FILE) as newer:
        newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(AccountStoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        SqliteAccounts(tmp_path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / ACCOUNTS_FILE).write_bytes(b"this is not SQLite, just some bytes that are long enough" * 50)
    with pytest.raises(AccountStoreError, match=ACCOUNTS_FILE):
        SqliteAccounts(tmp_path)


def test_two_connections_see_each_others_writes(tmp_path: Path) -> None:
    """The CLI and a running tracker: each sees what the other wrote, without reopening."""
    tracker, cli = SqliteAccounts(tmp_path), SqliteAccounts(tmp_path)
    try:
        register(cli, "alpha")
        token = sign_in(tracker, "alpha")
        assert cli.device_by_token(token) is not None
        cli.remove("alpha")
        assert tracker.get("alpha") is None and tracker.device_by_token(token) is None
    finally:
        tracker.close()
        cli.close()


def test_a_writer_waits_for_anothers_transaction(tmp_path: Path) -> None:
    """busy_timeout: a write while another connection holds the write lock waits for it instead of failing."""
    store = SqliteAccounts(tmp_path)
    holder = sqlite3.connect(tmp_path / ACCOUNTS_FILE, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    done = threading.Event()
    failed: list[BaseException] = []

    def write() -> None:
        try:
            register(store, "alpha")
        except BaseException as error:  # reported to the test below
            failed.append(error)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert not done.wait(UNIT / 10), "the write went through while another held the write lock"
    finally:
        holder.execute("COMMIT")
        holder.close()
    writer.join(2 * UNIT)
    assert done.is_set() and failed == [] and store.get("alpha") is not None
    store.close()


def test_concurrent_advances_keep_the_highest(tmp_path: Path) -> None:
    """Two connections advancing one position at once, interleaved: no error, and it ends at the highest seq."""
    first, second = SqliteAccounts(tmp_path), SqliteAccounts(tmp_path)
    register(first, "alpha")
    errors: list[BaseException] = []

    def advance(store: SqliteAccounts, seqs: range) -> None:
        try:
            for seq in seqs:
                assert store.advance_read_position("alpha", seq) >= seq
        except BaseException as error:  # reported to the test below
            errors.append(error)

    threads = [
        threading.Thread(target=advance, args=(first, range(1, 2 * WRITES, 2))),
        threading.Thread(target=advance, args=(second, range(2 * WRITES, 0, -2))),  # downwards: mostly behind
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(4 * UNIT)
    assert errors == []
    assert first.read_position("alpha") == second.read_position("alpha") == 2 * WRITES
    first.close()
    second.close()
