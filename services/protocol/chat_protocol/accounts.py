"""Accounts in the protocol: registering the name you chat under, and the passphrase that signs you in as it.

A guest's dialogue is unchanged. A member registers the name she is using with
``register``; from then on nobody else can take that name (or a lookalike of it), and
joining under it takes its passphrase: in JSON the ``join`` frame carries ``passphrase``,
in the plain-text dialect the tracker answers the name with a prompt for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

MIN_PASSPHRASE_CHARS = 8
# A passphrase is hashed (Argon2id) before anything else is known about the peer that sent it:
# the bound keeps what one guess costs the tracker small and fixed.
MAX_PASSPHRASE_CHARS = 1024

PASSPHRASE_PROMPT = "This name is registered. Enter its passphrase..."  # plain dialect; must say "passphrase"

MAX_DEVICE_TOKEN_CHARS = 128  # a token is 43 characters; anything far longer is refused before it is looked up
MAX_DEVICE_LABEL_CHARS = 64


@dataclass(frozen=True)
class Register:
    """Register the name this member is using, with ``passphrase``; answered with ``registered`` or an error."""

    TYPE: ClassVar[str] = "register"
    passphrase: str
    device: str | None = None  # a label: this connection becomes a device of the account (``registered`` says)


@dataclass(frozen=True)
class Registered:
    """``name`` is now an account: nobody else can join under it, and joining under it takes its passphrase."""

    TYPE: ClassVar[str] = "registered"
    name: str
    device: str | None = None  # with ``register``'s ``device``: this connection's device id ...
    device_token: str | None = None  # ... and the token its next sign-in takes instead of the passphrase


@dataclass(frozen=True)
class DeviceInfo:
    """One device signed in to the account: ``current`` is the one asking."""

    id: str
    label: str
    created: str
    last_seen: str
    current: bool = False


@dataclass(frozen=True)
class ListDevices:
    """Ask for the devices signed in to your account; answered with ``devices``."""

    TYPE: ClassVar[str] = "devices"


@dataclass(frozen=True)
class Devices:
    """The devices signed in to your account."""

    TYPE: ClassVar[str] = "devices"
    devices: list[DeviceInfo]


@dataclass(frozen=True)
class SignOut:
    """Sign ``device`` out: its token stops working, and its open connections are closed (4015)."""

    TYPE: ClassVar[str] = "sign_out"
    device: str


@dataclass(frozen=True)
class SignedOut:
    """``device`` is signed out."""

    TYPE: ClassVar[str] = "signed_out"
    device: str


ACCOUNT_ERROR_CODES = (
    "passphrase_required",  # the name is registered: join again with its passphrase
    "bad_passphrase",  # wrong passphrase (throttled per account and per address, as passwords are)
    "passphrase_too_short",
    "passphrase_too_long",
    "registration_closed",  # --registration admin or off
    "already_registered",  # this member's name is an account already
    "bad_device_token",  # a device token that signs nobody in (signed out, used up, or another account's)
    "unknown_device",  # ``sign_out`` of a device the account does not have
    "not_registered",  # history, read positions and devices are a registered member's
)


# ``join`` refusals that ask for the passphrase (again): the connection stays open for another ``join``.
SIGN_IN_ERRORS = frozenset(("passphrase_required", "bad_passphrase", "bad_device_token"))


def passphrase_problem(passphrase: str) -> tuple[str, str] | None:
    """Why ``passphrase`` cannot protect an account (error code, message); None when it can."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        return "passphrase_too_short", f"a passphrase needs at least {MIN_PASSPHRASE_CHARS} characters"
    if len(passphrase) > MAX_PASSPHRASE_CHARS:
        return "passphrase_too_long", f"a passphrase has at most {MAX_PASSPHRASE_CHARS} characters"
    return None


__all__ = [
    "ACCOUNT_ERROR_CODES",
    "MAX_DEVICE_LABEL_CHARS",
    "MAX_DEVICE_TOKEN_CHARS",
    "MAX_PASSPHRASE_CHARS",
    "MIN_PASSPHRASE_CHARS",
    "PASSPHRASE_PROMPT",
    "SIGN_IN_ERRORS",
    "DeviceInfo",
    "Devices",
    "ListDevices",
    "Register",
    "Registered",
    "SignOut",
    "SignedOut",
    "passphrase_problem",
]
