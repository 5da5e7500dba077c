"""Signing in to a registered name, and registering one: the passphrase the client knows or asks for.

A guest never sees any of this: ``join`` succeeds or names its refusal, as before. A
registered name is answered ``passphrase_required`` (or ``bad_passphrase``); the client
then sends the passphrase it knows (``--passphrase-file``, ``$CHAT_PASSPHRASE``, or the one
typed or registered earlier in this session), or, at a terminal, asks for it, hidden.
Piped, there is nobody to ask: the refusal ends the session (exit 1) and says how to give it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from chat_protocol import SIGN_IN_ERRORS

from .connection import Connection, Incoming
from .errors import NameRejected

PASSPHRASE_ENV = "CHAT_PASSPHRASE"
HOW_TO_GIVE_IT = f"give its passphrase with --passphrase-file PATH or ${PASSPHRASE_ENV}"

# Asks the person for the passphrase, hidden, having been told why (the refusal); "" gives up on the name.
AskPassphrase = Callable[[NameRejected], Awaitable[str]]


@dataclass
class Keyring:
    """The passphrase this session knows: given, typed, or registered; used again after a reconnection."""

    passphrase: str | None = field(default=None, repr=False)


async def sign_in(connection: Connection, name: str, keyring: Keyring, ask: AskPassphrase | None) -> Incoming:
    """Join as ``name``, with the passphrase the keyring holds; asked for again while it is wanted.

    Raises NameRejected when the name is refused for another reason, or when a passphrase is
    wanted and there is nobody to ask (``ask`` None) or the person gave up.
    """
    passphrase = keyring.passphrase
    while True:
        try:
            incoming = await connection.join(name, passphrase)
        except NameRejected as refusal:
            if refusal.code not in SIGN_IN_ERRORS or ask is None:
                raise
            passphrase = await ask(refusal)
            if not passphrase:
                raise
            continue
        if passphrase is not None:
            keyring.passphrase = passphrase
        return incoming
