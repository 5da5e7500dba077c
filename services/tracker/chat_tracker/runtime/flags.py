"""The tracker's flags, each with its environment variable and its default.

Shared by ``chat-tracker`` (``cli.py``) and ``chat-tracker archive`` (``archive_cli.py``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from chat_protocol import Limits, ProtocolError, room_name
from chat_tracker.core.addresses import proxy_list
from chat_tracker.core.hosts import host_list
from chat_tracker.core.origins import origin_list
from chat_tracker.service.settings import Settings, env_flag
from chat_tracker.storage.segments import size

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


REGISTRATION_MODES = ("open", "admin", "off")


def registration_mode(text: str) -> str:
    """``--registration``'s value, checked."""
    if text not in REGISTRATION_MODES:
        raise ValueError(f"must be open, admin or off, not {text!r}")
    return text


ROOM_CREATION_MODES = ("open", "admin")


def room_creation_mode(text: str) -> str:
    """``--room-creation``'s value, checked."""
    if text not in ROOM_CREATION_MODES:
        raise ValueError(f"must be open or admin, not {text!r}")
    return text


def default_room(text: str) -> str:
    """``--default-room``'s value as a room's name (``general`` and ``#general`` alike)."""
    try:
        return room_name(text)
    except ProtocolError as error:
        raise ValueError(error.message) from None


@dataclass(frozen=True)
class Option:
    flag: str
    env: str
    kind: Callable[[str], Any]
    default: Any
    help: str


@dataclass(frozen=True)
class Switch:
    """An on/off flag, off by default; its variable turns it on with 1/true/yes/on."""

    flag: str
    env: str
    help: str


_DEFAULT = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}
_LIMITS = Limits()

