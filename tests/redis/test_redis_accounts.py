"""The accounts store in a real redis-server: the same contract as accounts.db, one set for every replica.

Also: every key of one account shares a Cluster slot (its hash tag), the store survives
Redis restarting from its AOF, two prefixes are two sets, and ``chat-tracker accounts
--redis-url`` works on it as a separate process.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest
from redis.crc import key_slot

from chat_tracker.core.accounts import AccountStore
from chat_tracker.core.passphrases import verify_passphrase
from chat_tracker.journal.redis_accounts import RedisAccounts
from support.accounts import CONTRACT, CONTRACT_IDS, register, sign_in
from support.environment import program
from support.redis_server import RedisServer
from support.timing import UNIT

PASSPHRASE = "correct horse battery"


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[RedisAccounts]:
    opened = RedisAccounts(redis_server.url)
    yield opened
    opened.close()


@pytest.mark.parametrize("check", CONTRACT, ids=CONTRACT_IDS)
def test_contract(store: RedisAccounts, check: Callable[[AccountStore], None]) -> None:
    check(store)  # mypy checks that RedisAccounts is an AccountStore


def test_an_accounts_keys_share_one_cluster_slot(store: RedisAccounts, redis_server: RedisServer) -> None:
    """Hash-tagged by the name key: one slot per account (its scripts stay legal on a Cluster)."""
    register(store, "Alpha")
    sign_in(store, "alpha")
    store.advance_read_position("alpha", 3)
    with redis_server.client() as client:
        keys = [key.decode() for key in client.scan_iter(match="groupchat:account:*")]
    assert sorted(keys) == sorted(
        f"groupchat:account:{{alpha}}{suffix}" for suffix in ("", ":devices", ":seen", ":read")
    )
    assert len({key_slot(key.encode()) for key in keys}) == 1


def test_two_replicas_see_one_set(redis_server: RedisServer) -> None:
    first, second = RedisAccounts(redis_server.url), RedisAccounts(redis_server.url)
    try:
        register(first, "alpha")
        token = sign_in(second, "alpha")
        assert first.device_by_token(token) is not None
        first.advance_read_position("alpha", 9)
        assert second.advance_read_position("alpha", 5) == 9
        second.remove("alpha")
        assert first.get("alpha") is None and first.device_by_token(token) is None
    finally:
        first.close()
        second.close()


def test_accounts_survive_a_redis_restart(redis_server: RedisServer) -> None:
    store = RedisAccounts(redis_server.url)
    register(store, "alpha")
    token = sign_in(store, "alpha")
    store.close()
    redis_server.kill()  # SIGKILL: what appendfsync always acknowledged is in the AOF
    redis_server.start()
    again = RedisAccounts(redis_server.url)
    try:
        assert [account.name for account in again.accounts()] == ["alpha"]
        assert again.device_by_token(token) is not None
    finally:
        again.close()


def test_two_prefixes_are_two_sets(redis_server: RedisServer) -> None:
    one, two = RedisAccounts(redis_server.url, prefix="one:"), RedisAccounts(redis_server.url, prefix="two:")
    try:
        register(one, "alpha")
        assert two.get("alpha") is None and two.accounts() == []
        register(two, "alpha")  # no lookalike across prefixes: another room's set
    finally:
        one.close()
        two.close()


def test_a_listed_key_without_an_account_is_skipped(store: RedisAccounts, redis_server: RedisServer) -> None:
    """What a crash between adding to the set and making the account leaves: listed nowhere."""
    register(store, "bob")
    with redis_server.client() as client:
        client.sadd("groupchat:accounts", "alpha")
    assert [account.name for account in store.accounts()] == ["bob"]
    register(store, "alpha")  # and the name can still be registered
    assert [account.name for account in store.accounts()] == ["alpha", "bob"]


def run_cli(*args: str, passphrase: str | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_") and k != "CHAT_PASSPHRASE"}
    return subprocess.run(
        [program("chat-tracker"), "accounts", *args],
        env={**clean, **({} if passphrase is None else {"CHAT_PASSPHRASE": passphrase})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=2 * UNIT,
        check=False,
    )


def test_the_cli_on_redis(store: RedisAccounts, redis_server: RedisServer) -> None:
    added = run_cli("add", "alpha", "--redis-url", redis_server.url, passphrase=PASSPHRASE)
    assert added.returncode == 0, added.stderr
    account = store.get("alpha")
    assert account is not None and verify_passphrase(account.passphrase_hash, PASSPHRASE)
    again = run_cli("add", "A1PHA", "--redis-url", redis_server.url, passphrase=PASSPHRASE)
    assert again.returncode == 1 and "registered" in again.stderr
    sign_in(store, "alpha")
    listed = json.loads(run_cli("list", "--json", "--redis-url", redis_server.url).stdout)
    assert [(a["name"], a["devices"]) for a in listed] == [("alpha", 1)]
    removed = run_cli("remove", "alpha", "--redis-url", redis_server.url)
    assert removed.returncode == 0 and store.accounts() == []


def test_the_cli_says_when_redis_cannot_be_reached(redis_server: RedisServer) -> None:
    url = redis_server.url
    redis_server.stop()
    result = run_cli("list", "--redis-url", url)
    assert result.returncode == 1 and "Redis at" in result.stderr and result.stderr.count("\n") == 1
