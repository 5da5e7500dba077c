"""``chat-tracker accounts list|add|remove|reset``: the operator's hand on the accounts store.

The store is the tracker's own: ``<--data-dir>/accounts.db`` (``storage/accounts_db.py``),
or with ``--redis-url`` the Redis every replica shares (``journal/redis_accounts.py``),
under ``--redis-prefix``. Both may be in use by a running tracker at the same time.

``add NAME`` and ``reset NAME`` need a passphrase: from ``--passphrase-file FILE`` (its
first line), else from the environment variable ``CHAT_PASSPHRASE``, else asked twice,
hidden, when standard input is a terminal. It is never printed or logged.

Exit status: 0 done; 1 refused or failed (the name is registered, no such account, the
store cannot be used); 2 a usage error (a bad flag, an invalid or reserved name, a
passphrase too short or too long, none given, two that differ).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat_protocol import NameRefused, check_name
from chat_tracker.core.accounts import AccountStore, check_passphrase, new_account
from chat_tracker.core.passphrases import hash_passphrase
from chat_tracker.errors import AccountExists, AccountRefused, AccountStoreError, ConfigError, UnknownAccount
from chat_tracker.journal.redis_auth import read_password_file
from chat_tracker.runtime.flags import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, OPTIONS, add_flags
from chat_tracker.storage.accounts_db import SqliteAccounts

PROG = "chat-tracker accounts"
PASSPHRASE_ENV = "CHAT_PASSPHRASE"
_STORE_FLAGS = ("--data-dir", "--redis-url", "--redis-prefix", "--redis-password-file")
# A refusal that is the caller's input, not the store's state: argparse's usage status.
_USAGE_CODES = {"passphrase_too_short", "passphrase_too_long"}


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="List, add, remove and reset accounts in the tracker's store (running or not).",
        epilog=(
            f"A passphrase comes from --passphrase-file, else {PASSPHRASE_ENV}, else a hidden prompt (twice) on a "
            "terminal; it is never printed. Exit status: 0 done, 1 refused or failed, 2 a usage error."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    list_command = _command(commands, "list", "every account: name, created, devices, last seen", env)
    list_command.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    for name, purpose in (("add", "register NAME"), ("reset", "give NAME a new passphrase")):
        command = _command(commands, name, purpose, env)
        command.add_argument("name", metavar="NAME")
        command.add_argument("--passphrase-file", type=Path, help="read the passphrase from FILE's first line")
        if name == "reset":
            command.add_argument("--sign-out", action="store_true", help="also sign every device of NAME out")
    _command(commands, "remove", "remove NAME, its devices and read positions", env).add_argument(
        "name", metavar="NAME"
    )
    return parser


def _command(commands: Any, name: str, purpose: str, env: Mapping[str, str]) -> argparse.ArgumentParser:
    """A subcommand with the store's flags (the tracker's own, with their environment variables)."""
    command: argparse.ArgumentParser = commands.add_parser(name, help=purpose, description=purpose)
    add_flags(command, [option for option in OPTIONS if option.flag in _STORE_FLAGS], (), env)
    return command


def open_store(args: argparse.Namespace, redis_password: str | None) -> AccountStore:
    """The store the tracker with these flags uses; the data dir is made for ``add``."""
    if args.redis_url:
        from chat_tracker.journal.redis_accounts import RedisAccounts

        return RedisAccounts(args.redis_url, redis_password, args.redis_prefix)
    data_dir = Path(args.data_dir)
    if args.command == "add":
        data_dir.mkdir(parents=True, exist_ok=True)
    elif not data_dir.is_dir():
        raise AccountStoreError(f"no data dir {data_dir}")
    return SqliteAccounts(data_dir)


def read_passphrase(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """The passphrase for NAME, from the file, the environment or the terminal; checked against the rules."""
    if args.passphrase_file is not None:
        try:
            text = Path(args.passphrase_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read --passphrase-file {args.passphrase_file}: {error}") from None
        return check_passphrase(text.split("\n", 1)[0].removesuffix("\r"))
    if PASSPHRASE_ENV in env:
        return check_passphrase(env[PASSPHRASE_ENV])
    if not sys.stdin.isatty():
        raise ConfigError(f"no passphrase: give --passphrase-file FILE or set {PASSPHRASE_ENV} (no terminal to ask)")
    passphrase = check_passphrase(getpass.getpass(f"Passphrase for {args.name}: "))
    if getpass.getpass("The same passphrase again: ") != passphrase:
        raise ConfigError("the two passphrases differ: nothing was changed")
    return passphrase


def add(store: AccountStore, args: argparse.Namespace, env: Mapping[str, str]) -> str:
    check_name(args.name)
    existing = store.get(args.name)  # before the prompt: a taken name is said at once
    if existing is not None:
        raise AccountExists(args.name, existing.name)
    account = new_account(args.name, hash_passphrase(read_passphrase(args, env)), time.time())
    store.create(account)  # AccountExists still, if another process registered it meanwhile
    return f"Added account {account.name}"


def reset(store: AccountStore, args: argparse.Namespace, env: Mapping[str, str]) -> str:
    account = store.get(args.name)
    if account is None:
        raise UnknownAccount(args.name)
    store.set_passphrase_hash(account.name, hash_passphrase(read_passphrase(args, env)))
    if not args.sign_out:
        return f"New passphrase for {account.name}; its devices stay signed in"
    return f"New passphrase for {account.name}; {store.remove_devices(account.name)} devices signed out"


def remove(store: AccountStore, args: argparse.Namespace, env: Mapping[str, str]) -> str:
    account = store.get(args.name)
    if account is None:
        raise UnknownAccount(args.name)
    devices = len(store.devices(account.name))
    store.remove(account.name)
    return f"Removed account {account.name} and its {devices} devices"


@dataclass(frozen=True)
class AccountLine:
    """What ``list`` shows of one account."""

    name: str
    created: float
    devices: int
    last_seen: float | None  # the latest of its devices'; None before any device

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "created": _utc(self.created),
            "devices": self.devices,
            "last_seen": _utc(self.last_seen),
        }

    def cells(self) -> tuple[str, str, str, str]:
        return self.name, _utc(self.created) or "", str(self.devices), _utc(self.last_seen) or "never"


def listing(store: AccountStore, args: argparse.Namespace, env: Mapping[str, str]) -> str:
    lines = []
    for account in store.accounts():
        devices = store.devices(account.name)
        last_seen = max((device.last_seen for device in devices), default=None)
        lines.append(AccountLine(account.name, account.created, len(devices), last_seen))
    if args.json:
        return json.dumps([line.as_json() for line in lines])
    return table(lines)


def table(accounts: list[AccountLine]) -> str:
    """The accounts as aligned columns under a header (the header alone when there are none)."""
    lines = [("NAME", "CREATED", "DEVICES", "LAST SEEN"), *(account.cells() for account in accounts)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _utc(moment: float | None) -> str | None:
    return None if moment is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


COMMANDS: dict[str, Callable[[AccountStore, argparse.Namespace, Mapping[str, str]], str]] = {
    "list": listing,
    "add": add,
    "reset": reset,
    "remove": remove,
}


@contextmanager
def redis_errors(url: str | None, password: str | None) -> Iterator[None]:
    """Redis's own errors as a ConfigError (its credentials refused) or an OSError naming Redis, never its password."""
    from redis.exceptions import RedisError

    from chat_tracker.journal.redis_auth import auth_refused, redact

    try:
        yield
    except RedisError as error:
        refused = auth_refused(error, url or "", password)
        raise refused or OSError(f"Redis at {redact(url or '')}: {error}") from None


def run(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """Carry out the command; what it says when done."""
    password = read_password_file(args.redis_password_file) if args.redis_url else None
    with redis_errors(args.redis_url, password):
        store = open_store(args, password)
        try:
            return COMMANDS[args.command](store, args, env)
        finally:
            store.close()


def main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    try:
        args = build_parser(env).parse_args(argv)
    except ValueError as error:  # a bad value in an environment variable
        return _fail(error, EXIT_USAGE)
    try:
        print(run(args, env))
    except (ConfigError, NameRefused) as error:
        return _fail(error, EXIT_USAGE)
    except AccountRefused as error:
        return _fail(error, EXIT_USAGE if error.code in _USAGE_CODES else EXIT_FAILURE)
    except (AccountStoreError, OSError) as error:
        return _fail(error, EXIT_FAILURE)
    return EXIT_OK


def _fail(error: Exception, status: int) -> int:
    print(f"{PROG}: error: {error}", file=sys.stderr)
    return status


if __name__ == "__main__":
    import os

    sys.exit(main(sys.argv[1:], os.environ))
