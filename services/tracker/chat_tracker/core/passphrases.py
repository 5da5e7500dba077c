"""Passphrases kept as Argon2id hashes (argon2-cffi): pure computation, but slow on purpose.

The parameters are OWASP's (Password Storage Cheat Sheet, "Argon2id with a minimum
configuration of 19 MiB of memory, an iteration count of 2, and 1 degree of
parallelism"): m=19456 KiB, t=2, p=1. One hash or verify costs tens of milliseconds of
one core (docs/operations.md, "Accounts store", has this machine's figure), so the
service layer runs these off the event loop (``asyncio.to_thread``); the length
bound of ``core/accounts.py`` is checked first, so a peer cannot have megabytes hashed.

The encoded hash carries its parameters: a hash made under weaker ones still verifies,
and ``needs_rehash`` says to store a new one after the next good sign-in.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

OWASP_MEMORY_KIB = 19_456
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1
HASH_BYTES = 32
SALT_BYTES = 16

_HASHER = PasswordHasher(
    time_cost=OWASP_TIME_COST,
    memory_cost=OWASP_MEMORY_KIB,
    parallelism=OWASP_PARALLELISM,
    hash_len=HASH_BYTES,
    salt_len=SALT_BYTES,
    type=Type.ID,
)


def hash_passphrase(passphrase: str) -> str:
    """The encoded Argon2id hash of ``passphrase`` (``$argon2id$v=19$m=19456,t=2,p=1$...``), with a fresh salt."""
    return _HASHER.hash(passphrase)


def verify_passphrase(passphrase_hash: str, passphrase: str) -> bool:
    """Whether ``passphrase`` is the one hashed; argon2 compares in constant time. A broken hash verifies nothing."""
    try:
        return _HASHER.verify(passphrase_hash, passphrase)
    except (VerificationError, InvalidHashError):  # VerifyMismatchError is a VerificationError
        return False


def needs_rehash(passphrase_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's: rehash after the next good sign-in."""
    try:
        return _HASHER.check_needs_rehash(passphrase_hash)
    except InvalidHashError:
        return True
