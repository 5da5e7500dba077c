"""``chat-tracker``: start the tracker. Every flag has an environment fallback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from chat_protocol import Limits

from . import __version__
from .addresses import proxy_list
from .errors import ConfigError, LogFormatError
from .origins import origin_list
from .segments import size
from .settings import Settings, env_flag, resolve_admin_password, resolve_password

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


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
    Option(  # the Origin allow-list for WebSocket handshakes (origins.py)
        "--allowed-origins",
        "TRACKER_ALLOWED_ORIGINS",
        origin_list,
        _DEFAULT["allowed_origins"],
        "self|*|none|ORIGIN,... web pages that may open /ws (others: HTTP 403); clients sending no Origin always may",
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
        "milliseconds each member's frames are held to go out in one write (0: write each at once)",
    ),
    Option(
        "--history-size",
        "TRACKER_HISTORY_SIZE",
        int,
        _DEFAULT["history_size"],
        "recent events kept in memory for replay (older ones are read from chat.log)",
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
)


SWITCHES = (
    Switch(
        "--exit-when-empty", "TRACKER_EXIT_WHEN_EMPTY", "once someone has joined, shut down when the last member leaves"
    ),
    Switch("--ws-deflate", "TRACKER_WS_DEFLATE", "offer per-message deflate compression"),
    Switch("--rotate-daily", "TRACKER_ROTATE_DAILY", "rotate chat.log at UTC midnight"),
    Switch("--compress", "TRACKER_COMPRESS", "gzip rotated segments to chat.log.<seq>.gz"),
)


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-tracker",
        description="Group chat tracker: WebSocket chat on /ws, REST on /members and /log, chat.log on disk.",
        epilog=(
            "The server password comes from TRACKER_PASSWORD_FILE, else TRACKER_PASSWORD, else a hidden "
            "prompt when started on a terminal; it is never printed or logged. Exit status: 0 after a clean "
            "shutdown (Ctrl+C, SIGTERM, or --exit-when-empty), 1 if the server could not start, 2 for a "
            "usage or configuration error (no password, bad flag, unreadable chat.log)."
        ),
    )
    for option in OPTIONS:
        default = _env_default(option, env)
        parser.add_argument(
            option.flag,
            type=option.kind,
            default=default,
            help=f"{option.help} (env {option.env}; default {option.default})",
        )
    for switch in SWITCHES:
        parser.add_argument(
            switch.flag,
            action="store_true",
            default=env_flag(env, switch.env),
            help=f"{switch.help} (env {switch.env}=1; default off)",
        )
    parser.add_argument("--version", action="version", version=f"chat-tracker {__version__}")
    return parser


def _env_default(option: Option, env: Mapping[str, str]) -> Any:
    """The option's environment fallback, or its default; a bad value names the variable."""
    raw = env.get(option.env)
    if not raw:
        return option.default
    try:
        return option.kind(raw)
    except ValueError:
        raise ValueError(f"{option.env}={raw!r} is not a valid {option.kind.__name__} (for {option.flag})") from None


def settings_from(args: argparse.Namespace, password: str, admin_password: str | None = None) -> Settings:
    limits = Limits(
        max_message_chars=args.max_message_chars,
        max_frame_bytes=args.max_frame_bytes,
        rate_per_second=args.rate,
        rate_burst=args.burst,
        queue_size=args.queue_size,
    )
    return Settings(
        password=password,
        admin_password=admin_password,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        exit_when_empty=args.exit_when_empty,
        limits=limits,
        max_connections=args.max_connections,
        max_connections_per_address=args.max_connections_per_address,
        max_unauthenticated=args.max_unauthenticated,
        max_unauthenticated_per_address=args.max_unauthenticated_per_address,
        header_timeout=args.header_timeout,
        trusted_proxies=args.trusted_proxies,
        allowed_origins=args.allowed_origins,
        auth_timeout=args.auth_timeout,
        join_timeout=args.join_timeout,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        ws_deflate=args.ws_deflate,
        coalesce_ms=args.coalesce_ms,
        flood_tolerance=args.flood_tolerance,
        history_size=args.history_size,
        resume_grace=args.resume_grace,
        rotate_bytes=args.rotate_bytes,
        rotate_daily=args.rotate_daily,
        keep_segments=args.keep_segments,
        keep_days=args.keep_days,
        keep_bytes=args.keep_bytes,
        compress=args.compress,
        log_level=args.log_level,
        bench_disable_log=env_flag(os.environ, "TRACKER_BENCH_DISABLE_LOG"),
        bench_asgi_ws=env_flag(os.environ, "TRACKER_BENCH_ASGI_WS"),
    )


def check_args(args: argparse.Namespace) -> None:
    """Refuse impossible values before anything else (before asking for a password)."""
    for name, value in (
        ("--max-message-chars", args.max_message_chars),
        ("--max-frame-bytes", args.max_frame_bytes),
        ("--rate", args.rate),
        ("--burst", args.burst),
        ("--queue-size", args.queue_size),
        ("--max-connections", args.max_connections),
        ("--max-connections-per-address", args.max_connections_per_address),
        ("--max-unauthenticated", args.max_unauthenticated),
        ("--max-unauthenticated-per-address", args.max_unauthenticated_per_address),
        ("--header-timeout", args.header_timeout),
        ("--auth-timeout", args.auth_timeout),
        ("--join-timeout", args.join_timeout),
        ("--flood-tolerance", args.flood_tolerance),
        ("--history-size", args.history_size),
    ):
        if not value > 0:  # also refuses NaN, which compares false with everything
            raise ConfigError(f"{name} must be positive, not {value}")
    for name, value in (
        ("--keep-segments", args.keep_segments),
        ("--keep-days", args.keep_days),
        ("--resume-grace", args.resume_grace),
        ("--coalesce-ms", args.coalesce_ms),
    ):
        if not value >= 0:
            raise ConfigError(f"{name} must be 0 or more, not {value}")
    if args.coalesce_ms > 100:  # a window users would see as lag is a mistake, not a setting
        raise ConfigError(f"--coalesce-ms must be at most 100, not {args.coalesce_ms}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0-65535, not {args.port}")
    if args.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"--log-level must be debug, info, warning or error, not {args.log_level}")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        args = build_parser(env).parse_args(argv)
    except ValueError as exc:  # a bad value in an environment variable
        print(f"chat-tracker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        check_args(args)
        admin_password = resolve_admin_password(env)  # before the prompt: a bad admin secret fails at once
        settings = settings_from(args, resolve_password(env), admin_password)
        from .server import serve  # imported late: --help stays fast

        return serve(settings)
    except (ConfigError, LogFormatError) as exc:
        print(f"chat-tracker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"chat-tracker: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
