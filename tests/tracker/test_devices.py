"""Devices of one account on a real tracker: tokens that sign in once, several connections at once, signing out.

A JSON sign-in with the passphrase makes a device whose token replaces the passphrase next time (and
is spent by that use); two devices connected at once both receive everything, and her presence does
not flicker while one of them stays; a device signed out loses its token and its connection (4015).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chat_protocol import CloseCode
from support.admin import ADMIN_ENV, admin
from support.bots import Bot, connect_json, open_bot
from support.peers import plain_peer
from support.signin import PASSPHRASE, plain_name, register
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, launch_tracker

pytestmark = pytest.mark.anyio


async def sign_in(tracker: RunningTracker, **join: str) -> tuple[Bot, dict[str, Any]]:
    """A JSON connection that joins as alpha with ``join``'s fields (passphrase, device_token, device)."""
    bot = Bot(await connect_json(tracker.url, PASSWORD), "alpha")
    assert (await bot.recv(2 * UNIT))["type"] == "hello"
    await bot.ws.send(json.dumps({"type": "join", "name": "alpha", **join}))
    return bot, await bot.recv(2 * UNIT)


async def test_a_device_token_signs_in_once_and_is_replaced_by_the_next(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "alpha")
        laptop, welcome = await sign_in(tracker, passphrase=PASSPHRASE, device="laptop")
        first_token, device = welcome["device_token"], welcome["device"]
        await laptop.ws.send(json.dumps({"type": "devices"}))
        listed = (await laptop.expect("devices", 2 * UNIT))["devices"]
        assert [(d["id"], d["label"], d["current"]) for d in listed] == [(device, "laptop", True)]
        await laptop.ws.close()
        again, welcome = await sign_in(tracker, device_token=first_token)
        assert (welcome["type"], welcome["device"], welcome["registered"]) == ("welcome", device, True), welcome
        assert welcome["device_token"] != first_token
        await again.ws.close()
        spent, refused = await sign_in(tracker, device_token=first_token)
        assert (refused["type"], refused["code"]) == ("error", "bad_device_token"), refused
        await spent.ws.close()
    finally:
        tracker.kill()
    assert not any(first_token in line for line in tracker.output), "a device token was logged"


async def test_two_devices_at_once_receive_everything_and_her_presence_holds_while_one_stays(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "alpha")
        laptop, _ = await sign_in(tracker, passphrase=PASSPHRASE, device="laptop")
        phone, welcome = await sign_in(tracker, passphrase=PASSPHRASE, device="phone")
        assert welcome["type"] == "welcome" and welcome["name"] == "alpha", welcome
        bob = await open_bot(tracker.url, PASSWORD, "bob")
        await bob.say("hello both")
        for device in (laptop, phone):
            assert (await device.expect("message", 2 * UNIT))["text"] == "hello both"
        await laptop.ws.send(json.dumps({"type": "message", "text": "from the laptop", "id": "m1"}))
        echo = await laptop.expect("message", 2 * UNIT)
        assert (echo["text"], echo["id"]) == ("from the laptop", "m1")
        other = await phone.expect("message", 2 * UNIT)
        assert (other["name"], other["text"], "id" in other) == ("alpha", "from the laptop", False)
        await laptop.ws.close()
        await bob.say("after the laptop left")
        assert (await phone.expect("message", 2 * UNIT))["text"] == "after the laptop left"
        await phone.ws.send(json.dumps({"type": "who"}))
        listed = (await phone.expect("members", 2 * UNIT))["members"]
        assert [(m["name"], m["online"]) for m in listed if m["name"] == "alpha"] == [("alpha", True)]
        await phone.ws.close()
        presence = await bob.expect("presence", 2 * UNIT)  # only once her last connection is gone
        assert (presence["name"], presence["online"]) == ("alpha", False), presence
        await bob.ws.close()
    finally:
        tracker.kill()
    alphas = [line.split(" ", 3)[2:] for line in tracker.log_lines() if " alpha" in line and " msg " not in line]
    offline = [entry for entry in alphas if entry[0] == "leave"]
    assert len(offline) == 2, alphas  # once after registering, once after both devices were gone


