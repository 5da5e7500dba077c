"""The blocked read of a replica's streams (the room's epoch and an ``XREAD BLOCK``) and the writer's script call.

Every replica reads every message this way (the default room's journal, ``redis_stream.py``, and
the hub of its other rooms, ``redis_hub.py``), so it is the cost that grows with the replicas.
redis-py's asyncio client spent most of it (streams, pipelines, retries, response callbacks);
``LeanReader`` is a plain asyncio protocol on one socket that sends the two commands in one write
and parses their RESP2 replies (``resp.py``) straight into the page the journal takes: a list of
``(stream, [(entry id, {field: value})])``, as redis-py's ``xread`` gives it.

It connects as redis-py would from the same URL and password (TCP or ``unix://``, AUTH with the
ACL user if the URL names one, SELECT the URL's db) and waits as ``redis_client.JOURNAL`` says: a
connection that takes longer than its connect timeout, or a read longer than the block and the
dead-link allowance, is closed and the caller gets one of ``REDIS_ERRORS`` (it backs off and
calls again, on a new connection). It never retries by itself. TLS (``rediss://``) is left to
redis-py: ``blocked_reader`` gives a ``RedisPyReader`` for it.

The default room's writer sends its ``APPEND`` calls the same way (``LeanScript``, on a connection of
its own: a call waits for Redis's fsync, and the blocked read must not wait behind it). redis-py's
command path (pool, retry wrapper, encoder, RESP3 parser in Python) cost about twice our exchange's
CPU per call, and a replica makes one call every few messages.

The archiver reads every room's stream with the same ``XREAD`` (``stream_reader``: ``StreamReader``,
without the epoch and the block when it asks so): redis-py's parser, an asyncio readline per reply
element, was most of its CPU per message archived.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, unquote, urlparse

import redis.asyncio as aioredis
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    NoPermissionError,
    NoScriptError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chat_tracker.journal.redis_client import BLOCK_MS, JOURNAL, ClientRole, async_client
from chat_tracker.journal.resp import INCOMPLETE, ProtocolError, Reply, ReplyError, RespParser, command

__all__ = [
    "READ_COUNT",
    "LeanConnection",
    "LeanReader",
    "LeanScript",
    "Page",
    "PageReader",
    "RedisPyReader",
    "RedisPyStreams",
    "ScriptCall",
    "StreamReader",
    "blocked_reader",
    "lean_script",
    "page_of",
    "stream_reader",
]

READ_COUNT = 1000  # entries per stream and read: a reader far behind catches up in pages this long
Page = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]  # (stream, [(entry id, fields)]) as XREAD gives
Streams = Mapping[Any, str]  # stream key (str or bytes) -> the last entry id read from it


class PageReader(Protocol):
    async def read_page(self, room: str, streams: Streams) -> tuple[bytes | None, Page]:
        """The room's epoch (None: no room) and the entries after each stream's id (blocks up to BLOCK_MS)."""

    async def aclose(self) -> None: ...


class StreamReader(Protocol):
    """The archiver's ``XREAD``: each stream's entries after its id, as redis-py's ``xread`` gives them."""

    async def xread(self, streams: Streams, count: int, block_ms: int | None = None) -> Page: ...

    async def aclose(self) -> None: ...


class ScriptCall(Protocol):
    """A Lua script's call (redis-py's ``AsyncScript`` or ``LeanScript``): its reply, or a ``RedisError``."""

    async def __call__(self, keys: Sequence[str], args: Sequence[str | int]) -> Any: ...


def blocked_reader(url: str, password: str | None) -> PageReader:
    """The reader for ``url``: the lean one, but for TLS, which redis-py's client does for it."""
    if _over_tls(url):
        return RedisPyReader(url, password)
    return LeanReader(url, password)


class RedisPyReader:
    """The same read through redis-py's pipeline (a TLS connection)."""

    def __init__(self, url: str, password: str | None) -> None:
        self._client: aioredis.Redis = async_client(url, password, JOURNAL)

    async def read_page(self, room: str, streams: Streams) -> tuple[bytes | None, Page]:
        pipe = self._client.pipeline(transaction=False)
        pipe.hget(room, "epoch")
        pipe.xread(cast(Any, streams), count=READ_COUNT, block=BLOCK_MS)
        epoch, page = await pipe.execute()
        return epoch, [(stream, entries) for stream, entries in page or ()]

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass(frozen=True)
class Address:
    """Where a Redis URL points and who to be there: what redis-py's ``from_url`` would make of it."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None  # a unix socket's
    db: int = 0
    username: str | None = None
    password: str | None = None

    @classmethod
    def of(cls, url: str, password: str | None) -> Address:
        """``url``'s address; a password written in it wins over ``password`` (as redis-py has it)."""
        parts = urlparse(url)
        query = {name: values[0] for name, values in parse_qs(parts.query).items() if values}
        unix = parts.scheme == "unix"
        db = query.get("db") or ("" if unix else unquote(parts.path).replace("/", ""))
        return cls(
            host=unquote(parts.hostname) if parts.hostname else "localhost",
            port=parts.port or 6379,
            path=unquote(parts.path) if unix else None,
            db=int(db) if db.isdigit() else 0,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else password,
        )

    @property
    def where(self) -> str:
        """For error messages: never the credentials."""
        return self.path or f"{self.host}:{self.port}"

    def handshake(self) -> list[bytes]:
        """The commands a new connection sends before its first read."""
        commands = []
        if self.password is not None:
            credentials = (self.username, self.password) if self.username else (self.password,)
            commands.append(command("AUTH", *credentials))
        if self.db:
            commands.append(command("SELECT", self.db))
        return commands


