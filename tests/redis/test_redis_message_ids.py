"""A member's message ids are kept in Redis: a resend is logged once whichever replica gets it (issue 24).

docs/protocol.md (Resuming): a message whose id was already logged for this session is not logged
again; the sender gets the first one's echo, with its original seq. Replicas keep each member's
ids in Redis, so this holds when the resend reaches another replica than the first copy did, and
whichever of the two copies Redis gets first (a replica cut off from Redis writes its pending
copies when it is back, maybe after the member resent them elsewhere: the nemesis' seeds 13 and 21).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import redis
from chat_tracker.core.events import LEAVE, MESSAGE, Event
from chat_tracker.core.room.requests import RECENT_IDS
from chat_tracker.journal.redis_keys import Keys
from chat_tracker.journal.redis_scripts import APPEND, Request, append_call, event_request, first_logged
from support.archiver import StartArchiver
from support.checked_member import CheckedMember, read_chat_log
from support.nemesis_load import until
from support.redis_server import RedisServer
from support.replicas import replicas
from support.timing import UNIT
from support.tracker import RunningTracker, StartTracker

pytestmark = pytest.mark.anyio

EPOCH = "epoch-ids"
ANN = 1_000_001  # a member id of replica 1's span, as a replica gives them


class Replica:
    """One replica's side of ``APPEND``: numbered calls of requests, as ``RedisJournal`` makes them."""

    def __init__(self, client: redis.Redis, number: int) -> None:
        self.client, self.number, self.calls = client, number, 0

    def append(self, *requests: Request) -> list[Any]:
        self.calls += 1
        keys, args = append_call(Keys(), EPOCH, self.number, self.calls, requests)
        results: list[Any] = self.client.eval(APPEND, len(keys), *keys, *args)
        return results


def message(msg_id: str, text: str = "hello", origin: int = ANN) -> Request:
    return event_request(Event(0, 0.0, MESSAGE, "ann", text, origin, (), msg_id), replica=1)


@pytest.fixture
def room(redis_server: RedisServer) -> redis.Redis:
    """A room in Redis with replicas 1 and 2 registered, as ``OPEN`` and ``REGISTER`` leave it."""
    client = redis_server.client()
    keys = Keys()
    client.hset(keys.room, mapping={"epoch": EPOCH, "seq": 0})
    client.hset(keys.replicas, mapping={"1": "{}", "2": "{}"})
    return client


def logged_texts(client: redis.Redis) -> list[str]:
    entries: Any = client.xrange(Keys().events)
    return [json.loads(fields[b"e"])["x"] for _id, fields in entries]


def test_a_copy_written_after_the_resend_on_another_replica_is_not_logged(room: redis.Redis) -> None:
    # Seeds 13 and 21: the member resent on replica 2 while replica 1 still held its first copy.
    first, second = Replica(room, 2), Replica(room, 1)
    (seq,) = first.append(message("m-1"))
    (late,) = second.append(message("m-1"))
    assert logged_texts(room) == ["hello"]
    original = first_logged(Event(0, 0.0, MESSAGE, "ann", "hello", ANN, (), "m-1"), late)
    assert original is not None and original.seq == seq and original.msg_id == "m-1"
    assert original.time == float(json_time(room, seq))


def json_time(client: redis.Redis, seq: int) -> str:
    entries: Any = client.xrange(Keys().events, min=f"{seq}-0", max=f"{seq}-0")
    return str(entries[0][1][b"t"].decode())


def test_ids_are_per_member_and_a_new_id_is_logged(room: redis.Redis) -> None:
    replica = Replica(room, 1)
    results = replica.append(message("m-1"), message("m-1", origin=ANN + 1), message("m-2"))
    assert all(isinstance(result, int) for result in results), results
    assert logged_texts(room) == ["hello"] * len(results)


def test_a_member_keeps_its_last_ids_only_and_its_leave_forgets_them(room: redis.Redis) -> None:
    replica = Replica(room, 1)
    for number in range(RECENT_IDS + 1):
        replica.append(message(f"m-{number}"))
    ids_key = Keys().message_ids(EPOCH) + str(ANN)
    assert room.hexists(ids_key, "i:m-0") == 0  # the oldest went with the newest over the bound
    assert room.hexists(ids_key, f"i:m-{RECENT_IDS}") == 1
    assert room.hlen(ids_key) <= 2 * RECENT_IDS + 1
    assert room.pttl(ids_key) > 0
    room.hset(Keys().names, "ann", f"{ANN}:1")  # ann's join, as a J request leaves it
    replica.append(event_request(Event(0, 0.0, LEAVE, "ann", "quit", ANN), replica=1))
    assert room.exists(ids_key) == 0


async def test_a_resend_on_another_replica_is_answered_with_the_first_echo(
    start_tracker: StartTracker, redis_server: RedisServer, start_archiver: StartArchiver, tmp_path: Path
) -> None:
    archiver = start_archiver(redis_server.url)
    first, second = replicas(start_tracker, redis_server, 2, "--resume-grace", "30")
    ann, bob = CheckedMember("ann"), CheckedMember("bob")
    assert (await ann.join(first.url))["type"] == "welcome"
    assert (await bob.join(second.url))["type"] == "welcome"
    msg_id = await ann.say("only once")
    await until(lambda: msg_id in ann.acked, "the echo of ann's message", 2 * UNIT)
    seq = ann.acked[msg_id]
    first.kill()  # ann's session stays, away, until replica 2 reaps the dead replica's members
    await until(lambda: not ann.connected, "ann's connection closed", 2 * UNIT)
    resumed = await ann.resume(second.url)
    assert resumed["type"] == "resumed", resumed
    echoes = len(own_echoes(ann, msg_id))
    assert ann.ws is not None
    resend = {"type": "message", "text": "only once", "id": msg_id}  # as if its echo had been lost on the way
    await ann.ws.send(json.dumps(resend))
    await until(lambda: len(own_echoes(ann, msg_id)) > echoes, "the answer to ann's resend", 2 * UNIT)
    assert own_echoes(ann, msg_id)[-1] == {"seq": seq, "id": msg_id, "text": "only once"}
    fence = await bob.say("fence")
    await until(lambda: fence in bob.acked and ann.last_seq >= bob.acked[fence], "the fence", 2 * UNIT)
    assert [e["text"] for e in bob.events if e.get("text") == "only once"] == ["only once"]
    await chat_log_reaches(archiver, tmp_path, bob.acked[fence])
    assert [e.text for e in read_chat_log(tmp_path / "data") if e.text == "only once"] == ["only once"]
    await ann.close()
    await bob.close()


def own_echoes(member: CheckedMember, msg_id: str) -> list[dict[str, Any]]:
    return [{"seq": e["seq"], "id": e["id"], "text": e["text"]} for e in member.events if e.get("id") == msg_id]


async def chat_log_reaches(archiver: RunningTracker, tmp_path: Path, seq: int) -> None:
    def written() -> bool:
        return any(entry.seq >= seq for entry in read_chat_log(tmp_path / "data"))

    assert archiver.process.poll() is None
    await until(written, f"chat.log to reach seq {seq}", 4 * UNIT)
