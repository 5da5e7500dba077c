"""What every accounts store must do, checked the same way on SQLite (tests/storage) and Redis (tests/redis).

``CONTRACT`` lists checks, each taking a fresh, empty store (``AccountStore``); a test file
parametrizes over them with its own store. The passphrase hashes here are stand-ins (a
store keeps whatever string it is given): real Argon2id hashing is tested in tests/core.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chat_tracker.core.accounts import (
    AccountStore,
    Membership,
    ReadPosition,
    new_account,
    new_device,
    new_device_token,
    token_hash,
)
from chat_tracker.errors import AccountExists, UnknownAccount

NOW = 1_800_000_000.0
HASH = "$argon2id$stand-in"  # not a real hash: stores keep the string as given


def register(store: AccountStore, name: str, passphrase_hash: str = HASH, now: float = NOW) -> None:
    store.create(new_account(name, passphrase_hash, now))


def sign_in(store: AccountStore, name: str, label: str = "laptop", now: float = NOW) -> str:
    """Add a device to ``name``'s account; the token it was given."""
    account = store.get(name)
    assert account is not None
    token = new_device_token()
    store.add_device(new_device(account, label, token, now))
    return token


def check_create_and_get(store: AccountStore) -> None:
    register(store, "Alpha.One")
    account = store.get("alpha-one")  # any spelling of the name finds it
    assert account is not None
    assert (account.name, account.key, account.created, account.passphrase_hash) == ("Alpha.One", "alphaone", NOW, HASH)
    assert store.get("beta") is None


def check_lookalikes_are_refused(store: AccountStore) -> None:
    register(store, "alpha")
    for lookalike in ("alpha", "ALPHA", "a1pha", "alp.ha", "Al_pha"):
        with pytest.raises(AccountExists) as refused:
            register(store, lookalike, "$argon2id$other")
        assert refused.value.holder == "alpha" and refused.value.code == "name_taken"
    account = store.get("alpha")
    assert account is not None and account.passphrase_hash == HASH  # the first one's, untouched


def check_accounts_listed_by_key(store: AccountStore) -> None:
    for name in ("carol", "Alpha", "bob"):
        register(store, name)
    assert [account.name for account in store.accounts()] == ["Alpha", "bob", "carol"]


def check_reset_replaces_the_hash(store: AccountStore) -> None:
    register(store, "alpha")
    store.set_passphrase_hash("ALPHA", "$argon2id$new")
    account = store.get("alpha")
    assert account is not None and account.passphrase_hash == "$argon2id$new"
    with pytest.raises(UnknownAccount):
        store.set_passphrase_hash("nobody-here", "$argon2id$new")


def check_devices(store: AccountStore) -> None:
    register(store, "alpha")
    laptop = sign_in(store, "alpha", "laptop", NOW)
    phone = sign_in(store, "alpha", "phone", NOW + 1)
    assert [device.label for device in store.devices("alpha")] == ["laptop", "phone"]
    found = store.device_by_token(phone)
    assert found is not None and found.label == "phone" and found.account_key == "alpha"
    assert found.token_hash != phone  # only the hash is kept
    assert store.device_by_token(new_device_token()) is None
    laptop_device = store.device_by_token(laptop)
    assert laptop_device is not None
    assert store.remove_device("alpha", laptop_device.id) and not store.remove_device("alpha", laptop_device.id)
    assert store.device_by_token(laptop) is None  # signed out: its token signs nobody in
    assert store.remove_devices("alpha") == 1 and store.devices("alpha") == []
    assert store.device_by_token(phone) is None


def check_last_seen_moves_forward(store: AccountStore) -> None:
    register(store, "alpha")
    token = sign_in(store, "alpha", now=NOW)
    device = store.device_by_token(token)
    assert device is not None and device.last_seen == NOW
    store.touch_device("alpha", device.id, NOW + 60)
    store.touch_device("alpha", device.id, NOW + 30)  # late and out of order: ignored
    assert [d.last_seen for d in store.devices("alpha")] == [NOW + 60]
    store.touch_device("alpha", "no-such-device", NOW + 90)  # gone: nothing is made
    assert len(store.devices("alpha")) == 1


def check_a_device_needs_an_account(store: AccountStore) -> None:
    register(store, "alpha")
    account = store.get("alpha")
    assert account is not None
    store.remove("alpha")
    with pytest.raises(UnknownAccount):
        store.add_device(new_device(account, "laptop", new_device_token(), NOW))
    assert store.devices("alpha") == []


