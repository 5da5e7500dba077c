"""Accounts' rules: names as the room folds them, the passphrase's bounds, device tokens, Argon2id hashes."""

from __future__ import annotations

import hashlib
import math

import pytest
from argon2 import PasswordHasher

from chat_protocol import InvalidName, ReservedName, name_key
from chat_protocol.accounts import MAX_PASSPHRASE_CHARS, MIN_PASSPHRASE_CHARS
from chat_tracker.core.accounts import (
    TOKEN_BYTES,
    check_passphrase,
    new_account,
    new_device,
    new_device_token,
    token_hash,
)
from chat_tracker.core.passphrases import (
    OWASP_MEMORY_KIB,
    OWASP_PARALLELISM,
    OWASP_TIME_COST,
    hash_passphrase,
    needs_rehash,
    verify_passphrase,
)
from chat_tracker.errors import PassphraseTooLong, PassphraseTooShort

NOW = 1_800_000_000.0
MANY = 100  # tokens drawn: a repeat among them would mean no randomness to speak of


@pytest.mark.parametrize("spelling", ["alpha", "ALPHA", "a1pha", "alp.ha", "Al_pha", "alpha-"])
def test_an_account_is_keyed_as_the_room_keys_names(spelling: str) -> None:
    """Lookalikes of a registered name are the same account: the room's own folding, not a second one."""
    account = new_account(spelling, "hash", NOW)
    assert account.name == spelling
    assert account.key == name_key(spelling) == new_account("alpha", "hash", NOW).key


@pytest.mark.parametrize(
    ("name", "refusal", "code"),
    [
        ("admin", ReservedName, "name_reserved"),
        ("r00t", ReservedName, "name_reserved"),
        ("no spaces", InvalidName, "name_invalid"),
        ("", InvalidName, "name_invalid"),
        ("x" * 33, InvalidName, "name_invalid"),
    ],
)
def test_names_the_room_refuses_cannot_be_registered(name: str, refusal: type[Exception], code: str) -> None:
    with pytest.raises(refusal) as refused:
        new_account(name, "hash", NOW)
    assert getattr(refused.value, "code", None) == code


def test_passphrase_bounds() -> None:
    """At least MIN characters (not bytes: "é" is one), at most MAX so nobody has megabytes hashed."""
    assert check_passphrase("é" * MIN_PASSPHRASE_CHARS) == "é" * MIN_PASSPHRASE_CHARS
    assert check_passphrase("x" * MAX_PASSPHRASE_CHARS) == "x" * MAX_PASSPHRASE_CHARS
    with pytest.raises(PassphraseTooShort) as short:
        check_passphrase("x" * (MIN_PASSPHRASE_CHARS - 1))
    assert short.value.code == "passphrase_too_short" and str(MIN_PASSPHRASE_CHARS) in short.value.message
    with pytest.raises(PassphraseTooLong) as long:
        check_passphrase("x" * (MAX_PASSPHRASE_CHARS + 1))
    assert long.value.code == "passphrase_too_long"


def test_device_tokens_are_random_and_kept_only_as_their_hash() -> None:
    tokens = {new_device_token() for _ in range(MANY)}
    assert len(tokens) == MANY
    token = tokens.pop()
    assert len(token) == math.ceil(TOKEN_BYTES * 4 / 3)  # every random byte is there, in unpadded URL-safe base64
    device = new_device(new_account("alpha", "hash", NOW), "laptop", token, NOW)
    assert device.token_hash == hashlib.sha256(token.encode()).hexdigest() == token_hash(token)
    assert token not in repr(device) and device.token_hash not in repr(device)
    assert (device.account_key, device.created, device.last_seen) == ("alpha", NOW, NOW)


def test_secrets_stay_out_of_reprs() -> None:
    account = new_account("alpha", "$argon2id$secret-part", NOW)
    assert "secret-part" not in repr(account) and "secret-part" not in str(account)


def test_argon2id_with_owasps_parameters() -> None:
    encoded = hash_passphrase("correct horse")
    prefix = f"$argon2id$v=19$m={OWASP_MEMORY_KIB},t={OWASP_TIME_COST},p={OWASP_PARALLELISM}$"
    assert encoded.startswith(prefix) and (OWASP_MEMORY_KIB, OWASP_TIME_COST) == (19_456, 2)
    assert "correct horse" not in encoded
    assert hash_passphrase("correct horse") != encoded  # a fresh salt each time


def test_verify_accepts_only_the_passphrase() -> None:
    encoded = hash_passphrase("correct horse")
    assert verify_passphrase(encoded, "correct horse")
    assert not verify_passphrase(encoded, "correct horsE")
    assert not verify_passphrase(encoded, "")
    assert not verify_passphrase("not a hash", "correct horse")  # a broken stored hash signs nobody in


def test_a_hash_under_weaker_parameters_verifies_and_asks_for_a_rehash() -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=8_192, parallelism=1).hash("correct horse")
    assert verify_passphrase(weaker, "correct horse")
    assert needs_rehash(weaker)
    assert not needs_rehash(hash_passphrase("correct horse"))
    assert needs_rehash("not a hash")
