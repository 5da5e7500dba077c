"""The lean blocked reader against a Redis played in-process: its handshake, its page, a dead link, a lost one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, BusyLoadingError

from chat_tracker.journal.redis_client import BLOCK_MS, REDIS_ERRORS, ClientRole
from chat_tracker.journal.redis_reader import (
    Address,
    LeanReader,
    RedisPyReader,
    RedisPyStreams,
    blocked_reader,
    stream_reader,
)
from chat_tracker.journal.resp import INCOMPLETE, RespParser
from support.timing import UNIT

pytestmark = pytest.mark.anyio

QUICK = ClientRole(connect_timeout=UNIT, read_timeout=UNIT / 10)  # a dead link found within a tenth of a unit
ANSWERS = {b"AUTH": b"+OK\r\n", b"SELECT": b"+OK\r\n", b"HGET": b"$5\r\nroom1\r\n", b"XREAD": b"*-1\r\n"}
Respond = Callable[[list[bytes]], bytes | None]


@dataclass
class FakeRedis:
    """Answers each command with ``respond(command)`` (None: never answers); remembers every command."""

    respond: Respond
    commands: list[list[bytes]] = field(default_factory=list)
    connections: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    hang_up_on: bytes | None = None  # this command's answer is cut short, and the connection closed

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        parser = RespParser()
        while data := await reader.read(65536):
            parser.feed(data)
            while (words := parser.pop()) is not INCOMPLETE:
                assert isinstance(words, list)
                self.commands.append([bytes(word) for word in words if isinstance(word, bytes)])
                answer = self.respond(self.commands[-1])
                if answer is not None and words[0] == self.hang_up_on:
                    writer.write(answer[: len(answer) // 2])
                    writer.close()
                    return
                if answer is not None:
                    writer.write(answer)
        self.closed.set()
        writer.close()


def plain(words: list[bytes]) -> bytes:
    return ANSWERS[words[0]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeRedis]:
    redis = FakeRedis(plain)
    server = await asyncio.start_server(redis.serve, "127.0.0.1", 0)
    redis.port = server.sockets[0].getsockname()[1]
    yield redis
    server.close()


def test_the_url_says_where_and_who_as_redis_py_reads_it() -> None:
    assert Address.of("redis://reader:p%40ss@cache:7000/3", "from-file") == Address(
        host="cache", port=7000, db=3, username="reader", password="p@ss"
    )
    assert Address.of("redis://cache?db=2", "from-file") == Address(host="cache", db=2, password="from-file")
    assert Address.of("unix:///run/redis.sock?db=1", None) == Address(path="/run/redis.sock", db=1)
    assert Address.of("redis://127.0.0.1:6380", None).where == "127.0.0.1:6380"


def test_tls_is_left_to_redis_py() -> None:
    assert isinstance(blocked_reader("rediss://cache:6380/0", None), RedisPyReader)
    assert isinstance(blocked_reader("redis://cache:6380/0", None), LeanReader)


def test_the_archivers_reads_over_tls_are_left_to_redis_py() -> None:
    client = Redis()
    assert isinstance(stream_reader("rediss://cache:6380/0", None, client, QUICK), RedisPyStreams)
    assert isinstance(stream_reader("redis://cache:6380/0", None, client, QUICK), LeanReader)


ENTRY = b"*2\r\n$3\r\n5-0\r\n*4\r\n$1\r\ne\r\n$2\r\n{}\r\n$1\r\nt\r\n$3\r\n1.5\r\n"


async def test_the_archivers_xread_asks_as_redis_py_would_and_gives_its_page(fake: FakeRedis) -> None:
    """Blocking only when told to; the page is redis-py's: (stream, [(id, {field: value})])."""
    fake.respond = lambda words: b"*1\r\n*2\r\n$4\r\n{c}e\r\n*1\r\n" + ENTRY
    reader = LeanReader(f"redis://127.0.0.1:{fake.port}", None, QUICK)
    try:
        expected = [(b"{c}e", [(b"5-0", {b"e": b"{}", b"t": b"1.5"})])]
        assert await reader.xread({"{c}e": "4-0"}, 100, BLOCK_MS) == expected
        assert await reader.xread({"{c}e": "4-0", "{d}e": "0-0"}, 7) == expected
    finally:
        await reader.aclose()
    assert fake.commands == [
        [b"XREAD", b"COUNT", b"100", b"BLOCK", str(BLOCK_MS).encode(), b"STREAMS", b"{c}e", b"4-0"],
        [b"XREAD", b"COUNT", b"7", b"STREAMS", b"{c}e", b"{d}e", b"4-0", b"0-0"],
    ]


