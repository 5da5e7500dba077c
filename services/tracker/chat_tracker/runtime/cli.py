"""``chat-tracker``: start the tracker. Every flag has an environment fallback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from chat_protocol import Limits
from chat_tracker import __version__
from chat_tracker.errors import ConfigError, LogFormatError
from chat_tracker.journal.redis_auth import read_password_file
from chat_tracker.runtime.flags import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, OPTIONS, SWITCHES, Option, Switch, add_flags
from chat_tracker.service.settings import Settings, env_flag, resolve_admin_password, resolve_password
from chat_tracker.transport.tls import check_loadable, tls_files

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "OPTIONS", "SWITCHES", "Option", "Switch", "main"]


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
    add_flags(parser, OPTIONS, SWITCHES, env)
    parser.add_argument("--version", action="version", version=f"chat-tracker {__version__}")
    return parser


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
        allowed_hosts=args.allowed_hosts,
        max_body_bytes=args.max_body_bytes,
        body_timeout=args.body_timeout,
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
        redis_url=args.redis_url or None,
        redis_password=read_password_file(args.redis_password_file),
        redis_prefix=args.redis_prefix,
        redis_volatile=args.redis_volatile,
        auth_guesses_per_minute=args.auth_guesses_per_minute,
        joins_per_minute=args.joins_per_minute,
        bench_disable_log=env_flag(os.environ, "TRACKER_BENCH_DISABLE_LOG"),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
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
        ("--max-body-bytes", args.max_body_bytes),
        ("--body-timeout", args.body_timeout),
        ("--auth-timeout", args.auth_timeout),
        ("--join-timeout", args.join_timeout),
        ("--flood-tolerance", args.flood_tolerance),
        ("--history-size", args.history_size),
        ("--auth-guesses-per-minute", args.auth_guesses_per_minute),
        ("--joins-per-minute", args.joins_per_minute),
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
    tls = tls_files(args.tls_cert, args.tls_key)
    if tls is not None:
        check_loadable(tls)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["archive"]:  # ``chat-tracker archive``: the one archiver of a room in Redis
        from chat_tracker.runtime.archive_cli import main as archive_main

        return archive_main(argv[1:], env)
    if argv[:1] == ["rotate-key"]:  # ``chat-tracker rotate-key``: a new resume-token key
        from chat_tracker.runtime.rotate_key_cli import main as rotate_key_main

        return rotate_key_main(argv[1:], env)
    try:
        args = build_parser(env).parse_args(argv)
    except ValueError as exc:  # a bad value in an environment variable
        print(f"chat-tracker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        check_args(args)
        admin_password = resolve_admin_password(env)  # before the prompt: a bad admin secret fails at once
        settings = settings_from(args, resolve_password(env), admin_password)
        from chat_tracker.runtime.server import serve  # imported late: --help stays fast

        return serve(settings)
    except (ConfigError, LogFormatError) as exc:
        print(f"chat-tracker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"chat-tracker: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
