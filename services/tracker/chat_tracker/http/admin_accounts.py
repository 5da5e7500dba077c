"""``/admin/accounts``: the operators' hand on registered names - list, add, remove, reset, sign out.

Behind the same gate as the rest of ``/admin`` (``admin.AdminGate``: the admin password,
checked before any body is read), and left out of the public schema like it. The same
operations as ``chat-tracker accounts``, on the running tracker's own store (``accounts.db``,
or Redis for replicas), each hash computed off the event loop. Passphrases travel in bodies
only, and are neither logged nor ever answered.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, field_validator

from chat_protocol import NameRefused, check_name
from chat_protocol.accounts import MAX_PASSPHRASE_CHARS, MIN_PASSPHRASE_CHARS
from chat_tracker.core.accounts import Account
from chat_tracker.errors import AccountRefused, UnknownAccount
from chat_tracker.http.admin import ADMIN_PREFIX, PROBLEMS, TrackerDep
from chat_tracker.service.accounts import AccountSummary
from chat_tracker.service.tracker import Tracker

PASSPHRASE = Field(min_length=MIN_PASSPHRASE_CHARS, max_length=MAX_PASSPHRASE_CHARS, description="Never logged")


class AccountIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="The name to register (lookalikes are taken too)")
    passphrase: str = PASSPHRASE

    @field_validator("name")
    @classmethod
    def possible_name(cls, name: str) -> str:
        try:
            check_name(name)
        except NameRefused as refused:
            raise ValueError(f"not a possible name: {refused}") from None
        return name


class ResetIn(BaseModel):
    passphrase: str = PASSPHRASE
    sign_out: bool = Field(default=False, strict=True, description="Also sign every device of the account out")


class AccountOut(BaseModel):
    name: str
    created: str = Field(description="UTC ISO-8601")
    devices: int = Field(description="Devices signed in")
    last_seen: str | None = Field(default=None, description="The latest a device was seen (UTC ISO-8601)")


class AccountsOut(BaseModel):
    accounts: list[AccountOut]


class ChangedOut(BaseModel):
    name: str = Field(description="The account, as it was registered")
    signed_out: int = Field(description="Devices signed out by this change")


router = APIRouter(prefix=ADMIN_PREFIX + "/accounts", responses=PROBLEMS, tags=["accounts"])
TAKEN: dict[int | str, dict[str, Any]] = {409: {"description": "The name, or a lookalike of it, is registered"}}


def _utc(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds")


def _out(summary: AccountSummary) -> AccountOut:
    created = _utc(summary.created) or ""
    return AccountOut(name=summary.name, created=created, devices=summary.devices, last_seen=_utc(summary.last_seen))


def _refused(refusal: AccountRefused | NameRefused) -> HTTPException:
    # Names and passphrases are checked by the models (422): what is left is a registered name or an unknown one.
    return HTTPException(status_code=404 if isinstance(refusal, UnknownAccount) else 409, detail=str(refusal))


@router.get("", response_model=AccountsOut, summary="Every registered name, with its devices")
async def accounts(tracker: TrackerDep) -> AccountsOut:
    return AccountsOut(accounts=[_out(summary) for summary in await tracker.accounts.accounts()])


@router.post(
    "",
    response_model=ChangedOut,
    status_code=201,
    responses=TAKEN,
    summary="Register a name (whatever --registration says)",
)
async def add(body: AccountIn, tracker: TrackerDep) -> ChangedOut:
    try:
        account = await tracker.accounts.add(body.name, body.passphrase)
    except (AccountRefused, NameRefused) as refusal:
        raise _refused(refusal) from None
    return ChangedOut(name=account.name, signed_out=0)


@router.delete("/{name}", response_model=ChangedOut, summary="Remove an account and its devices")
async def remove(name: str, tracker: TrackerDep) -> ChangedOut:
    return await _changed(tracker.accounts.remove(name), tracker, close=True)


@router.post("/{name}/reset", response_model=ChangedOut, summary="A new passphrase (and, if asked, sign out)")
async def reset(name: str, body: ResetIn, tracker: TrackerDep) -> ChangedOut:
    return await _changed(tracker.accounts.reset(name, body.passphrase, body.sign_out), tracker, close=body.sign_out)


@router.delete("/{name}/devices", response_model=ChangedOut, summary="Sign every device of the account out")
async def sign_out(name: str, tracker: TrackerDep) -> ChangedOut:
    return await _changed(tracker.accounts.sign_out(name), tracker, close=True)


async def _changed(change: Awaitable[tuple[Account, int]], tracker: Tracker, close: bool) -> ChangedOut:
    """An operator's change; with ``close``, the account's connections to this tracker are closed too (4015)."""
    try:
        account, signed_out = await change
    except AccountRefused as refusal:
        raise _refused(refusal) from None
    if close:
        tracker.room.sign_out(account.name, None)
    return ChangedOut(name=account.name, signed_out=signed_out)