STREAMS_ASKED = [b"STREAMS", b"{c}events", b"{c}nudge:1", b"7-0", b"0-0"]


async def test_a_new_connection_authenticates_selects_its_db_then_reads_the_epoch_and_the_stream(
    fake: FakeRedis,
) -> None:
    reader = LeanReader(f"redis://reader@127.0.0.1:{fake.port}/4", "s3cret")
    try:
        assert await reader.read_page("{c}room", {"{c}events": "7-0", b"{c}nudge:1": "0-0"}) == (b"room1", [])
        assert await reader.read_page("{c}room", {"{c}events": "8-0"}) == (b"room1", [])
    finally:
        await reader.aclose()
    assert fake.connections == 1
    assert fake.commands[:4] == [
        [b"AUTH", b"reader", b"s3cret"],
        [b"SELECT", b"4"],
        [b"HGET", b"{c}room", b"epoch"],
        [b"XREAD", b"COUNT", b"1000", b"BLOCK", str(BLOCK_MS).encode(), *STREAMS_ASKED],
    ]


async def test_a_read_unanswered_past_its_timeout_is_a_dead_link_closed_and_opened_again(fake: FakeRedis) -> None:
    answered = False

    def silent_once(words: list[bytes]) -> bytes | None:
        return ANSWERS[words[0]] if answered or words[0] != b"XREAD" else None

    fake.respond = silent_once
    reader = LeanReader(f"redis://127.0.0.1:{fake.port}", None, QUICK)
    try:
        with pytest.raises(REDIS_ERRORS, match="dead link"):
            await reader.read_page("{c}room", {"{c}events": "0-0"})
        await asyncio.wait_for(fake.closed.wait(), UNIT)
        answered = True
        assert await reader.read_page("{c}room", {"{c}events": "0-0"}) == (b"room1", [])
    finally:
        await reader.aclose()
    assert fake.connections == 2


async def test_a_connection_lost_in_the_middle_of_a_reply_is_a_redis_error_and_the_next_read_reconnects(
    fake: FakeRedis,
) -> None:
    fake.hang_up_on = b"HGET"
    reader = LeanReader(f"redis://127.0.0.1:{fake.port}", None)  # not a timeout: the loss is seen at once
    try:
        with pytest.raises(REDIS_ERRORS, match="lost"):
            await reader.read_page("{c}room", {"{c}events": "0-0"})
        fake.hang_up_on = None
        assert await reader.read_page("{c}room", {"{c}events": "0-0"}) == (b"room1", [])
    finally:
        await reader.aclose()
    assert fake.connections == 2


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        ({b"HGET": b"-LOADING Redis is loading the dataset in memory\r\n"}, BusyLoadingError),
        ({b"AUTH": b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"}, AuthenticationError),
    ],
    ids=["loading", "wrong password"],
)
async def test_error_replies_are_raised_as_redis_py_raises_them(
    fake: FakeRedis, answers: dict[bytes, bytes], error: type[Exception]
) -> None:
    fake.respond = lambda words: answers.get(words[0], ANSWERS[words[0]])
    reader = LeanReader(f"redis://127.0.0.1:{fake.port}", "wrong")
    try:
        with pytest.raises(error):
            await reader.read_page("{c}room", {"{c}events": "0-0"})
    finally:
        await reader.aclose()
    assert issubclass(error, REDIS_ERRORS), "the reader's callers back off and retry on these"


async def test_nobody_listening_is_a_redis_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    reader = LeanReader(f"redis://127.0.0.1:{port}", None, QUICK)
    with pytest.raises(REDIS_ERRORS):
        await reader.read_page("{c}room", {"{c}events": "0-0"})
