"""Rotating resume tokens across replicas on a real redis-server: a token resumes once, on any replica.

A resume on one replica spends the token everywhere (the take-over entry and the
roster carry the new count); a replica that starts later knows the count from the
roster; ``chat-tracker rotate-key --redis-url`` switches every running replica to a
new key while tokens under the old one still resume.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from chat_tracker.core.tokens import ResumeTokens
from chat_tracker.errors import BadToken
from chat_tracker.journal.redis_keys import Keys
from support.redis_server import RedisServer
from support.replicas import Member, join, open_ws, replicas, welcomed
from support.timing import UNIT
from support.tracker import StartTracker

pytestmark = pytest.mark.anyio


async def _resume(url: str, token: str, epoch: str, after: int) -> tuple[Member, dict[str, Any]]:
    """ann back on a new connection to ``url``: the member and the tracker's answer (``resumed`` or ``error``)."""
    back = Member(await open_ws(url), "ann")
    await back.wait_for(lambda f: f["type"] == "hello", "hello")
    await back.send(type="resume", token=token, epoch=epoch, after=after)
    return back, await back.wait_for(lambda f: f["type"] in ("resumed", "error"), "the answer")


async def test_a_token_spent_on_one_replica_is_refused_on_the_others_and_on_a_late_one(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    first, second = replicas(start_tracker, redis_server, 2, "--resume-grace", "30")
    witness = await join(second.url, "bob")
    ann = await join(first.url, "ann")
    welcome = welcomed(ann)
    assert welcome is not None
    epoch, after = welcome["epoch"], welcome["seq"]
    # The second replica knows ann once it has read her join (a client resuming sooner gets resume_expired).
    await witness.wait_for(lambda f: f["type"] == "joined" and f["name"] == "ann", "ann's join, on the other replica")
    moved, answer = await _resume(second.url, welcome["token"], epoch, after)
    assert answer["type"] == "resumed" and answer["token"] != welcome["token"], answer
    assert await ann.closed_with() == 4010  # the first replica has read the take-over
    stale, refused = await _resume(first.url, welcome["token"], epoch, after)
    assert (refused["type"], refused["code"]) == ("error", "resume_bad_token"), refused
    await stale.close()
    back, again = await _resume(first.url, answer["token"], epoch, after)
    assert again["type"] == "resumed", again
    assert await moved.closed_with() == 4010
    (late,) = replicas(start_tracker, redis_server, 1, "--resume-grace", "30")
    stale, refused = await _resume(late.url, answer["token"], epoch, after)
    assert refused["type"] == "error" and refused["code"] == "resume_bad_token", refused
    await stale.close()
    latest, third = await _resume(late.url, again["token"], epoch, after)
    assert third["type"] == "resumed", third
    await latest.send(type="message", text="on the late replica", id="a1")
    await latest.wait_for(lambda f: f.get("id") == "a1", "the echo")
    for member in (back, latest, witness):
        await member.close()


def _redis_key(redis_server: RedisServer) -> bytes:
    value = redis_server.client().hget(Keys().room, "key")
    assert isinstance(value, bytes)
    return bytes.fromhex(value.decode())


def _made_under(key: bytes, epoch: str, token: str) -> bool:
    try:
        ResumeTokens(key, epoch).check(token)
    except BadToken:
        return False
    return True


async def test_rotate_key_in_redis_switches_running_replicas_and_old_tokens_still_resume(
    redis_server: RedisServer, start_tracker: StartTracker
) -> None:
    trackers = replicas(start_tracker, redis_server, 2, "--resume-grace", "30")
    ann = await join(trackers[0].url, "ann")
    welcome = welcomed(ann)
    assert welcome is not None
    old_key = _redis_key(redis_server)
    assert _made_under(old_key, welcome["epoch"], welcome["token"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    command = [sys.executable, "-m", "chat_tracker", "rotate-key", "--redis-url", redis_server.url]
    subprocess.run(command, env=env, timeout=4 * UNIT, check=True, capture_output=True)
    new_key = _redis_key(redis_server)
    assert new_key != old_key
    for tracker in trackers:
        await asyncio.to_thread(tracker.wait_for_output, "resume key was rotated", 2 * UNIT)
    ann.ws.transport.abort()  # her connection drops: she comes back on the other replica
    assert await ann.closed_with() == 1006
    back, answer = await _resume(trackers[1].url, welcome["token"], welcome["epoch"], welcome["seq"])
    assert answer["type"] == "resumed", answer
    assert _made_under(new_key, answer["epoch"], answer["token"])
    assert not _made_under(old_key, answer["epoch"], answer["token"])
    await back.send(type="message", text="under the new key", id="a1")
    await back.wait_for(lambda f: f.get("id") == "a1", "the echo")
    await back.close()
