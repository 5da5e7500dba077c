"""Replicas share one set of accounts: a name registered on one replica is refused, unsigned, on every other."""

from __future__ import annotations

import pytest

from support.redis_server import RedisServer
from support.replicas import join, replicas
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