def lean_script(url: str, password: str | None, script: str) -> LeanScript | None:
    """``script`` called on a lean connection of its own; None for TLS, which redis-py's client does."""
    return None if _over_tls(url) else LeanScript(url, password, script)


class LeanConnection:
    """One socket to Redis with its own RESP2 parser: commands out, their replies back, as redis-py would connect."""

    def __init__(self, url: str, password: str | None, role: ClientRole = JOURNAL) -> None:
        self.address = Address.of(url, password)
        self._role = role
        self._wire: _Wire | None = None

    async def aclose(self) -> None:
        if self._wire is not None:
            self._wire.close()
            self._wire = None

    async def _call(self, payload: bytes, count: int) -> list[Reply]:
        """Send ``payload`` (``count`` commands) and wait for their replies; any failure closes the connection."""
        wire = self._wire if self._wire is not None and self._wire.open else await self._connect()
        try:
            replies = await wire.exchange(payload, count, self._role.read_timeout)
        except BaseException:
            await self.aclose()
            raise
        _raise_any(replies)
        return replies

    async def _connect(self) -> _Wire:
        loop, address = asyncio.get_running_loop(), self.address
        try:
            async with asyncio.timeout(self._role.connect_timeout):
                if address.path is not None:
                    _, wire = await loop.create_unix_connection(lambda: _Wire(address.where), address.path)
                else:
                    _, wire = await loop.create_connection(lambda: _Wire(address.where), address.host, address.port)
        except TimeoutError:
            raise RedisTimeoutError(f"Timeout connecting to Redis at {address.where}") from None
        except OSError as error:
            raise RedisConnectionError(f"Error connecting to Redis at {address.where}: {error.strerror}") from None
        wire.keep_alive()
        handshake = address.handshake()
        try:
            if handshake:
                _raise_any(await wire.exchange(b"".join(handshake), len(handshake), self._role.read_timeout))
        except BaseException:
            wire.close()
            raise
        self._wire = wire
        return wire


class LeanReader(LeanConnection):
    """``PageReader`` on a socket of its own, with its own RESP2 parser."""

    async def read_page(self, room: str, streams: Streams) -> tuple[bytes | None, Page]:
        epoch, reply = await self._call(command("HGET", room, "epoch") + _xread(streams, READ_COUNT, BLOCK_MS), 2)
        return cast(bytes | None, epoch), await self._page(reply)

    async def xread(self, streams: Streams, count: int, block_ms: int | None = None) -> Page:
        """``StreamReader``'s read: the entries after each stream's id (blocking up to ``block_ms`` if given)."""
        (reply,) = await self._call(_xread(streams, count, block_ms), 1)
        return await self._page(reply)

    async def _page(self, reply: Reply) -> Page:
        try:
            return page_of(reply)
        except (TypeError, ValueError) as error:
            await self.aclose()
            raise RedisConnectionError(f"Redis at {self.address.where} sent no XREAD reply: {error}") from None


class RedisPyStreams:
    """``StreamReader`` through a redis-py client the caller owns (a TLS connection): it closes the client."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def xread(self, streams: Streams, count: int, block_ms: int | None = None) -> Page:
        page: Any = await self._client.xread(cast(Any, streams), count=count, block=block_ms)
        return [(stream, entries) for stream, entries in page or ()]

    async def aclose(self) -> None:
        """Nothing of its own to close."""


def stream_reader(url: str, password: str | None, client: aioredis.Redis, role: ClientRole) -> StreamReader:
    """The archiver's reads: a lean connection of their own, but for TLS, which goes through ``client``."""
    if _over_tls(url):
        return RedisPyStreams(client)
    return LeanReader(url, password, role)


def _over_tls(url: str) -> bool:
    """A ``rediss://`` URL: left to redis-py's client, which speaks TLS."""
    return url.lower().startswith("rediss://")


