"""``chat-tracker``: start the tracker. Every flag has an environment fallback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields

from chat_protocol import Limits
from chat_tracker import __version__
from chat_tracker.errors import ConfigError, LogFormatError
from chat_tracker.journal.redis_auth import read_password_file
from chat_tracker.runtime.flags import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, OPTIONS, SWITCHES, Option, Switch, add_flags
from chat_tracker.service.settings import (
    Settings,
    bench_switches,
    default_env,
    resolve_admin_password,
    resolve_password,
)
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


def settings_from(
    args: argparse.Namespace, password: str, admin_password: str | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Settings from the parsed flags (each one's dest is its Settings field), the passwords and ``env``."""
    flagged = {field.name: getattr(args, field.name) for field in fields(Settings) if hasattr(args, field.name)}
    flagged["redis_url"] = args.redis_url or None
    return Settings(
        **flagged,
        password=password,
        admin_password=admin_password,
        limits=limits_from(args),
        redis_password=read_password_file(args.redis_password_file),
        **bench_switches(default_env() if env is None else env),
    )


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(
        max_message_chars=args.max_message_chars,
        max_frame_bytes=args.max_frame_bytes,
        rate_per_second=args.rate,
        rate_burst=args.burst,
        queue_size=args.queue_size,
    )


# Checked before anything else (before asking for a password): flags whose value must be > 0, or >= 0.
POSITIVE = (
    "--max-message-chars",
    "--max-frame-bytes",
    "--rate",
    "--burst",
    "--queue-size",
    "--max-connections",
    "--max-connections-per-address",
    "--max-unauthenticated",
    "--max-unauthenticated-per-address",
    "--header-timeout",
    "--max-body-bytes",
    "--body-timeout",
    "--auth-timeout",
    "--join-timeout",
    "--flood-tolerance",
    "--history-size",
    "--auth-guesses-per-minute",
    "--joins-per-minute",
    "--max-rooms-per-member",
    "--max-rooms",
    "--room-creations-per-hour",
)
NOT_NEGATIVE = ("--keep-segments", "--keep-days", "--resume-grace", "--coalesce-ms")


def check_args(args: argparse.Namespace) -> None:
    """Refuse impossible values before anything else (before asking for a password)."""
    for flag in POSITIVE:
        value = getattr(args, _dest(flag))
        if not value > 0:  # also refuses NaN, which compares false with everything
            raise ConfigError(f"{flag} must be positive, not {value}")
    for flag in NOT_NEGATIVE:
        value = getattr(args, _dest(flag))
        if not value >= 0:
            raise ConfigError(f"{flag} must be 0 or more, not {value}")
    if args.coalesce_ms > 100:  # a window users would see as lag is a mistake, not a setting
        raise ConfigError(f"--coalesce-ms must be at most 100, not {args.coalesce_ms}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0-65535, not {args.port}")
    if args.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"--log-level must be debug, info, warning or error, not {args.log_level}")
    tls = tls_files(args.tls_cert, args.tls_key)
    if tls is not None:
        check_loadable(tls)


def _dest(flag: str) -> str:
    """argparse's attribute for ``flag``: ``--max-body-bytes`` is ``max_body_bytes``."""
    return flag.removeprefix("--").replace("-", "_")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["archive"]:  # ``chat-tracker archive``: the one archiver of a room in Redis
        from chat_tracker.runtime.archive_cli import main as archive_main

        return archive_main(argv[1:], env)
    if argv[:1] == ["accounts"]:  # ``chat-tracker accounts``: the operator's account commands
        from chat_tracker.runtime.accounts_cli import main as accounts_main

        return accounts_main(argv[1:], env)
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
        settings = settings_from(args, resolve_password(env), admin_password, env)
        from chat_tracker.runtime.server import serve  # imported late: --help stays fast

        return serve(settings)
    except (ConfigError, LogFormatError) as exc:
        print(f"chat-tracker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"chat-tracker: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