OPTIONS = (
    Option("--host", "TRACKER_HOST", str, _DEFAULT["host"], "address to listen on"),
    Option("--port", "TRACKER_PORT", int, _DEFAULT["port"], "TCP port (0 picks a free one)"),
    Option("--data-dir", "TRACKER_DATA_DIR", Path, _DEFAULT["data_dir"], "directory of chat.log"),
    Option(
        "--max-message-chars",
        "TRACKER_MAX_MESSAGE_CHARS",
        int,
        _LIMITS.max_message_chars,
        "longest message, in characters",
    ),
    Option(
        "--max-frame-bytes",
        "TRACKER_MAX_FRAME_BYTES",
        int,
        _LIMITS.max_frame_bytes,
        "largest WebSocket frame (bigger: close 1009)",
    ),
    Option("--rate", "TRACKER_RATE", float, _LIMITS.rate_per_second, "messages per second per member, on average"),
    Option("--burst", "TRACKER_BURST", int, _LIMITS.rate_burst, "messages a member may send at once"),
    Option(
        "--flood-tolerance",
        "TRACKER_FLOOD_TOLERANCE",
        int,
        _DEFAULT["flood_tolerance"],
        "refused messages in a burst before close 4006",
    ),
    Option(
        "--max-connections",
        "TRACKER_MAX_CONNECTIONS",
        int,
        _DEFAULT["max_connections"],
        "open WebSockets at most (more: close 4005)",
    ),
    Option(
        "--max-connections-per-address",
        "TRACKER_MAX_CONNECTIONS_PER_ADDRESS",
        int,
        _DEFAULT["max_connections_per_address"],
        "open sockets (HTTP and WebSocket) from one address, an IPv6 /64 counting as one (more: HTTP 429)",
    ),
    Option(
        "--max-unauthenticated",
        "TRACKER_MAX_UNAUTHENTICATED",
        int,
        _DEFAULT["max_unauthenticated"],
        "WebSockets that have not given the password yet, overall (more: the oldest is dropped)",
    ),
    Option(
        "--max-unauthenticated-per-address",
        "TRACKER_MAX_UNAUTHENTICATED_PER_ADDRESS",
        int,
        _DEFAULT["max_unauthenticated_per_address"],
        "WebSockets from one address that have not given the password yet (more: close 4009)",
    ),
    Option(
        "--header-timeout",
        "TRACKER_HEADER_TIMEOUT",
        float,
        _DEFAULT["header_timeout"],
        "seconds for a request's line and headers, WebSocket upgrades included (else closed)",
    ),
    Option(
        "--trusted-proxies",
        "TRACKER_TRUSTED_PROXIES",
        proxy_list,
        _DEFAULT["trusted_proxies"],
        "ADDR|CIDR,... of reverse proxies whose X-Forwarded-For names the client",
    ),
    Option(  # the Origin allow-list for WebSocket handshakes (core/origins.py)
        "--allowed-origins",
        "TRACKER_ALLOWED_ORIGINS",
        origin_list,
        _DEFAULT["allowed_origins"],
        "self|*|none|ORIGIN,... web pages that may open /ws (others: HTTP 403); clients sending no Origin always may",
    ),
    Option(  # DNS rebinding (core/hosts.py)
        "--allowed-hosts",
        "TRACKER_ALLOWED_HOSTS",
        host_list,
        _DEFAULT["allowed_hosts"],
        "auto|*|NAME,*.DOMAIN,... Host headers answered (others: HTTP 400); auto: loopback names on a "
        "loopback --host, else any",
    ),
    Option(
        "--max-body-bytes",
        "TRACKER_MAX_BODY_BYTES",
        int,
        _DEFAULT["max_body_bytes"],
        "largest HTTP request body (larger: HTTP 413, unread)",
    ),
    Option(
        "--body-timeout",
        "TRACKER_BODY_TIMEOUT",
        float,
        _DEFAULT["body_timeout"],
        "seconds for a request's body once its headers are in (else HTTP 408 and closed)",
    ),
    Option("--queue-size", "TRACKER_QUEUE_SIZE", int, _LIMITS.queue_size, "events queued per member before close 4007"),
    Option(
        "--auth-timeout",
        "TRACKER_AUTH_TIMEOUT",
        float,
        _DEFAULT["auth_timeout"],
        "seconds to give the password (else close 4002)",
    ),
    Option(
        "--join-timeout",
        "TRACKER_JOIN_TIMEOUT",
        float,
        _DEFAULT["join_timeout"],
        "seconds to choose a name (else close 4002)",
    ),
    Option(
        "--ping-interval", "TRACKER_PING_INTERVAL", float, _DEFAULT["ping_interval"], "seconds between keepalive pings"
    ),
    Option(
        "--ping-timeout",
        "TRACKER_PING_TIMEOUT",
        float,
        _DEFAULT["ping_timeout"],
        "seconds to answer a ping before being dropped",
    ),
    Option(
        "--coalesce-ms",
        "TRACKER_COALESCE_MS",
        float,
        _DEFAULT["coalesce_ms"],
        "longest a member's frames wait to go out in one write, when saturated (busy: 30 at most, calm: 10; 0: never)",
    ),
    Option(
        "--history-size",
        "TRACKER_HISTORY_SIZE",
        int,
        _DEFAULT["history_size"],
        "recent events kept in memory for replay (older ones are read from chat.log)",
    ),
    Option(
        "--registration",
        "TRACKER_REGISTRATION",
        registration_mode,
        _DEFAULT["registration"],
        "who may register names: open (any member, the name it uses), admin (operators only), off",
    ),
    Option(
        "--default-room",
        "TRACKER_DEFAULT_ROOM",
        default_room,
        _DEFAULT["default_room"],
        "the room every member enters, kept in <data-dir>/chat.log (docs/protocol.md#rooms-and-direct-messages)",
    ),
    Option(
        "--room-creation",
        "TRACKER_ROOM_CREATION",
        room_creation_mode,
        _DEFAULT["room_creation"],
        "who makes rooms: open (a member entering a new room makes it), admin (operators only)",
    ),
    Option(
        "--max-rooms-per-member",
        "TRACKER_MAX_ROOMS_PER_MEMBER",
        int,
        _DEFAULT["max_rooms_per_member"],
        "rooms one member may be in besides the default room (more: too_many_rooms)",
    ),
    Option("--max-rooms", "TRACKER_MAX_ROOMS", int, _DEFAULT["max_rooms"], "rooms in all besides the default room"),
    Option(
        "--room-creations-per-hour",
        "TRACKER_ROOM_CREATIONS_PER_HOUR",
        int,
        _DEFAULT["room_creations_per_hour"],
        "rooms one member may make per hour, as a burst and then a rate (more: too_many_room_creations)",
    ),
    Option(
        "--resume-grace",
        "TRACKER_RESUME_GRACE",
        float,
        _DEFAULT["resume_grace"],
        "seconds a JSON member whose connection dropped stays in the room as away, able to resume (0: leaves at once)",
    ),
    Option(
        "--rotate-bytes",
        "TRACKER_ROTATE_BYTES",
        size,
        _DEFAULT["rotate_bytes"],
        "rotate chat.log before it would exceed SIZE (bytes, or K/M/G, e.g. 64M; 0: never)",
    ),
    Option(
        "--keep-segments",
        "TRACKER_KEEP_SEGMENTS",
        int,
        _DEFAULT["keep_segments"],
        "delete the oldest rotated segments beyond N (0: keep all)",
    ),
    Option(
        "--keep-days",
        "TRACKER_KEEP_DAYS",
        float,
        _DEFAULT["keep_days"],
        "delete rotated segments older than D days (0: keep all)",
    ),
    Option(
        "--keep-bytes",
        "TRACKER_KEEP_BYTES",
        size,
        _DEFAULT["keep_bytes"],
        "delete the oldest rotated segments beyond SIZE in total (0: keep all)",
    ),
    Option("--log-level", "TRACKER_LOG_LEVEL", str, _DEFAULT["log_level"], "debug, info, warning or error"),
    Option(
        "--redis-url",
        "TRACKER_REDIS_URL",
        str,
        None,
        "run as one replica of a room kept in Redis, e.g. redis://host:6379/0 (docs/replicas.md)",
    ),
    Option(  # journal/redis_auth.py: the password never in the URL, the environment or a log
        "--redis-password-file",
        "TRACKER_REDIS_PASSWORD_FILE",
        Path,
        None,
        "with --redis-url: a file whose first line is Redis's password (docs/replicas.md)",
    ),
    Option("--redis-prefix", "TRACKER_REDIS_PREFIX", str, _DEFAULT["redis_prefix"], "prefix of the room's Redis keys"),
    Option(  # the guessing budget every address shares (ratelimit.AuthThrottle)
        "--auth-guesses-per-minute",
        "TRACKER_AUTH_GUESSES_PER_MINUTE",
        float,
        _DEFAULT["auth_guesses_per_minute"],
        "wrong passwords checked per minute, all addresses together (more: 429, close 4013; members, resumes go on)",
    ),
    Option(  # joins and resumes per address (session.Session.entries)
        "--joins-per-minute",
        "TRACKER_JOINS_PER_MINUTE",
        float,
        _DEFAULT["joins_per_minute"],
        "joins and resumes per address (IPv6: per /64) per minute, as a burst and then a rate (more: close 4014)",
    ),
    Option("--tls-cert", "TRACKER_TLS_CERT", Path, None, "PEM certificate chain: serve https and wss (with --tls-key)"),
    Option("--tls-key", "TRACKER_TLS_KEY", Path, None, "PEM private key, unencrypted, of --tls-cert"),
)


