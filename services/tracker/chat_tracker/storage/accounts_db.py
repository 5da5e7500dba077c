"""The accounts store in the data dir: ``accounts.db``, SQLite (the standard library's), mode 0600, WAL.

One file holds the accounts, their devices and their read positions (``core/accounts.py``).
It is made 0600 before SQLite opens it, and SQLite gives the ``-wal`` and ``-shm`` files
it makes beside it the database's own mode; a file an older version left open to others
is made 0600 at open. WAL lets readers and one writer work at once, and ``busy_timeout``
makes a writer wait for another's transaction instead of failing: so ``chat-tracker
accounts`` and a running tracker share the file. Every write is one ``BEGIN IMMEDIATE``
transaction (the write lock taken first, so the wait happens there, not half-way).

The schema is versioned (``PRAGMA user_version``): ``MIGRATIONS[n]`` takes a file from
version n to n + 1, and every one missing is applied in order at open, in one
transaction. A file from a newer version is refused rather than guessed at.

Every method blocks on the file: the service layer calls them through ``asyncio.to_thread``;
a lock lets one connection serve those threads one call at a time.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chat_protocol import name_key
from chat_tracker.core.accounts import DEFAULT_ROOM, Account, Device, Membership, ReadPosition, token_hash
from chat_tracker.errors import AccountExists, AccountStoreError, UnknownAccount
from chat_tracker.storage.private_files import PRIVATE_MODE, make_path_private, make_private

ACCOUNTS_FILE = "accounts.db"
BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another process's transaction before giving up

# Each entry takes the schema from its index to the next version; append, never edit one that shipped.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: accounts, and the devices that sign in to them
        """CREATE TABLE accounts (
            key TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL, passphrase_hash TEXT NOT NULL)""",
        """CREATE TABLE devices (
            id TEXT PRIMARY KEY, account_key TEXT NOT NULL REFERENCES accounts(key) ON DELETE CASCADE,
            label TEXT NOT NULL, created REAL NOT NULL, last_seen REAL NOT NULL, token_hash TEXT NOT NULL UNIQUE)""",
        "CREATE INDEX devices_by_account ON devices(account_key)",
    ),
    (  # 2: how far each account has read, per room
        """CREATE TABLE read_positions (
            account_key TEXT NOT NULL REFERENCES accounts(key) ON DELETE CASCADE,
            room TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (account_key, room))""",
    ),
    (  # 3: membership that outlives the connection, per room
        """CREATE TABLE memberships (
            account_key TEXT NOT NULL REFERENCES accounts(key) ON DELETE CASCADE,
            room TEXT NOT NULL, since REAL NOT NULL, last_seen REAL NOT NULL, PRIMARY KEY (account_key, room))""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_DEVICE_COLUMNS = "id, account_key, label, created, last_seen, token_hash"


def create_private(path: Path) -> None:
    """Make ``path`` an empty file of mode 0600 unless it exists; an existing one is made 0600."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)  # the mode applies when it is created
    try:
        make_private(fd)
    finally:
        os.close(fd)


def apply_migrations(db: sqlite3.Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION`` inside the caller's transaction; the version it had."""
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise AccountStoreError(f"accounts.db has schema version {found}; this tracker knows up to {SCHEMA_VERSION}")
    for version in range(found, SCHEMA_VERSION):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {version + 1}")  # a PRAGMA takes no parameters; an int of ours
    return found


def open_database(path: Path) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode with foreign keys on, its schema brought up to date."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    try:
        configure(db, path)
        db.execute("BEGIN IMMEDIATE")
        apply_migrations(db)
        db.execute("COMMIT")
    except sqlite3.DatabaseError as error:  # not a database, or a lock held past the timeout
        db.close()
        raise AccountStoreError(f"{path}: {error}") from None
    except BaseException:
        db.close()
        raise
    return db


def configure(db: sqlite3.Connection, path: Path) -> None:
    """Settings of each connection (SQLite keeps only the journal mode in the file)."""
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise AccountStoreError(f"{path}: SQLite cannot use WAL here (journal mode {mode})")
    db.execute("PRAGMA foreign_keys = ON")  # devices and read positions go with their account
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA synchronous = FULL")  # an account added is on disk when add returns


def _account(row: Any) -> Account:
    return Account(name=row[1], key=row[0], created=row[2], passphrase_hash=row[3])


def _device(row: Any) -> Device:
    return Device(id=row[0], account_key=row[1], label=row[2], created=row[3], last_seen=row[4], token_hash=row[5])


