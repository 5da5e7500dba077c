"""Member data stays private: files 0600, and an address ban never shows members the address.

A real tracker on loopback: the files it writes are checked with ``os.stat``; a ban of an
address is made through ``/admin`` with the admin password, and what a plain-text member,
a JSON member, chat.log and ``/log`` see is checked for the address.
"""

from __future__ import annotations

import signal
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat_protocol import Error, Moderation, encode
from support.admin import ADMIN_ENV, admin
from support.peers import json_member, json_peer, plain_member, until_type
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker

pytestmark = pytest.mark.anyio

BANNED = "203.0.113.77"
MEMBER_FILES = ("chat.log", "room.json", "resume.key")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_files_with_member_data_are_0600_and_an_old_0644_one_is_made_so(
    start_tracker: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "private"
    tracker = start_tracker(env=ADMIN_ENV, data_dir=data_dir)
    async with json_member(tracker.url, PASSWORD, "alpha"):
        pass
    assert tracker.stop(signal.SIGTERM) == 0
    for name in MEMBER_FILES:
        assert mode(data_dir / name) == 0o600, name
        (data_dir / name).chmod(0o644)  # as an older version left them
    tracker = start_tracker(env=ADMIN_ENV, data_dir=data_dir)
    for name in MEMBER_FILES:
        assert mode(data_dir / name) == 0o600, f"{name} is made 0600 at start"


async def test_rotated_segments_are_0600(start_tracker: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "rotated"
    tracker = start_tracker("--rotate-bytes", "300", "--compress", data_dir=data_dir)
    async with json_member(tracker.url, PASSWORD, "alpha") as (alpha, _):
        for n in range(12):
            await alpha.send(type="message", text=f"a line long enough to rotate soon, number {n}")
    tracker.stop(signal.SIGTERM)
    segments = [p for p in data_dir.glob("chat.log.*") if not p.name.endswith(".tmp")]
    assert segments, "the log rotated"
    assert {p.name: mode(p) for p in segments} == {p.name: 0o600 for p in segments}


def log_api(tracker: RunningTracker) -> str:
    """``/log`` both ways: the last lines (read from chat.log) and a page after a seq (from the memory ring)."""
    pages = []
    for query in ("lines=100", "after=0&limit=100"):
        answer = httpx.get(f"{tracker.http_url}/log?{query}", auth=("", PASSWORD), timeout=UNIT)
        assert answer.status_code == 200
        pages.append(answer.text)
    return "\n".join(pages)


async def test_an_address_ban_shows_members_no_address_but_the_admin_sees_it_after_a_sigkill(
    start_tracker: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "banned"
    tracker = start_tracker(env=ADMIN_ENV, data_dir=data_dir)
    async with (
        json_member(tracker.url, PASSWORD, "alpha") as (alpha, _),
        plain_member(tracker.url, PASSWORD, "beta") as beta,
    ):
        made = await admin(tracker, "POST", "/admin/ban", {"address": BANNED, "reason": "flood"})
        assert made.status_code == 200 and made.json()["address"] == BANNED  # the admin's own answer names it
        ban_id = made.json()["id"]
        assert await beta.lines(1) == [f"* an address is banned for good (ban {ban_id}): flood"]
        notice = await until_type(alpha, Moderation)
        assert (notice.action, notice.id, notice.reason) == ("ban", ban_id, "flood")
        assert BANNED not in encode(notice)
    assert BANNED not in (data_dir / "chat.log").read_text(encoding="utf-8")
    assert BANNED not in log_api(tracker)
    assert ban_id in log_api(tracker)
    tracker.stop(signal.SIGKILL)  # before any minute's checkpoint: room.json had the address before chat.log's line
    tracker = start_tracker(env=ADMIN_ENV, data_dir=data_dir)
    listed = (await admin(tracker, "GET", "/admin/bans")).json()["bans"]
    assert [(b["id"], b["address"]) for b in listed] == [(ban_id, BANNED)]
    assert mode(data_dir / "room.json") == 0o600


async def test_an_address_ban_made_just_before_a_sigkill_still_refuses_that_address(
    start_tracker: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "refused"
    tracker = start_tracker(env=ADMIN_ENV, data_dir=data_dir)
    made = await admin(tracker, "POST", "/admin/ban", {"address": "127.0.0.1", "reason": "flood"})
    assert made.status_code == 200
    assert "127.0.0.1" not in (data_dir / "chat.log").read_text(encoding="utf-8")
    tracker.stop(signal.SIGKILL)
    tracker = start_tracker(env=ADMIN_ENV, data_dir=data_dir)
    assert "127.0.0.1" not in log_api(tracker)
    async with json_peer(tracker.url, PASSWORD) as peer:
        code, seen = await peer.closed()
        assert code == 4012 and isinstance(seen[-1], Error) and seen[-1].code == "banned"
