"""/admin/accounts on a real tracker: operators list, add, reset and remove registered names; strangers get 401."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.admin import ADMIN_ENV, admin
from support.bots import Bot, connect_json
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, launch_tracker

pytestmark = pytest.mark.anyio

FIRST, SECOND = "correct horse battery", "another long passphrase"


async def join_answer(tracker: RunningTracker, name: str, passphrase: str | None = None) -> str:
    """The type (or error code) of the tracker's answer to a join."""
    bot = Bot(await connect_json(tracker.url, PASSWORD), name)
    try:
        assert (await bot.recv(2 * UNIT))["type"] == "hello"
        body = {"type": "join", "name": name, **({"passphrase": passphrase} if passphrase else {})}
        await bot.ws.send(json.dumps(body))
        answer = await bot.recv(2 * UNIT)
        return str(answer.get("code", answer["type"]))
    finally:
        await bot.ws.close()


async def test_operators_manage_accounts_that_the_running_tracker_honours(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data", "--registration", "admin", env=ADMIN_ENV)
    try:
        assert (
            await admin(tracker, "POST", "/admin/accounts", {"name": "alpha", "passphrase": FIRST})
        ).status_code == 201
        taken = await admin(tracker, "POST", "/admin/accounts", {"name": "ALPHA", "passphrase": FIRST})
        assert taken.status_code == 409, taken.text
        short = await admin(tracker, "POST", "/admin/accounts", {"name": "beta", "passphrase": "short"})
        assert short.status_code == 422
        listed = (await admin(tracker, "GET", "/admin/accounts")).json()["accounts"]
        assert [(a["name"], a["devices"], a["last_seen"]) for a in listed] == [("alpha", 0, None)]
        assert await join_answer(tracker, "alpha") == "passphrase_required"
        assert await join_answer(tracker, "alpha", FIRST) == "welcome"

        reset = await admin(tracker, "POST", "/admin/accounts/A1pha/reset", {"passphrase": SECOND, "sign_out": True})
        assert reset.json() == {"name": "alpha", "signed_out": 1}  # the device its JSON sign-in made
        assert await join_answer(tracker, "alpha", FIRST) == "bad_passphrase"
        assert await join_answer(tracker, "alpha", SECOND) == "welcome"

        assert (await admin(tracker, "DELETE", "/admin/accounts/alpha")).json()["name"] == "alpha"
        assert (await admin(tracker, "DELETE", "/admin/accounts/alpha")).status_code == 404
        assert await join_answer(tracker, "alpha") == "welcome"  # a guest's name again

        stranger = await admin(tracker, "GET", "/admin/accounts", secret=PASSWORD)
        assert stranger.status_code == 401
        schema = (await admin(tracker, "GET", "/admin/openapi.json")).json()
        assert "/admin/accounts/{name}/reset" in schema["paths"]
    finally:
        tracker.kill()
    assert not any(FIRST in line or SECOND in line for line in tracker.output), "a passphrase was logged"