async def test_a_device_signed_out_is_closed_and_its_token_dies(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "alpha")
        laptop, first = await sign_in(tracker, passphrase=PASSPHRASE, device="laptop")
        phone, _ = await sign_in(tracker, passphrase=PASSPHRASE, device="phone")
        await phone.ws.send(json.dumps({"type": "sign_out", "device": "no-such-device"}))
        assert (await phone.expect("error", 2 * UNIT))["code"] == "unknown_device"
        await phone.ws.send(json.dumps({"type": "sign_out", "device": first["device"]}))
        assert (await phone.expect("signed_out", 2 * UNIT))["device"] == first["device"]
        assert await laptop.close_code(2 * UNIT) == CloseCode.SIGNED_OUT
        gone, refused = await sign_in(tracker, device_token=first["device_token"])
        assert refused["code"] == "bad_device_token", refused
        await gone.ws.close()
        await phone.ws.close()
    finally:
        tracker.kill()


async def test_plain_text_lists_devices_and_a_part_from_one_connection_ends_them_all(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        await register(tracker, "alpha")
        laptop, _ = await sign_in(tracker, passphrase=PASSPHRASE, device="laptop")
        async with plain_peer(tracker.url) as peer:
            assert "passphrase" in (await plain_name(peer, "alpha"))[0]
            await peer.send(PASSPHRASE)
            assert await peer.line(2 * UNIT) == "Hi alpha, You have been added to the server."
            await peer.lines(4, 2 * UNIT)
            await peer.send("/devices")
            listed = await peer.lines(2, 2 * UNIT)
            assert listed[0].startswith("* Devices signed in to your account (1)") and "laptop" in listed[1], listed
            await peer.send("/part")
            assert "for good" in await peer.line(2 * UNIT)
        bye = await laptop.expect("bye", 2 * UNIT)
        assert bye["reason"] == "part", bye
        assert await laptop.close_code(2 * UNIT) == CloseCode.NORMAL
    finally:
        tracker.kill()
    assert any(line.endswith(" leave alpha part") for line in tracker.log_lines())


async def test_a_ban_of_a_registered_name_signs_out_every_device_and_ends_the_membership(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data", env=ADMIN_ENV)
    try:
        await register(tracker, "alpha")
        laptop, first = await sign_in(tracker, passphrase=PASSPHRASE, device="laptop")
        phone, _ = await sign_in(tracker, passphrase=PASSPHRASE, device="phone")
        banned = await admin(tracker, "POST", "/admin/ban", {"name": "alpha", "seconds": 1, "reason": "spam"})
        assert banned.status_code == 200, banned.text
        assert await laptop.close_code(2 * UNIT) == CloseCode.BANNED
        assert await phone.close_code(2 * UNIT) == CloseCode.BANNED
        listed = (await admin(tracker, "GET", "/admin/accounts")).json()["accounts"]
        assert [(a["name"], a["devices"]) for a in listed] == [("alpha", 0)]  # the account stays, its devices go
        members = await admin(tracker, "GET", "/members", secret=PASSWORD)
        assert "alpha" not in [m["name"] for m in members.json()["members"]]
        spent, refused = await sign_in(tracker, device_token=first["device_token"])
        assert refused["code"] in ("banned", "bad_device_token"), refused
        await spent.ws.close()
    finally:
        tracker.kill()
    assert any(line.endswith(" leave alpha banned") for line in tracker.log_lines())


async def test_registering_with_a_device_label_makes_this_connection_the_first_device(tmp_path: Path) -> None:
    tracker = launch_tracker(tmp_path / "data")
    try:
        first = Bot(await connect_json(tracker.url, PASSWORD), "alpha")
        assert (await first.recv(2 * UNIT))["type"] == "hello"
        await first.ws.send(json.dumps({"type": "join", "name": "alpha"}))
        await first.expect("welcome", 2 * UNIT)
        await first.ws.send(json.dumps({"type": "register", "passphrase": PASSPHRASE, "device": "laptop"}))
        registered = await first.expect("registered", 2 * UNIT)
        assert registered["device"] and registered["device_token"], registered
        phone, _ = await sign_in(tracker, passphrase=PASSPHRASE, device="phone")
        await phone.ws.send(json.dumps({"type": "sign_out", "device": registered["device"]}))
        await phone.expect("signed_out", 2 * UNIT)
        assert await first.close_code(2 * UNIT) == CloseCode.SIGNED_OUT  # the registering tab is a device too
        await phone.ws.close()
    finally:
        tracker.kill()