def _xread(streams: Streams, count: int, block_ms: int | None) -> bytes:
    block: list[bytes | str | int] = ["BLOCK", block_ms] if block_ms is not None else []
    return command("XREAD", "COUNT", count, *block, "STREAMS", *streams.keys(), *streams.values())


class LeanScript(LeanConnection):
    """A Lua script called by its SHA1 (``EVALSHA``) on a connection of its own: the journal's ``APPEND``.

    As redis-py's ``AsyncScript`` does: a Redis that does not know the script (restarted, flushed) is
    sent it (``SCRIPT LOAD``) and asked once more. An error reply raises the class redis-py would raise.
    """

    def __init__(self, url: str, password: str | None, script: str, role: ClientRole = JOURNAL) -> None:
        super().__init__(url, password, role)
        self._script = script
        self._sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[str | int]) -> Reply:
        call = command("EVALSHA", self._sha, len(keys), *keys, *args)
        try:
            (reply,) = await self._call(call, 1)
        except NoScriptError:
            await self._call(command("SCRIPT", "LOAD", self._script), 1)
            (reply,) = await self._call(call, 1)
        return reply


def page_of(reply: Reply) -> Page:
    """XREAD's reply as the journal takes it (nil: the block ran out with nothing new)."""
    if reply is None:
        return []
    if not isinstance(reply, list):
        raise TypeError(f"not an array: {reply!r}"[:100])
    page: Page = []
    for stream_reply in reply:
        stream, entries = cast(list[Any], stream_reply)
        page.append((stream, [(entry_id, _fields(flat)) for entry_id, flat in entries]))
    return page


def _fields(flat: list[bytes] | None) -> dict[bytes, bytes]:
    """An entry's fields, given as ``field value field value ...`` (nil for an entry deleted meanwhile)."""
    if not flat:
        return {}
    pairs = iter(flat)
    return dict(zip(pairs, pairs, strict=True))


def _raise_any(replies: list[Reply]) -> None:
    """The first error reply raised as redis-py raises it (a LOADING Redis, refused credentials: REDIS_ERRORS)."""
    for reply in replies:
        if isinstance(reply, ReplyError):
            raise _error_of(reply.message)


_ERRORS: dict[str, type[RedisError]] = {  # each code redis-py's parser takes off a message, and the class it raises
    "ERR": ResponseError, "LOADING": BusyLoadingError, "NOPERM": NoPermissionError, "NOSCRIPT": NoScriptError,
    "NOAUTH": AuthenticationError, "WRONGPASS": AuthenticationError,
}  # fmt: skip


def _error_of(message: str) -> RedisError:
    """As redis-py raises it: a script's ``error_reply('FENCED')``, sent as ``ERR FENCED``, is ``FENCED``."""
    code, _, rest = message.partition(" ")
    kind = _ERRORS.get(code)
    return ResponseError(message) if kind is None else kind(rest)


class _Wire(asyncio.Protocol):
    """One connection: the bytes Redis sends are parsed as they come and handed to the one exchange waiting."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._transport: asyncio.Transport | None = None
        self._parser = RespParser()
        self._waiter: asyncio.Future[list[Reply]] | None = None
        self._replies: list[Reply] = []
        self._expected = 0
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.open = True

    def keep_alive(self) -> None:
        """As redis-py's connections: the kernel notices a peer gone quiet for good (an idle link)."""
        sock = self._transport.get_extra_info("socket") if self._transport is not None else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    async def exchange(self, payload: bytes, count: int, timeout: float) -> list[Reply]:
        """Write ``payload`` and wait (at most ``timeout``) for ``count`` replies."""
        if self._transport is None or not self.open:
            raise RedisConnectionError(f"Connection to Redis at {self._where} closed")
        loop = asyncio.get_running_loop()
        self._waiter, self._replies, self._expected = loop.create_future(), [], count
        waiter = self._waiter
        self._transport.write(payload)
        timer = loop.call_later(timeout, self._timed_out, timeout)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        waiter = self._waiter
        if waiter is None or waiter.done():
            self._failed(RedisConnectionError(f"Redis at {self._where} sent what nobody asked for"))
            return
        try:
            while (reply := self._parser.pop()) is not INCOMPLETE:
                self._replies.append(cast(Reply, reply))
                if len(self._replies) == self._expected:
                    waiter.set_result(self._replies)
                    return
        except ProtocolError as error:
            self._failed(RedisConnectionError(f"Redis at {self._where} is out of step: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        why = f": {exc}" if exc is not None else ""
        self._failed(RedisConnectionError(f"Connection to Redis at {self._where} lost{why}"))

    def _timed_out(self, timeout: float) -> None:
        self._failed(RedisTimeoutError(f"Timeout reading from Redis at {self._where} ({timeout:g} s): a dead link"))

    def _failed(self, error: RedisError) -> None:
        """The connection cannot be used any more: close it, and the exchange waiting gets ``error``."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.abort()
