"""The tracker's side of accounts: looks a joiner's name up, checks passphrases, registers names.

The session asks (``core/signin.py``'s ``CheckAccount``, ``CreateAccount``); the ``/ws``
driver awaits this desk and hands the answer back. Every store call and every Argon2id
hash or verify runs off the event loop (``asyncio.to_thread``): a sign-in costs tens of
milliseconds of one core, which must not stall everyone's delivery.

Wrong passphrases are throttled as wrong room passwords are (``core/ratelimit.AuthThrottle``),
twice over: per account (many addresses guessing one name) and per address (one address
guessing many names). A guess either throttle would not admit is refused unchecked, at
once, and costs no hash. Passphrases are never logged; a wrong one is logged by account
and address, once a minute each.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time

from chat_protocol import NameRefused
from chat_protocol.accounts import MAX_PASSPHRASE_CHARS
from chat_tracker.core.accounts import AccountStore, check_passphrase, new_account
from chat_tracker.core.addresses import address_key
from chat_tracker.core.passphrases import hash_passphrase, verify_passphrase
from chat_tracker.core.ratelimit import AuthThrottle, Wait, WarnLimiter
from chat_tracker.core.signin import GUEST, AccountChecked, RegistrationDone, Verdict
from chat_tracker.errors import AccountRefused
from chat_tracker.journal.redis_accounts import RedisAccounts
from chat_tracker.service.settings import Settings
from chat_tracker.storage.accounts_db import SqliteAccounts

log = logging.getLogger("chat_tracker")


class Registration(enum.Enum):
    """Who may create accounts (``--registration``)."""

    OPEN = "open"  # any member, for the name it is using
    ADMIN = "admin"  # only operators (``chat-tracker accounts add``, /admin/accounts)
    OFF = "off"  # nobody new; existing accounts still sign in


def open_account_store(settings: Settings) -> AccountStore:
    """The accounts of this tracker: ``accounts.db`` in the data dir, or, for replicas, Redis (one set for all)."""
    if settings.redis_url is None:
        return SqliteAccounts(settings.data_dir)
    return RedisAccounts(settings.redis_url, settings.redis_password, settings.redis_prefix)


class AccountDesk:
    """Answers a session's account questions; ``store`` None: no accounts (every name is a guest's)."""

    def __init__(
        self,
        store: AccountStore | None,
        registration: Registration,
        throttles: tuple[AuthThrottle, AuthThrottle],
        warnings: WarnLimiter,
    ) -> None:
        self.store = store
        self.registration = registration
        self.by_account, self.by_address = throttles
        self.warnings = warnings
        self.sign_ins = 0
        self.wrong = 0
        self.registered = 0

    @property
    def kept(self) -> bool:
        """Whether names are looked up among accounts before a join."""
        return self.store is not None

    async def check(self, address: str, name: str, passphrase: str | None) -> AccountChecked:
        """Guest, passphrase required, signed in, wrong, or throttled (refused unchecked)."""
        if self.store is None:
            return AccountChecked(Verdict.GUEST, name)
        account = await asyncio.to_thread(self.store.get, name)
        if account is None:
            return AccountChecked(GUEST.verdict, name)
        if passphrase is None:
            return AccountChecked(Verdict.PASSPHRASE_REQUIRED, account.name)
        keys = (account.key, address_key(address))
        wait = self._refusal(*keys)
        if wait is not None:
            return AccountChecked(Verdict.THROTTLED, account.name, wait)
        fits = len(passphrase) <= MAX_PASSPHRASE_CHARS  # longer was never accepted: no hash to spend on it
        if fits and await asyncio.to_thread(verify_passphrase, account.passphrase_hash, passphrase):
            self.by_account.succeeded(keys[0])
            self.by_address.succeeded(keys[1])
            self.sign_ins += 1
            return AccountChecked(Verdict.SIGNED_IN, account.name)
        self._wrong(account.name, address, *keys)
        return AccountChecked(Verdict.BAD_PASSPHRASE, account.name)

    async def register(self, name: str, passphrase: str) -> RegistrationDone:
        """Make ``name`` an account with ``passphrase``, if registration is open and the name free."""
        if self.store is None or self.registration is not Registration.OPEN:
            return RegistrationDone(code="registration_closed", message=self._closed_message())
        try:
            check_passphrase(passphrase)
            passphrase_hash = await asyncio.to_thread(hash_passphrase, passphrase)
            await asyncio.to_thread(self.store.create, new_account(name, passphrase_hash, time.time()))
        except (AccountRefused, NameRefused) as refusal:
            return RegistrationDone(code=refusal.code, message=str(refusal))
        self.registered += 1
        log.info("%s registered their name", name)
        return RegistrationDone(name=name)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def _closed_message(self) -> str:
        if self.registration is Registration.ADMIN:
            return "only the tracker's operators create accounts here"
        return "this tracker does not take new accounts"

    def _refusal(self, account_key: str, address: str) -> Wait | None:
        waits = [w for w in (self.by_account.admit(account_key), self.by_address.admit(address)) if w is not None]
        return max(waits, key=lambda wait: wait.seconds) if waits else None

    def _wrong(self, name: str, address: str, account_key: str, address_key_: str) -> None:
        self.wrong += 1
        self.by_account.failed(account_key)
        self.by_address.failed(address_key_)
        if self.warnings.should_warn("passphrase wrong", f"{account_key} {address_key_}", time.monotonic()):
            log.warning("Wrong passphrase for %s from %s (logged once a minute per account and address)", name, address)
