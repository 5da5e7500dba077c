"""Membership that outlives the connection, on real trackers: offline is not leaving, and nothing missed is lost.

A registered member goes offline (a closed socket, ``exit``, a SIGKILL or a SIGTERM restart of
the tracker) and stays a member: ``/members`` lists her with ``last_seen``, chat.log records her
presence, and when she signs in again - in JSON or in the plain-text dialect - she gets every
event said meanwhile, once and in order, from her read position. ``part`` ends the membership.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from support.bots import Bot, connect_json, open_bot
from support.peers import PlainPeer, plain_peer
from support.signin import PASSPHRASE, joined, members, plain_name, register, until_listed, until_listed_offline
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, launch_tracker

pytestmark = pytest.mark.anyio


async def say_all(bot: Bot, texts: list[str]) -> None:
    """Say each text and wait for its echo: every one is in chat.log when this returns."""
    for text in texts:
        await bot.say(text)
        while (await bot.expect("message", 2 * UNIT))["text"] != text:
            pass


async def all_history(bot: Bot, after: int, until: int) -> list[dict[str, Any]]:
    """Page through ``history`` from ``after`` until seq ``until`` is covered; the events, live frames skipped."""
    events: list[dict[str, Any]] = []
    while after < until:
        await bot.ws.send(json.dumps({"type": "history", "after": after, "limit": 3}))
        page = await bot.expect("history_page", 2 * UNIT)
        assert page["first"] == after + 1 and "gone" not in page, page
        events.extend(page["events"])
        after = page["last"]
    return events


async def signed_in(tracker: RunningTracker, name: str) -> tuple[Bot, dict[str, Any]]:
    bot, welcome = await joined(tracker, name, PASSPHRASE)
    assert welcome["type"] == "welcome" and welcome["registered"] is True, welcome
    return bot, welcome


def restart(tracker: RunningTracker, data: Path, sig: int) -> RunningTracker:
    if sig == signal.SIGKILL:
        tracker.process.send_signal(signal.SIGKILL)
        tracker.process.wait(timeout=2 * UNIT)
    else:
        tracker.stop(sig)
    return launch_tracker(data)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_a_json_member_offline_across_a_restart_pages_through_everything_she_missed(
    tmp_path: Path, sig: int
) -> None:
    data = tmp_path / "data"
    tracker = launch_tracker(data)
    try:
        await register(tracker, "alpha")  # and gone at once: offline, still a member
        entry = await until_listed_offline(tracker, "alpha")
        assert entry["registered"] is True and entry["last_seen"], entry
        bob = await open_bot(tracker.url, PASSWORD, "bob")
        before = [f"before the restart {n}" for n in range(4)]
        await say_all(bob, before)
        tracker = restart(tracker, data, sig)
        carol = await open_bot(tracker.url, PASSWORD, "carol")
        after = [f"after the restart {n}" for n in range(3)]
        await say_all(carol, after)
        alpha, welcome = await signed_in(tracker, "alpha")
        assert welcome["unread"] >= len(before) + len(after), welcome
        missed = await all_history(alpha, welcome["read"], welcome["seq"] - 1)
        said = [event["text"] for event in missed if event["type"] == "message"]
        assert said == before + after  # every one, once, in order
        await alpha.ws.send(json.dumps({"type": "read", "seq": welcome["seq"]}))
        await carol.say("live, after she came back")
        assert (await alpha.expect("message", 2 * UNIT))["text"] == "live, after she came back"
        await alpha.ws.close()
        await bob.ws.close()
        await carol.ws.close()
    finally:
        tracker.kill()
    logged = tracker.log_lines()
    assert any(line.endswith(" join alpha online") for line in logged), logged
    assert any(line.endswith(" leave alpha offline") for line in logged), logged


async def test_read_positions_are_kept_and_a_second_return_has_nothing_unread(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "alpha")
        await until_listed_offline(tracker, "alpha")
        bob = await open_bot(tracker.url, PASSWORD, "bob")
        await say_all(bob, ["one", "two"])
        alpha, welcome = await signed_in(tracker, "alpha")
        assert welcome["unread"] >= 2
        await alpha.ws.send(json.dumps({"type": "read", "seq": welcome["seq"]}))
        await alpha.ws.close()
        await until_listed_offline(tracker, "alpha")
        deadline = time.monotonic() + 2 * UNIT
        while True:  # her read position is written off the event loop: wait until the tracker has it
            again, welcome = await signed_in(tracker, "alpha")
            if welcome["read"] >= welcome["seq"] - 2:  # at most her own offline and online events since
                break
            await again.ws.close()
            assert time.monotonic() < deadline, welcome
        came, went = await bob.expect("presence", 2 * UNIT), await bob.expect("presence", 2 * UNIT)
        assert (came["name"], came["online"], went["name"], went["online"]) == ("alpha", True, "alpha", False)
        await again.ws.close()
        await bob.ws.close()
    finally:
        tracker.kill()


async def test_part_ends_the_membership_and_guests_have_no_history(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "alpha")
        alpha, welcome = await signed_in(tracker, "alpha")
        guest = await open_bot(tracker.url, PASSWORD, "guest")
        await guest.ws.send(json.dumps({"type": "history", "after": 0, "limit": 10}))
        assert (await guest.expect("error", 2 * UNIT))["code"] == "not_registered"
        await guest.ws.send(json.dumps({"type": "history", "after": 0, "before": 3}))
        assert (await guest.expect("error", 2 * UNIT))["code"] == "malformed"
        await alpha.ws.send(json.dumps({"type": "part"}))
        bye = await alpha.expect("bye", 2 * UNIT)
        assert bye["reason"] == "parted", bye
        left = await guest.expect("left", 2 * UNIT)
        assert (left["name"], left["reason"]) == ("alpha", "part"), left
        assert "alpha" not in [m["name"] for m in await members(tracker)]
        back, welcome = await signed_in(tracker, "alpha")  # still her name; a new membership, nothing unread
        assert welcome.get("unread") is None, welcome
        await back.ws.close()
        await guest.ws.close()
    finally:
        tracker.kill()
    assert any(line.endswith(" leave alpha part") for line in tracker.log_lines())


async def test_history_pages_backwards_with_before(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "alpha")
        alpha, welcome = await signed_in(tracker, "alpha")
        texts = [f"m{n}" for n in range(5)]
        await say_all(alpha, texts)
        await alpha.ws.send(json.dumps({"type": "history", "before": welcome["seq"] + 6, "limit": 2}))
        page = await alpha.expect("history_page", 2 * UNIT)
        assert [e["text"] for e in page["events"]] == texts[-2:] and page["more"] is False, page
        assert page["last"] == welcome["seq"] + 5
        await alpha.ws.close()
    finally:
        tracker.kill()


async def plain_sign_in(peer: PlainPeer, name: str) -> None:
    assert "passphrase" in (await plain_name(peer, name))[0]
    await peer.send(PASSPHRASE)
    assert await peer.line(2 * UNIT) == f"Hi {name}, You have been added to the server."


async def rest_of_welcome(peer: PlainPeer, missed: bool) -> list[str]:
    """The plain welcome's lines after its first; with ``missed``, its catch-up through the last line."""
    lines = await peer.lines(4, 2 * UNIT)  # signed in, online now, limits, how to leave
    assert "exit goes offline" in lines[-1], lines
    if not missed:
        return []
    caught_up = [await peer.line(2 * UNIT)]
    while not caught_up[-1].startswith("* That is everything"):
        caught_up.append(await peer.line(2 * UNIT))
    return caught_up


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_a_plain_member_back_after_a_restart_is_shown_what_she_missed(tmp_path: Path, sig: int) -> None:
    data = tmp_path / "data"
    tracker = launch_tracker(data)
    try:
        await register(tracker, "alpha")
        async with plain_peer(tracker.url) as peer:
            await plain_sign_in(peer, "alpha")
            assert await rest_of_welcome(peer, missed=False) == []  # her own offline event is no news to her
            await peer.send("exit")
        await until_listed_offline(tracker, "alpha")
        bob = await open_bot(tracker.url, PASSWORD, "bob")
        await say_all(bob, ["while she was away", "and another"])
        await bob.ws.close()
        tracker = restart(tracker, data, sig)
        async with plain_peer(tracker.url) as peer:
            await plain_sign_in(peer, "alpha")
            caught_up = await rest_of_welcome(peer, missed=True)
            assert caught_up[0].startswith("* While you were away:"), caught_up
            said = [line for line in caught_up if line.startswith("bob: ")]
            assert said == ["bob: while she was away", "bob: and another"], caught_up
            await peer.send("/part")
            assert "for good" in await peer.line(2 * UNIT)
    finally:
        tracker.kill()