SWITCHES = (
    Switch(
        "--redis-volatile",
        "TRACKER_REDIS_VOLATILE",
        "with --redis-url: accept a Redis without appendfsync always (may lose the last second on a Redis crash)",
    ),
    Switch(
        "--exit-when-empty", "TRACKER_EXIT_WHEN_EMPTY", "once someone has joined, shut down when the last member leaves"
    ),
    Switch("--ws-deflate", "TRACKER_WS_DEFLATE", "offer per-message deflate compression"),
    Switch("--rotate-daily", "TRACKER_ROTATE_DAILY", "rotate chat.log at UTC midnight"),
    Switch("--compress", "TRACKER_COMPRESS", "gzip rotated segments to chat.log.<seq>.gz"),
)


def env_default(option: Option, env: Mapping[str, str]) -> Any:
    """The option's environment fallback, or its default; a bad value names the variable."""
    raw = env.get(option.env)
    if not raw:
        return option.default
    try:
        return option.kind(raw)
    except ValueError:
        raise ValueError(f"{option.env}={raw!r} is not a valid {option.kind.__name__} (for {option.flag})") from None


def add_flags(
    parser: argparse.ArgumentParser, options: Iterable[Option], switches: Iterable[Switch], env: Mapping[str, str]
) -> None:
    """Each option and switch on ``parser``, its default from ``env`` and its help naming the variable."""
    for option in options:
        parser.add_argument(
            option.flag,
            type=option.kind,
            default=env_default(option, env),
            help=f"{option.help} (env {option.env}; default {option.default})",
        )
    for switch in switches:
        parser.add_argument(
            switch.flag,
            action="store_true",
            default=env_flag(env, switch.env),
            help=f"{switch.help} (env {switch.env}=1; default off)",
        )
