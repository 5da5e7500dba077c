"""``chat-tracker rotate-key``: a new resume-token key, the old one still honoured for one grace.

Single process (``--data-dir``): ``resume.key`` is kept as ``resume.key.previous`` and
a new ``resume.key`` is made; the tracker reads both at its next start, so rotate,
then restart it (SIGTERM: members are closed with 1012 and resume). Their tokens,
made under the old key, still resume during the grace after that start, and every
``resumed`` carries a token under the new key; then the old key is dropped.

Replicas (``--redis-url``): the room's ``key`` in Redis becomes a new one and the old
one is kept as ``previous_key``. Running replicas notice within a heartbeat (about
a second) and accept the old key for one grace from then on: no restart needed.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from chat_tracker.errors import ConfigError
from chat_tracker.journal.redis_auth import read_password_file
from chat_tracker.runtime.flags import EXIT_FAILURE, EXIT_OK, OPTIONS, add_flags
from chat_tracker.storage.resume_keys import rotate_key

# KEYS: room; ARGV: the new key (hex). The old key becomes previous_key; 0 if Redis holds no room.
ROTATE = """
local old = redis.call('HGET', KEYS[1], 'key')
if not old then return 0 end
redis.call('HSET', KEYS[1], 'previous_key', old, 'key', ARGV[1])
return 1
"""

_FLAGS = ("--data-dir", "--redis-url", "--redis-prefix", "--redis-password-file")


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-tracker rotate-key",
        description="Replace the resume-token key; tokens made under the old one still resume for one grace.",
    )
    add_flags(parser, [option for option in OPTIONS if option.flag in _FLAGS], (), env)
    return parser


def rotate_in_redis(url: str, prefix: str, password: str | None = None) -> bool:
    """Rotate the key of the room under ``prefix``; False if Redis holds no room there."""
    import redis
    from chat_tracker.journal.redis_auth import redact
    from chat_tracker.journal.redis_client import COMMAND, sync_client
    from chat_tracker.journal.redis_keys import Keys

    client = sync_client(url, password, COMMAND)
    try:
        return bool(int(client.eval(ROTATE, 1, Keys(prefix).room, secrets.token_hex(32))))
    except redis.RedisError as error:
        raise OSError(f"Redis at {redact(url)}: {error}") from None
    finally:
        client.close()


def main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    args = build_parser(env).parse_args(argv)
    try:
        if args.redis_url:
            password = read_password_file(args.redis_password_file)
            if not rotate_in_redis(args.redis_url, args.redis_prefix, password):
                print("chat-tracker rotate-key: error: Redis holds no room under that prefix", file=sys.stderr)
                return EXIT_FAILURE
            print("Rotated the room's resume key in Redis: replicas switch within a second")
            return EXIT_OK
        data_dir = Path(args.data_dir)
        if not data_dir.is_dir():
            print(f"chat-tracker rotate-key: error: no data dir {data_dir}", file=sys.stderr)
            return EXIT_FAILURE
        rotate_key(data_dir)
    except (OSError, ConfigError) as error:
        print(f"chat-tracker rotate-key: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"Rotated the resume key in {data_dir}: restart the tracker; the old key is honoured for one grace")
    return EXIT_OK