def check_read_positions_never_go_back(store: AccountStore) -> None:
    register(store, "alpha")
    assert store.read_position("alpha") == 0
    assert store.advance_read_position("alpha", 10) == 10
    assert store.advance_read_position("ALPHA", 4) == 10  # behind: the position stays
    assert store.advance_read_position("alpha", 11) == 11
    assert store.advance_read_position("alpha", 3, room="dev") == 3  # each room has its own
    assert (store.read_position("alpha"), store.read_position("alpha", "dev")) == (11, 3)
    assert store.read_positions("ALPHA") == [ReadPosition("alpha", "dev", 3), ReadPosition("alpha", "general", 11)]
    assert store.read_positions("nobody-here") == []
    with pytest.raises(UnknownAccount):
        store.advance_read_position("nobody-here", 1)


def check_remove_takes_everything(store: AccountStore) -> None:
    register(store, "alpha")
    register(store, "bob")
    token = sign_in(store, "alpha")
    store.advance_read_position("alpha", 50)
    store.remove("Alpha")
    assert store.get("alpha") is None and store.device_by_token(token) is None
    assert [account.name for account in store.accounts()] == ["bob"]
    with pytest.raises(UnknownAccount):
        store.remove("alpha")
    register(store, "a1pha", "$argon2id$fresh")  # the name is free again, and starts afresh
    assert store.read_position("alpha") == 0 and store.devices("alpha") == []


def check_a_rotated_token_replaces_the_spent_one(store: AccountStore) -> None:
    register(store, "alpha")
    first = sign_in(store, "alpha")
    device = store.device_by_token(first)
    assert device is not None
    fresh = new_device_token()
    assert store.rotate_device("ALPHA", device.id, token_hash(fresh), NOW + 60) is True
    assert store.device_by_token(first) is None  # spent
    again = store.device_by_token(fresh)
    assert again is not None and (again.id, again.last_seen) == (device.id, NOW + 60)
    store.remove_device("alpha", device.id)
    assert store.rotate_device("alpha", device.id, token_hash(new_device_token()), NOW) is False
    assert store.device_by_token(fresh) is None


def check_membership_outlives_and_ends_with_part(store: AccountStore) -> None:
    register(store, "alpha")
    register(store, "bob")
    assert store.memberships() == []
    assert store.begin_membership("Alpha", 7, NOW) is True
    assert store.begin_membership("alpha", 20, NOW + 5) is False  # a member already: kept as it was
    assert store.read_position("alpha") == 7
    store.mark_seen("alpha", NOW + 30)
    store.mark_seen("alpha", NOW + 10)  # older: last seen stays
    store.mark_seen("bob", NOW + 10)  # not a member: nothing
    assert store.memberships() == [Membership("alpha", "general", NOW, NOW + 30)]
    assert store.membership("ALPHA") == Membership("alpha", "general", NOW, NOW + 30)
    assert store.membership("bob") is None and store.membership("alpha", "dev") is None
    assert store.memberships("dev") == []
    assert store.end_membership("ALPHA") is True
    assert store.end_membership("alpha") is False
    assert store.memberships() == [] and store.read_position("alpha") == 0  # her read position went with it
    with pytest.raises(UnknownAccount):
        store.begin_membership("nobody-here", 1, NOW)


def check_removing_an_account_ends_its_memberships(store: AccountStore) -> None:
    register(store, "alpha")
    register(store, "bob")
    store.begin_membership("alpha", 1, NOW)
    store.begin_membership("bob", 2, NOW)
    store.remove("alpha")
    assert [membership.name for membership in store.memberships()] == ["bob"]
    register(store, "alpha", "$argon2id$fresh")
    assert [membership.name for membership in store.memberships()] == ["bob"]  # a new account is no member yet


CONTRACT: tuple[Callable[[AccountStore], None], ...] = (
    check_a_rotated_token_replaces_the_spent_one,
    check_membership_outlives_and_ends_with_part,
    check_removing_an_account_ends_its_memberships,
    check_create_and_get,
    check_lookalikes_are_refused,
    check_accounts_listed_by_key,
    check_reset_replaces_the_hash,
    check_devices,
    check_last_seen_moves_forward,
    check_a_device_needs_an_account,
    check_read_positions_never_go_back,
    check_remove_takes_everything,
)
CONTRACT_IDS = [check.__name__.removeprefix("check_") for check in CONTRACT]
