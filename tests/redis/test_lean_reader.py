"""The replicas' lean blocked reader on a real Redis: as an ACL user, in a db, over a unix socket, it reads
exactly what redis-py's pipeline reads, and a blocked read returns as soon as an entry is added. The writer's
lean ``APPEND`` call answers as redis-py's script does, and loads the script again into a Redis that lost it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

import redis
from chat_tracker.journal.redis_client import BLOCK_MS
from chat_tracker.journal.redis_keys import Keys, control_of, entries_of, event_of
from chat_tracker.journal.redis_reader import LeanReader, LeanScript, Page, PageReader, RedisPyReader, ScriptCall
from chat_tracker.journal.redis_scripts import APPEND, append_call, event_request
from support.redis_server import POLL_SECONDS, RedisServer, add_events, event, running_redis
from support.timing import UNIT

pytestmark = pytest.mark.anyio

REDIS_PASSWORD = "lean-secret-41d2"
READER_PASSWORD = "reader-secret-90ab"
KEYS = Keys()


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis with a password, a unix socket, and a user ``reader`` who may only select a db and read (HGET, XREAD)."""
    for server in running_redis(tmp_path / "locked", requirepass=REDIS_PASSWORD, unixsocket=tmp_path / "r.sock"):
        with server.client() as admin:
            admin.acl_setuser("reader", enabled=True, passwords=[f"+{READER_PASSWORD}"], keys=["*"])
            admin.execute_command("ACL", "SETUSER", "reader", "+hget", "+xread", "+select")
        yield server


async def both_read(url: str, password: str | None, after: str) -> tuple[bytes | None, Page]:
    """The lean reader's epoch and page after ``after``, asserted equal to redis-py's."""
    lean: PageReader = LeanReader(url, password)
    reference: PageReader = RedisPyReader(url, password)
    try:
        read = await lean.read_page(KEYS.room, {KEYS.events: after})
        assert read == await reference.read_page(KEYS.room, {KEYS.events: after})
    finally:
        await lean.aclose()
        await reference.aclose()
    return read


async def test_an_acl_user_reads_the_room_of_a_db_as_redis_py_does(locked_redis: RedisServer) -> None:
    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{locked_redis.port}/3"
    add_events(url, [event(seq) for seq in (1, 2, 3)], epoch="db-three")
    with redis.Redis.from_url(url) as admin:
        admin.xadd(KEYS.events, {"t": "0", "e": '{"c":"away","o":1,"r":2}'}, id="3-1")
    epoch, [(stream, entries)] = await both_read(
        f"redis://reader@127.0.0.1:{locked_redis.port}/3", READER_PASSWORD, "1-0"
    )
    assert (epoch, stream) == (b"db-three", KEYS.events.encode())
    (_, _, second), (_, _, third), (_, sub, away) = entries_of(entries)
    assert [event_of(2, second).text, event_of(3, third).text] == ["message 2", "message 3"]
    assert (sub, control_of(away)) == (1, {"c": "away", "o": 1, "r": 2})


async def test_over_a_unix_socket_with_the_password_and_a_db_in_the_query(
    locked_redis: RedisServer, tmp_path: Path
) -> None:
    url = f"unix://{tmp_path / 'r.sock'}?db=2"
    with redis.Redis(unix_socket_path=str(tmp_path / "r.sock"), db=2, password=REDIS_PASSWORD) as admin:
        admin.hset(KEYS.room, "epoch", "db-two")
        admin.xadd(KEYS.events, {"t": "1.5", "e": '{"k":"msg","n":"ann","x":"by the socket"}'}, id="1-0")
    epoch, [(_stream, [(entry_id, fields)])] = await both_read(url, REDIS_PASSWORD, "0-0")
    assert (epoch, entry_id, event_of(1, fields).text) == (b"db-two", b"1-0", "by the socket")


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + UNIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(POLL_SECONDS)


def blocked_in_xread(server: RedisServer) -> bool:
    with server.client() as client:
        return any("b" in entry.get("flags", "") for entry in client.client_list())


async def test_a_blocked_read_returns_as_soon_as_an_entry_comes(redis_server: RedisServer) -> None:
    add_events(redis_server.url, [event(1)], epoch="e")
    reader = LeanReader(redis_server.url, None)
    try:
        assert await reader.read_page(KEYS.room, {KEYS.events: "1-0"}) == (b"e", [])  # the block ran out
        started = time.monotonic()
        read = asyncio.create_task(reader.read_page(KEYS.room, {KEYS.events: "1-0"}))
        await until(lambda: blocked_in_xread(redis_server), "the read to block in Redis")
        add_events(redis_server.url, [event(2, "woke it")], epoch="e")
        _epoch, [(_stream, entries)] = await read
        assert time.monotonic() - started < BLOCK_MS / 1000, "the read waited out its block"
        assert [event_of(seq, fields).text for seq, _sub, fields in entries_of(entries)] == ["woke it"]
    finally:
        await reader.aclose()


async def appended(script: ScriptCall, number: int, text: str, epoch: str = "e", replica: int = 1) -> object:
    """The answer to ``replica``'s ``APPEND`` call numbered ``number`` logging one message, or the error's text."""
    names, args = append_call(KEYS, epoch, replica, number, [event_request(event(0, text), replica)])
    try:
        return await script(keys=names, args=args)
    except ResponseError as error:
        return f"{type(error).__name__}: {error}"


async def test_the_lean_script_answers_as_redis_py_s_and_loads_itself_again(redis_server: RedisServer) -> None:
    with redis_server.client() as admin:
        admin.hset(KEYS.room, mapping={"epoch": "e", "seq": 0})
        admin.hset(KEYS.replicas, "1", "0")
    lean = LeanScript(redis_server.url, None, APPEND)
    client = aioredis.Redis.from_url(redis_server.url)
    reference: ScriptCall = client.register_script(APPEND)
    try:
        assert [await appended(lean, 1, "one"), await appended(reference, 2, "two")] == [[1], [2]]
        assert await appended(lean, 2, "again") == await appended(reference, 2, "again") == b"DUP"
        assert await appended(lean, 3, "elsewhere", epoch="x") == await appended(reference, 3, "x", epoch="x")
        assert str(await appended(lean, 3, "elsewhere", epoch="x")).startswith("ResponseError: EPOCH")
        # Redis sends a one-word error_reply as "ERR FENCED": raised as redis-py raises it, for the journal to drop
        fenced = [await appended(script, 3, "unregistered", replica=2) for script in (lean, reference)]
        assert fenced == ["ResponseError: FENCED"] * 2
        with redis_server.client() as admin:
            admin.script_flush()
        assert await appended(lean, 3, "three") == [3]  # NOSCRIPT: sent the script, asked again
        with redis_server.client() as admin:
            texts = [event_of(seq, fields).text for seq, _sub, fields in entries_of(admin.xrange(KEYS.events))]
        assert texts == ["one", "two", "three"]
    finally:
        await lean.aclose()
        await client.aclose()
