"""Signing in to a registered name, and registering one: the passphrase the client knows or asks for.

A guest never sees any of this: ``join`` succeeds or names its refusal, as before. A
registered name is answered ``passphrase_required`` (or ``bad_passphrase``); the client
then sends the passphrase it knows (``--passphrase-file``, ``$CHAT_PASSPHRASE``, or the one
typed or registered earlier in this session), or, at a terminal, asks for it, hidden.
Piped, there is nobody to ask: the refusal ends the session (exit 1) and says how to give it.

A device token kept for the name (``devices``) goes first instead of the passphrase; every
welcome's new one replaces it before anything else happens. A token refused
(``bad_device_token``: spent, or the device signed out) is forgotten, and the sign-in goes
on with the passphrase as above.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from chat_protocol import SIGN_IN_ERRORS, Welcome

from .connection import Connection, Incoming
from .devices import DeviceKeeper
from .errors import NameRejected

PASSPHRASE_ENV = "CHAT_PASSPHRASE"
HOW_TO_GIVE_IT = f"give its passphrase with --passphrase-file PATH or ${PASSPHRASE_ENV}"

# Asks the person for the passphrase, hidden, having been told why (the refusal); "" gives up on the name.
AskPassphrase = Callable[[NameRejected], Awaitable[str]]


@dataclass
class Keyring:
    """The passphrase this session knows: given, typed, or registered; used again after a reconnection.

    ``devices`` keeps this client's device token (and labels its sign-ins); None: no device at all.
    """

    passphrase: str | None = field(default=None, repr=False)
    devices: DeviceKeeper | None = None

    def token_for(self, name: str) -> str | None:
        return self.devices.token_for(name) if self.devices is not None else None

    @property
    def label(self) -> str | None:
        return self.devices.label if self.devices is not None else None

    def keep(self, name: str, device: str | None, token: str | None) -> None:
        """A welcome's (or ``registered``'s) new token replaces the spent one."""
        if token is not None and self.devices is not None:
            self.devices.keep(name, device, token)

    def forget(self, name: str) -> None:
        if self.devices is not None:
            self.devices.forget(name)


async def sign_in(connection: Connection, name: str, keyring: Keyring, ask: AskPassphrase | None) -> Incoming:
    """Join as ``name``, with the device token kept for it, else the passphrase the keyring holds;
    the passphrase is asked for again while it is wanted.

    Raises NameRejected when the name is refused for another reason, or when a passphrase is
    wanted and there is nobody to ask (``ask`` None) or the person gave up.
    """
    token = keyring.token_for(name)
    passphrase = None if token is not None else keyring.passphrase
    while True:
        try:
            incoming = await connection.join(name, passphrase, device_token=token, device=keyring.label)
        except NameRejected as refusal:
            if refusal.code not in SIGN_IN_ERRORS:
                raise
            if token is not None:  # spent, or this device was signed out: the passphrase from now on
                keyring.forget(name)
                token = None
                if keyring.passphrase is not None:
                    passphrase = keyring.passphrase
                    continue
            if ask is None:
                raise
            passphrase = await ask(refusal)
            if not passphrase:
                raise
            continue
        welcome = incoming.message
        assert isinstance(welcome, Welcome)  # join returns only on a welcome
        keyring.keep(welcome.name, welcome.device, welcome.device_token)
        if passphrase is not None:
            keyring.passphrase = passphrase
        return incoming
