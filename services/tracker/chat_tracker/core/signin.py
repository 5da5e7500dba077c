"""Signing in and registering, as a session sees them: what it asks the adapter to do, and the answers.

The session never touches the account store or a hash. Looking a name up, checking a
passphrase (Argon2id, off the event loop) and creating an account are I/O and CPU the
adapter carries out (``service/accounts.py``): the session returns a ``CheckAccount`` or a
``CreateAccount`` action and is told the outcome (``Session.account_checked``,
``Session.registration_done``). While one is under way the session reads nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chat_tracker.core.ratelimit import Wait


@dataclass(frozen=True)
class CheckAccount:
    """Action: is ``name`` an account? If it is, check ``passphrase`` (None: none given yet) or ``device_token``.

    ``device``: the label of the device signing in with its passphrase, which gets a token of its own;
    None when the connection cannot keep one (the plain-text dialect).
    """

    name: str
    passphrase: str | None
    device_token: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class CreateAccount:
    """Action: make ``name`` (the member's own, held by this connection) an account with ``passphrase``.

    ``device``: a label, when this connection is to become a device of the account (JSON).
    """

    name: str
    passphrase: str
    device: str | None = None


class Verdict(enum.Enum):
    GUEST = "guest"  # no account has this name (or a lookalike of it): join as a guest
    SIGNED_IN = "signed_in"  # an account, and the right passphrase
    PASSPHRASE_REQUIRED = "passphrase_required"  # an account, and no passphrase given
    BAD_PASSPHRASE = "bad_passphrase"
    BAD_DEVICE_TOKEN = "bad_device_token"  # a token that signs nobody in under this name
    THROTTLED = "throttled"  # too many wrong passphrases for this account or from this address: not checked


@dataclass(frozen=True)
class AccountChecked:
    """The answer to ``CheckAccount``. ``name``: the account's own spelling; ``wait``: when THROTTLED."""

    verdict: Verdict
    name: str = ""
    wait: Wait | None = None
    read: int | None = None  # SIGNED_IN and a member already: her read position (her welcome catches her up)
    device: str | None = None  # SIGNED_IN from a device: its id
    device_token: str | None = None  # ... and the token its next sign-in takes (the one it used is spent)
    rooms: tuple[tuple[str, int], ...] = ()  # SIGNED_IN: her other rooms (core/rooms.py) and her read position in each


@dataclass(frozen=True)
class RegistrationDone:
    """The answer to ``CreateAccount``: ``name`` registered, or refused with an error ``code`` and ``message``."""

    name: str = ""
    code: str = ""
    message: str = ""
    device: str | None = None
    device_token: str | None = None

    @property
    def ok(self) -> bool:
        return not self.code


GUEST = AccountChecked(Verdict.GUEST)
