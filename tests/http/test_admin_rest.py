"""Moderation on a real tracker: /admin over httpx, its effect on the target, on bystanders and on chat.log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from chat_protocol import Announcement, Bye, ChatMessage, Error, Moderation
from chat_tracker.storage.chatlog import parse_line
from support.admin import ADMIN, ADMIN_ENV, admin
from support.peers import json_member, json_peer, plain_member, until_type
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, tracker_command

pytestmark = pytest.mark.anyio


def logged(tracker: RunningTracker) -> list[tuple[str, str, str]]:
    return [(e.kind, e.name, e.text) for e in map(parse_line, tracker.log_lines())]


async def test_moderation_is_off_without_the_admin_password(tracker: RunningTracker) -> None:
    """No admin secret: every /admin path is 404, even with the room password."""
    for method, path in (("POST", "/admin/kick"), ("GET", "/admin/bans"), ("DELETE", "/admin/bans/x")):
        answer = await admin(tracker, method, path, {"name": "alpha"}, secret=PASSWORD)
        assert answer.status_code == 404 and "moderation is off" in answer.json()["detail"]


def test_the_admin_password_must_differ_from_the_room_password(tmp_path: Path) -> None:
    """The same secret for both: refuses to start, exit 2, one line."""
    env = {**os.environ, "TRACKER_PASSWORD": PASSWORD, "TRACKER_ADMIN_PASSWORD": PASSWORD}
    done = subprocess.run(
        tracker_command(tmp_path), env=env, capture_output=True, text=True, timeout=4 * UNIT, check=False
    )
    assert done.returncode == 2
    assert done.stderr == "chat-tracker: error: the admin password must differ from the room password\n"


async def test_kick_removes_the_member_with_4011_and_everyone_sees_it(start_tracker: Any) -> None:
    tracker = start_tracker(env=ADMIN_ENV)
    async with (
        json_member(tracker.url, PASSWORD, "alpha") as (alpha, _),
        plain_member(tracker.url, PASSWORD, "beta") as beta,
    ):
        answer = await admin(tracker, "POST", "/admin/kick", {"name": "ALPHA", "reason": "spamming"})
        assert answer.status_code == 200 and answer.json()["name"] == "alpha"
        code, seen = await alpha.closed()
        assert code == 4011
        notice = next(m for m in seen if isinstance(m, Moderation))
        assert (notice.action, notice.name, notice.reason) == ("kick", "alpha", "spamming")
        assert isinstance(seen[-1], Bye) and seen[-1].reason == "kicked"
        lines = await beta.lines(2)
        assert lines == [
            "* alpha was removed by a moderator: spamming",
            "* alpha left the chat (removed by a moderator)",
        ]
        missing = await admin(tracker, "POST", "/admin/kick", {"name": "nobody"})
        assert missing.status_code == 404 and "no member named 'nobody'" in missing.json()["detail"]
    kinds = logged(tracker)
    assert ("kick", "alpha", '{"reason":"spamming"}') in kinds and ("leave", "alpha", "kicked") in kinds


async def test_mute_refuses_messages_until_lifted(start_tracker: Any) -> None:
    tracker = start_tracker(env=ADMIN_ENV)
    async with (
        json_member(tracker.url, PASSWORD, "alpha") as (alpha, _),
        plain_member(tracker.url, PASSWORD, "beta") as beta,
    ):
        answer = await admin(tracker, "POST", "/admin/mute", {"name": "alpha", "seconds": 60, "reason": "cool off"})
        assert answer.status_code == 200 and answer.json()["until"]
        muted = await until_type(alpha, Moderation)
        assert (muted.action, muted.seconds) == ("mute", 60.0)
        await alpha.send(type="message", text="can anyone hear me", id="m1")
        refused = await until_type(alpha, Error)
        assert refused.code == "muted" and refused.id == "m1" and "until" in refused.message
        assert (await beta.line()).startswith("* alpha is muted for 60 s")
        await beta.send("and me?")  # bystanders are not muted
        await admin(tracker, "POST", "/admin/mute", {"name": "alpha", "seconds": 0})
        assert (await until_type(alpha, Moderation)).seconds == 0.0
        await alpha.send(type="message", text="back")
        assert (await until_type(alpha, ChatMessage)).text in ("and me?", "back")
    texts = [text for kind, _, text in logged(tracker) if kind == "msg"]
    assert "can anyone hear me" not in texts and "back" in texts


async def test_bans_by_name_and_address_survive_a_sigkill_and_can_be_lifted(start_tracker: Any, tmp_path: Any) -> None:
    data_dir = tmp_path / "banned"
    tracker = start_tracker(env=ADMIN_ENV, data_dir=data_dir)
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        made = await admin(tracker, "POST", "/admin/ban", {"name": "alpha", "reason": "trolling"})
        assert made.status_code == 200
        ban_id = made.json()["id"]
        code, seen = await alpha.closed()
        assert code == 4012 and isinstance(seen[-1], Bye) and seen[-1].reason == "banned"
    bad = await admin(tracker, "POST", "/admin/ban", {"name": "alpha", "address": "127.0.0.1"})
    assert bad.status_code == 422
    tracker.stop(signal.SIGKILL)
    tracker = start_tracker(env=ADMIN_ENV, data_dir=data_dir)
    listed = (await admin(tracker, "GET", "/admin/bans")).json()["bans"]
    assert [(b["id"], b["name"], b["until"]) for b in listed] == [(ban_id, "alpha", None)]
    async with json_peer(tracker.url, PASSWORD) as peer:
        await peer.recv()  # hello
        await peer.send(type="join", name="A1pha")  # a lookalike
        refused = await until_type(peer, Error)
        assert refused.code == "banned"
    assert (await admin(tracker, "DELETE", f"/admin/bans/{ban_id}")).json() == {"id": ban_id, "lifted": True}
    assert (await admin(tracker, "DELETE", f"/admin/bans/{ban_id}")).status_code == 404
    async with json_member(tracker.url, PASSWORD, "alpha"):
        pass
    timed = await admin(tracker, "POST", "/admin/ban", {"address": "127.0.0.1", "seconds": 60})
    assert timed.json()["until"] is not None
    async with json_peer(tracker.url, PASSWORD) as peer:
        code, seen = await peer.closed()
        assert code == 4012 and isinstance(seen[-1], Error) and seen[-1].code == "banned"


async def test_announce_reaches_everyone_and_is_logged(start_tracker: Any) -> None:
    tracker = start_tracker(env=ADMIN_ENV)
    async with (
        json_member(tracker.url, PASSWORD, "alpha") as (alpha, _),
        plain_member(tracker.url, PASSWORD, "beta") as beta,
    ):
        answer = await admin(tracker, "POST", "/admin/announce", {"text": "maintenance at noon"})
        assert answer.status_code == 200
        assert (await until_type(alpha, Announcement)).text == "maintenance at noon"
        assert await beta.line() == "* Announcement: maintenance at noon"
        assert (await admin(tracker, "POST", "/admin/announce", {"text": ""})).status_code == 422
    assert ("announce", "-", "maintenance at noon") in logged(tracker)


async def test_wrong_admin_guesses_are_throttled_and_never_logged(start_tracker: Any) -> None:
    tracker = start_tracker(env=ADMIN_ENV)
    for guess in range(3):
        answer = await admin(tracker, "GET", "/admin/bans", secret=f"guess {guess}")
        assert answer.status_code == 401
    started = time.monotonic()
    refused = await admin(tracker, "GET", "/admin/bans")  # the right one, inside the delay: refused unchecked
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert time.monotonic() - started < 0.4 * UNIT  # at once, not parked
    await asyncio.sleep(0.6)  # the announced delay (0.5 s) passes: a wall-clock rule, not synchronisation
    assert not any(ADMIN in line for line in tracker.output) and not any(ADMIN in line for line in tracker.log_lines())
    assert (await admin(tracker, "GET", "/admin/bans", secret=PASSWORD)).status_code == 401  # not the room's
    await asyncio.sleep(1.1)  # that 4th failure closed the address for 1 s
    assert (await admin(tracker, "GET", "/admin/bans")).json() == {"bans": []}


async def test_mutes_and_bans_expire_on_time_and_a_mute_survives_a_sigkill(start_tracker: Any, tmp_path: Path) -> None:
    """A 2 s ban and a 60 s mute: the mute is still in force after a SIGKILL; the ban lets the name in once over."""
    data_dir = tmp_path / "expiry"
    tracker = start_tracker(env=ADMIN_ENV, data_dir=data_dir)
    async with json_member(tracker.url, PASSWORD, "alpha"):
        assert (await admin(tracker, "POST", "/admin/mute", {"name": "alpha", "seconds": 60})).status_code == 200
    tracker.stop(signal.SIGKILL)
    tracker = start_tracker(env=ADMIN_ENV, data_dir=data_dir)
    async with json_member(tracker.url, PASSWORD, "Alpha") as (alpha, _):
        await alpha.send(type="message", text="still muted?")
        assert (await until_type(alpha, Error)).code == "muted"  # the mute belongs to the name, and it was kept
    made = await admin(tracker, "POST", "/admin/ban", {"name": "beta", "seconds": 2})
    ended = time.time() + 2
    assert made.status_code == 200
    refused = 0
    while True:  # try to join as beta until the ban has run out (each try is refused until then)
        async with json_peer(tracker.url, PASSWORD) as peer:
            await peer.recv()  # hello
            await peer.send(type="join", name="beta")
            answer = await peer.recv()
        if not isinstance(answer, Error):
            break
        assert answer.code == "banned" and time.time() < ended + UNIT
        refused += 1
    assert refused >= 1 and time.time() >= ended - 0.1
    assert (await admin(tracker, "GET", "/admin/bans")).json() == {"bans": []}