class SqliteAccounts:
    """``AccountStore`` on ``<data dir>/accounts.db``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ACCOUNTS_FILE
        create_private(self.path)
        self._lock = threading.Lock()
        self._db = open_database(self.path)
        for suffix in ("-wal", "-shm"):  # SQLite gives them the database's mode; this fixes an older file
            make_path_private(self.path.with_name(self.path.name + suffix))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, the write lock taken at its start; SQLite's failures as AccountStoreError."""
        with self._lock, self._sqlite_errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # also when COMMIT itself failed (a full disk)
                    self._db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, *params: object) -> list[Any]:
        with self._lock, self._sqlite_errors():
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        """A lock held past the busy timeout, a full disk, a damaged file: one error that names the file."""
        try:
            yield
        except sqlite3.Error as error:
            raise AccountStoreError(f"{self.path}: {error}") from error

    @staticmethod
    def _require(db: sqlite3.Connection, name: str) -> str:
        key = name_key(name)
        if db.execute("SELECT 1 FROM accounts WHERE key = ?", (key,)).fetchone() is None:
            raise UnknownAccount(name)
        return key

    def create(self, account: Account) -> None:
        with self._write() as db:
            holder = db.execute("SELECT name FROM accounts WHERE key = ?", (account.key,)).fetchone()
            if holder is not None:
                raise AccountExists(account.name, holder[0])
            db.execute(
                "INSERT INTO accounts (key, name, created, passphrase_hash) VALUES (?, ?, ?, ?)",
                (account.key, account.name, account.created, account.passphrase_hash),
            )

    def get(self, name: str) -> Account | None:
        rows = self._read("SELECT key, name, created, passphrase_hash FROM accounts WHERE key = ?", name_key(name))
        return _account(rows[0]) if rows else None

    def accounts(self) -> list[Account]:
        return [
            _account(row) for row in self._read("SELECT key, name, created, passphrase_hash FROM accounts ORDER BY key")
        ]

    def remove(self, name: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM accounts WHERE key = ?", (self._require(db, name),))

    def set_passphrase_hash(self, name: str, passphrase_hash: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE accounts SET passphrase_hash = ? WHERE key = ?", (passphrase_hash, self._require(db, name))
            )

    def add_device(self, device: Device) -> None:
        with self._write() as db:
            if db.execute("SELECT 1 FROM accounts WHERE key = ?", (device.account_key,)).fetchone() is None:
                raise UnknownAccount(device.account_key)
            db.execute(
                f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (device.id, device.account_key, device.label, device.created, device.last_seen, device.token_hash),
            )

    def devices(self, name: str) -> list[Device]:
        sql = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE account_key = ? ORDER BY created, id"
        return [_device(row) for row in self._read(sql, name_key(name))]

    def remove_device(self, name: str, device_id: str) -> bool:
        with self._write() as db:
            gone = db.execute("DELETE FROM devices WHERE id = ? AND account_key = ?", (device_id, name_key(name)))
            return gone.rowcount > 0

    def remove_devices(self, name: str) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM devices WHERE account_key = ?", (name_key(name),)).rowcount

    def device_by_token(self, token: str) -> Device | None:
        rows = self._read(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE token_hash = ?", token_hash(token))
        return _device(rows[0]) if rows else None

    def touch_device(self, name: str, device_id: str, now: float) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE devices SET last_seen = max(last_seen, ?) WHERE id = ? AND account_key = ?",
                (now, device_id, name_key(name)),
            )

    def rotate_device(self, name: str, device_id: str, new_token_hash: str, now: float) -> bool:
        with self._write() as db:
            rotated = db.execute(
                "UPDATE devices SET token_hash = ?, last_seen = max(last_seen, ?) WHERE id = ? AND account_key = ?",
                (new_token_hash, now, device_id, name_key(name)),
            )
            return rotated.rowcount > 0

    def read_position(self, name: str, room: str = DEFAULT_ROOM) -> int:
        sql = "SELECT seq FROM read_positions WHERE account_key = ? AND room = ?"
        rows = self._read(sql, name_key(name), room)
        return int(rows[0][0]) if rows else 0

    def read_positions(self, name: str) -> list[ReadPosition]:
        key = name_key(name)
        rows = self._read("SELECT room, seq FROM read_positions WHERE account_key = ? ORDER BY room", key)
        return [ReadPosition(account_key=key, room=room, seq=int(seq)) for room, seq in rows]

    def advance_read_position(self, name: str, seq: int, room: str = DEFAULT_ROOM) -> int:
        with self._write() as db:
            key = self._require(db, name)
            db.execute(
                "INSERT INTO read_positions (account_key, room, seq) VALUES (?, ?, ?)"
                " ON CONFLICT (account_key, room) DO UPDATE SET seq = max(seq, excluded.seq)",
                (key, room, seq),
            )
            row = db.execute("SELECT seq FROM read_positions WHERE account_key = ? AND room = ?", (key, room))
            return int(row.fetchone()[0])

    def begin_membership(self, name: str, seq: int, now: float, room: str = DEFAULT_ROOM) -> bool:
        with self._write() as db:
            key = self._require(db, name)
            began = db.execute(
                "INSERT INTO memberships (account_key, room, since, last_seen) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (account_key, room) DO NOTHING",
                (key, room, now, now),
            ).rowcount
            if began:
                db.execute(
                    "INSERT INTO read_positions (account_key, room, seq) VALUES (?, ?, ?)"
                    " ON CONFLICT (account_key, room) DO UPDATE SET seq = max(seq, excluded.seq)",
                    (key, room, seq),
                )
            return began > 0

    def membership(self, name: str, room: str = DEFAULT_ROOM) -> Membership | None:
        sql = (
            "SELECT accounts.name, since, last_seen FROM memberships JOIN accounts ON accounts.key = account_key"
            " WHERE account_key = ? AND room = ?"
        )
        rows = self._read(sql, name_key(name), room)
        return Membership(rows[0][0], room, rows[0][1], rows[0][2]) if rows else None

    def end_membership(self, name: str, room: str = DEFAULT_ROOM) -> bool:
        with self._write() as db:
            key = name_key(name)
            ended = db.execute("DELETE FROM memberships WHERE account_key = ? AND room = ?", (key, room)).rowcount
            db.execute("DELETE FROM read_positions WHERE account_key = ? AND room = ?", (key, room))
            return ended > 0

    def memberships(self, room: str = DEFAULT_ROOM) -> list[Membership]:
        sql = (
            "SELECT accounts.name, since, last_seen FROM memberships JOIN accounts ON accounts.key = account_key"
            " WHERE room = ? ORDER BY account_key"
        )
        return [Membership(name, room, since, last_seen) for name, since, last_seen in self._read(sql, room)]

    def mark_seen(self, name: str, now: float, room: str = DEFAULT_ROOM) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE memberships SET last_seen = max(last_seen, ?) WHERE account_key = ? AND room = ?",
                (now, name_key(name), room),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
