"""The tracker's side of accounts: looks a joiner's name up, checks passphrases, registers names.

The session asks (``core/signin.py``'s ``CheckAccount``, ``CreateAccount``); the ``/ws``
driver awaits this desk and hands the answer back. Every store call and every Argon2id
hash or verify runs off the event loop: store calls through ``asyncio.to_thread``, a sign-in's
check and every Argon2id hash in ``hashing.py``'s threads, below the loop in priority: a sign-in
costs tens of milliseconds of one core, which must not stall everyone's delivery.

Wrong passphrases are throttled as wrong room passwords are (``core/ratelimit.AuthThrottle``),
twice over: per account (many addresses guessing one name) and per address (one address
guessing many names). A guess either throttle would not admit is refused unchecked, at
once, and costs no hash. Passphrases are never logged; a wrong one is logged by account
and address, once a minute each.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import time
from dataclasses import dataclass

from chat_protocol import NameRefused, name_key
from chat_protocol.accounts import MAX_PASSPHRASE_CHARS
from chat_protocol.rooms import ROOM_PREFIX
from chat_tracker.core.accounts import (
    MAX_DEVICES,
    Account,
    AccountStore,
    Device,
    check_passphrase,
    new_account,
    new_device,
    new_device_token,
    token_hash,
)
from chat_tracker.core.addresses import address_key
from chat_tracker.core.direct import DIRECT_PREFIX
from chat_tracker.core.passphrases import hash_passphrase, verify_passphrase
from chat_tracker.core.ratelimit import AuthThrottle, Wait, WarnLimiter
from chat_tracker.core.signin import GUEST, AccountChecked, CheckAccount, RegistrationDone, Verdict
from chat_tracker.errors import AccountRefused, UnknownAccount
from chat_tracker.journal.redis_accounts import RedisAccounts
from chat_tracker.service.hashing import HashingPool
from chat_tracker.service.settings import Settings
from chat_tracker.storage.accounts_db import SqliteAccounts

log = logging.getLogger("chat_tracker")


@dataclass(frozen=True)
class AccountSummary:
    """What an operator's list shows of one account."""

    name: str
    created: float
    devices: int
    last_seen: float | None  # the latest of its devices'; None before any device


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
        self.hashing = HashingPool()

    @property
    def kept(self) -> bool:
        """Whether names are looked up among accounts before a join."""
        return self.store is not None

    async def check(self, address: str, request: CheckAccount) -> AccountChecked:
        """Guest, passphrase required, signed in, wrong, or throttled (refused unchecked).

        Everything off the loop is one trip (``_check_now``): with many sign-ins at once, each is
        done in the order it came, rather than each step of all of them queueing behind the others.
        """
        if self.store is None:
            return AccountChecked(Verdict.GUEST, request.name)
        keys = (name_key(request.name), address_key(address))
        if request.passphrase is not None or request.device_token is not None:
            wait = self._refusal(*keys)
            if wait is not None:  # refused unchecked: no hash spent, only the lookup that says it is an account
                account = await asyncio.to_thread(self.store.get, request.name)
                if account is None:
                    return AccountChecked(GUEST.verdict, request.name)
                return AccountChecked(Verdict.THROTTLED, account.name, wait)
        checked = await self.hashing.run(functools.partial(self._check_now, request))
        if checked.verdict is Verdict.SIGNED_IN:
            self.by_account.succeeded(keys[0])
            self.by_address.succeeded(keys[1])
            self.sign_ins += 1
        elif checked.verdict in (Verdict.BAD_PASSPHRASE, Verdict.BAD_DEVICE_TOKEN):
            self._wrong(checked.name, address, *keys)
        return checked

    def _check_now(self, request: CheckAccount) -> AccountChecked:
        """The lookup, the passphrase's Argon2id verify or the token's rotation, the device, the read position."""
        store = self._required()
        account = store.get(request.name)
        if account is None:
            return AccountChecked(GUEST.verdict, request.name)
        if request.device_token is not None:
            device = store.device_by_token(request.device_token)
            fresh = new_device_token()
            if device is None or device.account_key != account.key:
                return AccountChecked(Verdict.BAD_DEVICE_TOKEN, account.name)
            if not store.rotate_device(account.name, device.id, token_hash(fresh), time.time()):
                return AccountChecked(Verdict.BAD_DEVICE_TOKEN, account.name)  # signed out meanwhile
            return self._signed_in(store, account, device.id, fresh)
        if request.passphrase is None:
            return AccountChecked(Verdict.PASSPHRASE_REQUIRED, account.name)
        fits = len(request.passphrase) <= MAX_PASSPHRASE_CHARS  # longer was never accepted: no hash to spend on it
        if not (fits and verify_passphrase(account.passphrase_hash, request.passphrase)):
            return AccountChecked(Verdict.BAD_PASSPHRASE, account.name)
        if request.device is None:  # a connection that cannot keep a token (plain text): no device
            return self._signed_in(store, account, None, None)
        token = new_device_token()
        device = new_device(account, request.device, token, time.time())
        self._add_device(device)
        return self._signed_in(store, account, device.id, token)

    def _add_device(self, device: Device) -> None:
        """Add ``device``; beyond MAX_DEVICES, the one seen longest ago is signed out."""
        store = self._required()
        store.add_device(device)
        devices = store.devices(device.account_key)
        for stale in sorted(devices, key=lambda d: d.last_seen)[: max(0, len(devices) - MAX_DEVICES)]:
            store.remove_device(device.account_key, stale.id)

    @staticmethod
    def _signed_in(store: AccountStore, account: Account, device: str | None, token: str | None) -> AccountChecked:
        read = store.read_position(account.name) if store.membership(account.name) is not None else None
        rooms = tuple(
            (p.room, p.seq) for p in store.read_positions(account.name) if p.room[:1] in (ROOM_PREFIX, DIRECT_PREFIX)
        )
        return AccountChecked(
            Verdict.SIGNED_IN, account.name, read=read, device=device, device_token=token, rooms=rooms
        )

    # --- a member's own devices ---------------------------------------------------------

    async def devices(self, name: str) -> list[Device]:
        return await asyncio.to_thread(self._required().devices, name)

    async def sign_out_device(self, name: str, device_id: str) -> bool:
        return await asyncio.to_thread(self._required().remove_device, name, device_id)

    async def register(self, name: str, passphrase: str, device: str | None = None) -> RegistrationDone:
        """Make ``name`` an account with ``passphrase``, if registration is open and the name free.

        With ``device`` (a label), the registering connection becomes the account's first device.
        """
        if self.store is None or self.registration is not Registration.OPEN:
            return RegistrationDone(code="registration_closed", message=self._closed_message())
        try:
            check_passphrase(passphrase)
            passphrase_hash = await self.hashing.run(functools.partial(hash_passphrase, passphrase))
            account = new_account(name, passphrase_hash, time.time())
            await asyncio.to_thread(self.store.create, account)
        except (AccountRefused, NameRefused) as refusal:
            return RegistrationDone(code=refusal.code, message=str(refusal))
        self.registered += 1
        log.info("%s registered their name", name)
        if device is None:
            return RegistrationDone(name=name)
        token = new_device_token()
        made = new_device(account, device, token, time.time())
        await asyncio.to_thread(self._add_device, made)
        return RegistrationDone(name=name, device=made.id, device_token=token)

    # --- the operators' side (/admin/accounts; ``chat-tracker accounts`` uses the store directly) ---

    async def accounts(self) -> list[AccountSummary]:
        """Every account, with its devices' count and when one was last seen."""
        return await asyncio.to_thread(self._summaries)

    async def add(self, name: str, passphrase: str) -> Account:
        """An operator creates an account, whatever ``--registration`` says. Raises AccountRefused, NameRefused."""
        check_passphrase(passphrase)
        passphrase_hash = await self.hashing.run(functools.partial(hash_passphrase, passphrase))
        account = new_account(name, passphrase_hash, time.time())
        await asyncio.to_thread(self._required().create, account)
        log.info("An operator registered %s", account.name)
        return account

    async def remove(self, name: str) -> tuple[Account, int]:
        """Remove the account named ``name`` (any spelling) and its devices; the account and how many devices."""
        store, account = await self._existing(name)
        devices = await asyncio.to_thread(store.remove_devices, account.name)
        await asyncio.to_thread(store.remove, account.name)
        log.info("An operator removed the account %s", account.name)
        return account, devices

    async def reset(self, name: str, passphrase: str, sign_out: bool) -> tuple[Account, int]:
        """A new passphrase (and, with ``sign_out``, every device signed out); the account, devices signed out."""
        check_passphrase(passphrase)
        store, account = await self._existing(name)
        passphrase_hash = await self.hashing.run(functools.partial(hash_passphrase, passphrase))
        await asyncio.to_thread(store.set_passphrase_hash, account.name, passphrase_hash)
        signed_out = await asyncio.to_thread(store.remove_devices, account.name) if sign_out else 0
        log.info("An operator reset the passphrase of %s", account.name)
        return account, signed_out

    async def sign_out(self, name: str) -> tuple[Account, int]:
        """Sign every device of the account out; the account and how many."""
        store, account = await self._existing(name)
        return account, await asyncio.to_thread(store.remove_devices, account.name)

    def _required(self) -> AccountStore:
        if self.store is None:
            raise UnknownAccount("(this tracker keeps no accounts)")
        return self.store

    async def _existing(self, name: str) -> tuple[AccountStore, Account]:
        store = self._required()
        account = await asyncio.to_thread(store.get, name)
        if account is None:
            raise UnknownAccount(name)
        return store, account

    def _summaries(self) -> list[AccountSummary]:
        store = self._required()
        summaries = []
        for account in store.accounts():
            devices = store.devices(account.name)
            last_seen = max((device.last_seen for device in devices), default=None)
            summaries.append(AccountSummary(account.name, account.created, len(devices), last_seen))
        return summaries

    def close(self) -> None:
        self.hashing.close()
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
            log.warning(
                "Wrong passphrase or device token for %s from %s (logged once a minute per account and address)",
                name,
                address,
            )
