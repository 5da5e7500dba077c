"""Accounts: a registered name, its devices and how far it has read, and what a store of them offers.

An account is a name nobody else may take, lookalikes included: it is stored under the
name's key (``chat_protocol.name_key``, the same folding the room uses for names that
are online), so "alpha", "ALPHA" and "a1pha" are one account. Each device that signs in
gets a token of its own; the store keeps only the token's SHA-256, so a copy of the
store signs nobody in. A read position is the last seq an account has seen in a room
(the default room is ``general``; a room is a string so more rooms fit later); it only
moves forward.

Records and rules only (no I/O): the stores are ``storage/accounts_db.py`` (SQLite in
the data dir) and ``journal/redis_accounts.py`` (``--redis-url``); the passphrase's
Argon2id hashing is ``core/passphrases.py``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from chat_protocol import check_name, name_key
from chat_protocol.accounts import MAX_PASSPHRASE_CHARS, MIN_PASSPHRASE_CHARS  # one statement of the bounds
from chat_tracker.errors import PassphraseTooLong, PassphraseTooShort

DEFAULT_ROOM = "general"
TOKEN_BYTES = 32  # a device token's randomness (256 bits), before URL-safe base64
DEVICE_ID_BYTES = 8
MAX_DEVICES = 20  # per account: a new sign-in beyond this signs out the device seen longest ago


@dataclass(frozen=True)
class Account:
    """A registered name. ``key`` is its lookalike-folded identity; ``name`` the spelling it was registered in."""

    name: str
    key: str
    created: float
    passphrase_hash: str = field(repr=False)  # Argon2id's encoded hash: never printed


@dataclass(frozen=True)
class Device:
    """One place an account signs in from, with its own token (only the token's SHA-256 is kept)."""

    id: str
    account_key: str
    label: str
    created: float
    last_seen: float
    token_hash: str = field(repr=False)


@dataclass(frozen=True)
class Membership:
    """An account's membership of ``room``: it outlives her connections and ends only when she parts.

    ``since`` is when it began, ``last_seen`` when she was last online there; her read
    position is kept beside it (``ReadPosition``) and goes with it.
    """

    name: str
    room: str
    since: float
    last_seen: float


@dataclass(frozen=True)
class ReadPosition:
    """The last seq the account has seen in ``room``."""

    account_key: str
    room: str
    seq: int


def new_account(name: str, passphrase_hash: str, now: float) -> Account:
    """The account for ``name``. Raises chat_protocol's NameRefused (invalid, reserved) as the room does."""
    check_name(name)
    return Account(name=name, key=name_key(name), created=now, passphrase_hash=passphrase_hash)


def check_passphrase(passphrase: str) -> str:
    """Return ``passphrase`` if its length is allowed; raise PassphraseTooShort or PassphraseTooLong."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise PassphraseTooShort(MIN_PASSPHRASE_CHARS)
    if len(passphrase) > MAX_PASSPHRASE_CHARS:
        raise PassphraseTooLong(MAX_PASSPHRASE_CHARS)
    return passphrase


def new_device_token() -> str:
    """A fresh device token, given to the device once and kept by the store only as ``token_hash``."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the store keeps of a token: SHA-256 is enough for 256 random bits (no guessing to slow down)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_device(account: Account, label: str, token: str, now: float) -> Device:
    """A device of ``account`` signed in with ``token`` at ``now``."""
    return Device(
        id=secrets.token_hex(DEVICE_ID_BYTES),
        account_key=account.key,
        label=label,
        created=now,
        last_seen=now,
        token_hash=token_hash(token),
    )


class AccountStore(Protocol):
    """Where accounts, devices and read positions live: SQLite in the data dir, or Redis for replicas.

    Every method blocks (a file or a socket): the service layer calls them off the event
    loop (``asyncio.to_thread``); ``chat-tracker accounts`` calls them directly. A name
    argument may be any spelling of the account's name: it is looked up by its key. A store
    that cannot be used raises AccountStoreError (SQLite: a lock held past its timeout, a
    full disk) or redis-py's errors (``journal/redis_client.REDIS_ERRORS``: Redis unreachable).
    """

    def create(self, account: Account) -> None:
        """Store a new account. Raises AccountExists when its key (a lookalike) is registered."""

    def get(self, name: str) -> Account | None:
        """The account registered under ``name``'s key, or None."""

    def accounts(self) -> list[Account]:
        """Every account, by key."""

    def remove(self, name: str) -> None:
        """Remove the account with its devices and read positions. Raises UnknownAccount."""

    def set_passphrase_hash(self, name: str, passphrase_hash: str) -> None:
        """Replace the account's passphrase hash (a reset, or a rehash). Raises UnknownAccount."""

    def add_device(self, device: Device) -> None:
        """Store a device of an existing account. Raises UnknownAccount."""

    def devices(self, name: str) -> list[Device]:
        """The account's devices, oldest first (none for an unknown account)."""

    def remove_device(self, name: str, device_id: str) -> bool:
        """Sign one device out; False when the account has no such device."""

    def remove_devices(self, name: str) -> int:
        """Sign every device of the account out; how many there were."""

    def device_by_token(self, token: str) -> Device | None:
        """The device signed in with ``token`` (compared by its hash), or None."""

    def touch_device(self, name: str, device_id: str, now: float) -> None:
        """Record that the device was seen at ``now`` (a device that is gone is left so)."""

    def rotate_device(self, name: str, device_id: str, new_token_hash: str, now: float) -> bool:
        """The device's token is spent: only ``new_token_hash``'s token signs it in now. False if it is gone."""

    def read_position(self, name: str, room: str = DEFAULT_ROOM) -> int:
        """The last seq the account has seen in ``room``; 0 before any."""

    def read_positions(self, name: str) -> list[ReadPosition]:
        """The account's position in every room it has read in, by room (the welcome's unread counts)."""

    def advance_read_position(self, name: str, seq: int, room: str = DEFAULT_ROOM) -> int:
        """Move the position to ``seq`` unless it is already further; the position now. Raises UnknownAccount."""

    def begin_membership(self, name: str, seq: int, now: float, room: str = DEFAULT_ROOM) -> bool:
        """Make ``name`` a member of ``room`` having read up to ``seq``; False if she was one already (kept)."""

    def membership(self, name: str, room: str = DEFAULT_ROOM) -> Membership | None:
        """``name``'s membership of ``room``, if she is a member."""

    def end_membership(self, name: str, room: str = DEFAULT_ROOM) -> bool:
        """``name`` parts ``room``: her membership and read position there go. False if she was not a member."""

    def memberships(self, room: str = DEFAULT_ROOM) -> list[Membership]:
        """Every member of ``room``, by name key."""

    def mark_seen(self, name: str, now: float, room: str = DEFAULT_ROOM) -> None:
        """``name`` was online in ``room`` at ``now`` (last seen only moves forward; nothing if not a member)."""

    def close(self) -> None:
        """Let go of the file or the connection."""
