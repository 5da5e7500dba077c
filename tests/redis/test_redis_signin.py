"""Replicas share one set of accounts: names, memberships, read positions and devices, whichever replica is used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from support.redis_server import RedisServer
from support.replicas import Member, join, open_ws, replicas
from support.signin import until_listed_offline
from support.tracker import StartTracker

pytestmark = pytest.mark.anyio

PASSPHRASE = "correct horse battery"


async def test_a_name_registered_on_one_replica_signs_in_on_another_and_is_refused_there_without(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2)
    owner = await join(first.url, "alpha")
    await owner.send(type="register", passphrase=PASSPHRASE)
    await owner.wait_for(lambda f: f["type"] == "registered", "registered")
    await owner.close()

    impostor = await join(second.url, "ALPHA")
    assert impostor.frames[-1]["type"] == "error" and impostor.frames[-1]["code"] == "passphrase_required"
    await impostor.send(type="join", name="alpha", passphrase=PASSPHRASE)
    welcome = await impostor.wait_for(lambda f: f["type"] == "welcome", "the welcome")
    assert (welcome["name"], welcome["registered"]) == ("alpha", True)
    await impostor.close()
    assert not any(PASSPHRASE in line for line in [*first.output, *second.output])


def echo_of(text: str) -> Callable[[dict[str, Any]], bool]:
    """A check for the message event of ``text`` (a lambda's default argument is not typed)."""
    return lambda frame: frame["type"] == "message" and frame["text"] == text


async def test_replicas_share_memberships_read_positions_and_devices(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2)
    owner = await join(first.url, "alpha")
    await owner.send(type="register", passphrase=PASSPHRASE)
    await owner.wait_for(lambda f: f["type"] == "registered", "registered")
    await owner.close()
    await until_listed_offline(first, "alpha")
    assert (await until_listed_offline(second, "alpha"))["registered"] is True  # every replica lists her offline
    bob = await join(second.url, "bob")
    for text in ("one", "two", "three"):
        await bob.send(type="message", text=text)
        await bob.wait_for(echo_of(text), "the echo")

    laptop = Member(await open_ws(second.url), "alpha")
    await laptop.wait_for(lambda f: f["type"] == "hello", "hello")
    await laptop.send(type="join", name="alpha", passphrase=PASSPHRASE, device="laptop")
    welcome = await laptop.wait_for(lambda f: f["type"] == "welcome", "the welcome")
    assert welcome["unread"] >= 3, welcome
    await laptop.send(type="history", after=welcome["read"], limit=100)
    page = await laptop.wait_for(lambda f: f["type"] == "history_page", "the history page")
    assert [e["text"] for e in page["events"] if e["type"] == "message"] == ["one", "two", "three"]
    await laptop.close()

    again = Member(await open_ws(first.url), "alpha")  # the device's token, on the other replica
    await again.wait_for(lambda f: f["type"] == "hello", "hello")
    await again.send(type="join", name="alpha", device_token=welcome["device_token"])
    back = await again.wait_for(lambda f: f["type"] in ("welcome", "error"), "the welcome")
    assert (back["type"], back["device"]) == ("welcome", welcome["device"]), back
    await again.close()
    await bob.close()
