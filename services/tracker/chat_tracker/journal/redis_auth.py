"""Redis's password: read from a file, given to every Redis client, never logged.

The replicas and the archiver reach Redis with ``--redis-url``. A password written in
that URL (``redis://:secret@host``) would sit in the environment, in ``ps`` and in any
log line that prints the URL, so the password has a flag of its own,
``--redis-password-file`` (``TRACKER_REDIS_PASSWORD_FILE``): a file whose first line is
the password (the scale profile's Compose secret ``/run/secrets/redis_password``), which
``redis_client.py`` gives every client. A password in the URL still works (redis-py
reads it), and ``redact`` keeps it out of logs.

A Redis that refuses this process (no password given, or a wrong one) is a
configuration error: ``auth_refused`` turns redis-py's answer into a ``ConfigError``
whose message says what to set, and the process exits with status 2.
"""

from __future__ import annotations

from pathlib import Path

from redis.exceptions import AuthenticationError, NoPermissionError, RedisError

from chat_tracker.errors import ConfigError

__all__ = ["auth_refused", "read_password_file", "redact"]

HINT = "give Redis's password with --redis-password-file (TRACKER_REDIS_PASSWORD_FILE)"


def read_password_file(path: Path | None) -> str | None:
    """The first line of ``path`` (None: no file, no password). ConfigError when unreadable or empty."""
    if path is None or str(path) == "":
        return None
    try:
        password = path.read_text(encoding="utf-8").split("\n", 1)[0].rstrip("\r")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read --redis-password-file {path}: {error}") from None
    if not password:
        raise ConfigError(f"the Redis password in --redis-password-file {path} is empty")
    return password


def auth_refused(error: RedisError, url: str, password: str | None) -> ConfigError | None:
    """A ConfigError saying what to fix if ``error`` is Redis refusing our credentials, else None."""
    where, text = redact(url), _first_words(str(error))
    if not isinstance(error, (AuthenticationError, NoPermissionError)):
        return None
    if "without any password" in text or "no password is set" in text:
        return ConfigError(f"Redis at {where} has no password, but one was given ({text})")
    if password is None and "@" not in url.partition("://")[2].partition("/")[0]:
        return ConfigError(f"Redis at {where} requires a password ({text}): {HINT}")
    return ConfigError(f"Redis at {where} refused this process's credentials ({text}): {HINT}")


def _first_words(text: str) -> str:
    """Redis's refusal, short (it never contains the password): its first sentence."""
    first = text.splitlines()[0] if text else "refused"
    return first.split(", ")[0][:100]


def redact(url: str) -> str:
    """A Redis URL without its user and password, for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return scheme + sep + authority + slash + path