async def test_a_member_who_resumes_after_a_sigterm_restart_is_still_registered(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tracker = launch_tracker(data, resume_grace=30)
    try:
        await register(tracker, "alpha")
        alpha, welcome = await signed_in(tracker, "alpha")
        tracker.stop(signal.SIGTERM)
        assert await alpha.close_code(2 * UNIT) == 1012
        tracker = launch_tracker(data, resume_grace=30)
        back = Bot(await connect_json(tracker.url, PASSWORD), "alpha")
        assert (await back.recv(2 * UNIT))["type"] == "hello"
        resume = {"type": "resume", "token": welcome["token"], "epoch": welcome["epoch"], "after": welcome["seq"]}
        await back.ws.send(json.dumps(resume))
        assert (await back.expect("resumed", 2 * UNIT))["name"] == "alpha"
        await until_listed(  # registered: the store said so once it was read at start
            tracker,
            "alpha",
            lambda entry: entry["online"] is True and entry["registered"] is True,
            "online, registered",
        )
        await back.ws.send(json.dumps({"type": "leave"}))
        await back.expect("bye", 2 * UNIT)
        await until_listed_offline(tracker, "alpha")  # offline, still a member: not a guest's leave
    finally:
        tracker.kill()
    assert tracker.log_lines()[-1].endswith(" leave alpha offline"), tracker.log_lines()[-3:]
