"""Every Redis client of the tracker, made here: the password, and how long each kind of client waits.

Five kinds of client talk to Redis: the journal's writer and reader (``redis_stream.py``),
a replica's once-a-second link (``replicas/replica.py``), the archiver
(``replicas/archiver.py``), and single commands from a process that starts (a replica
opening the room) or from the command line (``rotate-key``). They differ only in how
long they wait and whether redis-py retries for them, which follows from what each
does: that is a ``ClientRole``, and the roles are the constants below.

The password comes from ``--redis-password-file`` (``redis_auth.py``) and is handed to
redis-py as a keyword, never put in the URL (a password already in the URL wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

import redis

__all__ = [
    "ARCHIVER",
    "BLOCK_MS",
    "COMMAND",
    "JOURNAL",
    "LINK",
    "REDIS_ERRORS",
    "ClientRole",
    "async_client",
    "sync_client",
]

# What "Redis cannot be reached" looks like from redis-py: the callers back off and retry on these.
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)

BLOCK_MS = 1_000  # a blocked XREAD (the journal's reader, the archiver) returns at least this often
# A read that takes this much longer than the longest block is a dead connection (a partition).
DEAD_LINK_SECONDS = 4.0


@dataclass(frozen=True)
class ClientRole:
    """How one kind of client waits: to connect, for an answer; and who retries a failed command."""

    connect_timeout: float
    read_timeout: float
    decode_responses: bool = False  # True: answers as str (the replica's bookkeeping), else bytes
    redis_retries: bool = True  # False: the caller retries with its own backoff and its own outage log


# The journal's writer and reader: a blocked read lasts BLOCK_MS, so one that takes seconds longer is a dead link.
JOURNAL = ClientRole(connect_timeout=2.0, read_timeout=BLOCK_MS / 1000 + DEAD_LINK_SECONDS)
# The link beats once a second: a beat still unanswered after two has missed one, and Redis counts as unreachable.
LINK = ClientRole(connect_timeout=2.0, read_timeout=2.0, decode_responses=True)
# The archiver reads as the journal does, and reconnects with its own backoff, logging once per outage.
ARCHIVER = ClientRole(connect_timeout=2.0, read_timeout=BLOCK_MS / 1000 + DEAD_LINK_SECONDS, redis_retries=False)
# One command at a time, from a replica starting or from ``rotate-key``: nothing waits on it but its caller.
COMMAND = ClientRole(connect_timeout=3.0, read_timeout=5.0, decode_responses=True)


def async_client(url: str, password: str | None, role: ClientRole) -> aioredis.Redis:
    """A client for the event loop (the journal, the link, the archiver)."""
    options = _options(password, role)
    if not role.redis_retries:
        options["retry"] = AsyncRetry(NoBackoff(), 0)
    return aioredis.Redis.from_url(url, **options)


def sync_client(url: str, password: str | None, role: ClientRole = COMMAND) -> redis.Redis:
    """A blocking client, for a process that has no event loop running yet (start-up, the command line)."""
    options = _options(password, role)
    if not role.redis_retries:
        options["retry"] = Retry(NoBackoff(), 0)
    return redis.Redis.from_url(url, **options)


def _options(password: str | None, role: ClientRole) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_connect_timeout": role.connect_timeout,
        "socket_timeout": role.read_timeout,
        "decode_responses": role.decode_responses,
    }
    if password is not None:
        options["password"] = password  # never logged: redis_auth.redact keeps URLs out of logs too
    return options
