"""``chat-tracker archive``: the archiver process (chat.log from Redis) and its small HTTP app.

The archiver (``replicas/archiver.py``) runs beside uvicorn on one event loop. The HTTP app
answers ``/healthz`` and ``/metrics`` openly and ``/log`` with the server password,
like the tracker's. SIGTERM or SIGINT ends both: the batch in hand is written and
recorded first, and the exit status is 0. Flags have environment fallbacks; the
rotation flags are the tracker's own (``flags.OPTIONS``), so they mean the same here.

``chat-tracker archive`` (``cli.py``) dispatches to ``main``; both take their flags from ``flags.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Query, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field

from chat_tracker import __version__
from chat_tracker.core.auth import PasswordGate
from chat_tracker.errors import ConfigError, LogFormatError
from chat_tracker.http.rest import (
    DEFAULT_LOG_LINES,
    MAX_LOG_LINES,
    UNAUTHORIZED,
    LogEventOut,
    LogOut,
    check_server_password,
)
from chat_tracker.journal.redis_auth import read_password_file
from chat_tracker.replicas.archiver import Archiver, ArchiverConfig
from chat_tracker.replicas.room_archiver import RoomArchiver
from chat_tracker.runtime.flags import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, OPTIONS, SWITCHES, Option, Switch, add_flags
from chat_tracker.runtime.server import logging_config
from chat_tracker.service.settings import ARCHIVER_PORT, KEEP_IN_REDIS, Settings, resolve_password
from chat_tracker.storage.rotation import RotationPolicy
from chat_tracker.storage.segments import RetentionPolicy

PROG = "chat-tracker archive"
log = logging.getLogger("chat_tracker")

_ROTATION = ("--rotate-bytes", "--keep-segments", "--keep-days", "--keep-bytes")
# The flags the archiver shares with the tracker have the tracker's defaults, from the one place of them.
_DEFAULT = {field.name: field.default for field in fields(Settings)}
_OWN = (
    Option("--redis-url", "TRACKER_REDIS_URL", str, None, "the Redis holding the room's stream (required)"),
    Option("--data-dir", "TRACKER_DATA_DIR", Path, _DEFAULT["data_dir"], "directory of chat.log"),
    Option("--redis-prefix", "TRACKER_REDIS_PREFIX", str, _DEFAULT["redis_prefix"], "prefix of the room's keys"),
    Option("--host", "TRACKER_HOST", str, _DEFAULT["host"], "address to listen on"),
    Option("--port", "TRACKER_PORT", int, ARCHIVER_PORT, "TCP port (0 picks a free one)"),
    Option(
        "--keep-in-redis",
        "TRACKER_KEEP_IN_REDIS",
        int,
        KEEP_IN_REDIS,
        "archived events left in the stream, for replicas' resumes",
    ),
)
ARCHIVE_OPTIONS = (
    *_OWN,
    *(o for o in OPTIONS if o.flag in _ROTATION or o.flag == "--redis-password-file"),
    *(o for o in OPTIONS if o.flag == "--log-level"),
)
ARCHIVE_SWITCHES: tuple[Switch, ...] = tuple(s for s in SWITCHES if s.flag in ("--rotate-daily", "--compress"))


# --- the command line ---------------------------------------------------------------------------------


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write chat.log from the Redis stream of a room served by tracker replicas.",
        epilog=(
            "The /log password comes from TRACKER_PASSWORD_FILE, else TRACKER_PASSWORD, else a hidden prompt. "
            "Exit status: 0 after a clean shutdown (SIGTERM, Ctrl+C), 1 if it could not start, 2 for a usage "
            "or configuration error."
        ),
    )
    add_flags(parser, ARCHIVE_OPTIONS, ARCHIVE_SWITCHES, env)
    parser.add_argument("--version", action="version", version=f"chat-tracker {__version__}")
    return parser


def check_args(args: argparse.Namespace) -> None:
    if not args.redis_url:
        raise ConfigError("--redis-url (or TRACKER_REDIS_URL) is required")
    for name, value in (
        ("--keep-in-redis", args.keep_in_redis),
        ("--keep-segments", args.keep_segments),
        ("--keep-days", args.keep_days),
    ):
        if not value >= 0:
            raise ConfigError(f"{name} must be 0 or more, not {value}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0-65535, not {args.port}")
    if args.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"--log-level must be debug, info, warning or error, not {args.log_level}")


def config_from(args: argparse.Namespace) -> ArchiverConfig:
    retention = RetentionPolicy(args.keep_segments, args.keep_days, args.keep_bytes)
    return ArchiverConfig(
        redis_url=args.redis_url,
        redis_password=read_password_file(args.redis_password_file),
        data_dir=args.data_dir,
        prefix=args.redis_prefix,
        keep_in_redis=args.keep_in_redis,
        rotation=RotationPolicy(args.rotate_bytes, args.rotate_daily, retention, args.compress),
    )


def main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    try:
        args = build_parser(env).parse_args(argv)
    except ValueError as exc:  # a bad value in an environment variable
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        check_args(args)
        password = resolve_password(env)
        return serve(config_from(args), password, args.host, args.port, args.log_level)
    except (ConfigError, LogFormatError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


# --- the HTTP app ---------------------------------------------------------------------------------------


class ArchiveHealthOut(BaseModel):
    status: str = Field(description="ok, or degraded while Redis is unreachable or chat.log unwritable")
    redis: bool = Field(description="Redis is reachable")
    log_writable: bool = Field(description="The last chat.log write succeeded")
    archived_seq: int = Field(description="The last seq durable in chat.log")
    stream_last_seq: int | None = Field(description="The room's last seq in Redis (None: not known yet)")
    lag_events: int = Field(description="Events in the stream not yet in chat.log")


class ArchiverCollector(Collector):
    """Reads the archiver's counters on every scrape."""

    def __init__(self, archiver: Archiver, rooms: RoomArchiver | None = None) -> None:
        self.archiver = archiver
        self.rooms = rooms

    def collect(self) -> Iterator[Metric]:
        stats, health, chat_log = self.archiver.stats, self.archiver.health(), self.archiver.chat_log
        yield CounterMetricFamily("chat_archive_events", "Events written to chat.log by the archiver", stats.archived)
        yield GaugeMetricFamily("chat_archive_lag_events", "Events in Redis not yet in chat.log", health.lag_events)
        yield GaugeMetricFamily("chat_archive_seq", "The last seq durable in chat.log", health.archived_seq)
        yield CounterMetricFamily("chat_archive_redis_reconnects", "Redis outages recovered from", stats.reconnects)
        yield GaugeMetricFamily("chat_archive_redis_up", "1 if Redis is reachable", int(health.redis))
        yield CounterMetricFamily("chat_archive_missing_events", "Seqs never found in the stream (gaps)", stats.missing)
        yield CounterMetricFamily(
            "chat_archive_refused_events", "Events of a new epoch not written (their seq was taken)", stats.refused
        )
        yield CounterMetricFamily(
            "chat_archive_invalid_entries", "Stream entries refused as no room event (not archived)", stats.invalid
        )
        yield GaugeMetricFamily("chat_log_writable", "1 if chat.log is writable", int(health.log_writable))
        yield GaugeMetricFamily("chat_log_segment_bytes", "Size of the current chat.log", chat_log.size)
        yield GaugeMetricFamily("chat_log_segments", "Rotated chat.log segments on disk", chat_log.stats.count)
        yield CounterMetricFamily("chat_log_rotations", "chat.log rotations by this process", chat_log.stats.rotations)
        if self.rooms is not None:
            yield from rooms_metrics(self.rooms)


def rooms_metrics(rooms: RoomArchiver) -> Iterator[Metric]:
    """The rooms' and conversations' logs (``room_archiver.py``), summed over all of them."""
    stats = rooms.stats
    yield GaugeMetricFamily(
        "chat_archive_rooms", "Rooms and conversations archived besides the default", len(rooms.logs)
    )
    yield CounterMetricFamily(
        "chat_archive_room_events", "Events written to the rooms' and conversations' logs", stats.archived
    )
    yield CounterMetricFamily("chat_archive_room_missing_events", "Seqs never found in their streams", stats.missing)
    yield CounterMetricFamily(
        "chat_archive_room_refused_events", "Events of a room's new epoch not written (seq taken)", stats.refused
    )
    yield CounterMetricFamily(
        "chat_archive_room_invalid_entries", "Entries of their streams refused as no room event", stats.invalid
    )


def health_out(archiver: Archiver) -> ArchiveHealthOut:
    health = archiver.health()
    return ArchiveHealthOut(
        status=health.status,
        redis=health.redis,
        log_writable=health.log_writable,
        archived_seq=health.archived_seq,
        stream_last_seq=health.stream_last_seq,
        lag_events=health.lag_events,
    )


def create_app(archiver: Archiver, password: str, rooms: RoomArchiver | None = None) -> FastAPI:
    """/healthz, /metrics (open) and /log (the server password), over one archiver (and its rooms')."""
    app = FastAPI(title="chat-tracker archive", version=__version__)
    gate = PasswordGate(password)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ArchiverCollector(archiver, rooms))

    async def require_password(request: Request) -> None:
        check_server_password(gate, request)

    @app.get("/healthz", response_model=ArchiveHealthOut, summary="The archiver's health (no password)")
    async def healthz() -> ArchiveHealthOut:
        return health_out(archiver)

    @app.get("/metrics", summary="Prometheus metrics (no password)", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get(
        "/log",
        response_model=LogOut,
        dependencies=[Depends(require_password)],
        responses=UNAUTHORIZED,
        summary="The last events of chat.log (across rotated segments)",
    )
    async def log_events(
        lines: Annotated[int, Query(ge=1, le=MAX_LOG_LINES, description="How many events, newest last")] = (
            DEFAULT_LOG_LINES
        ),
    ) -> LogOut:
        entries = await asyncio.to_thread(archiver.chat_log.tail, lines)  # the loop never waits on the file
        return LogOut(events=[LogEventOut(**entry.__dict__) for entry in entries])

    return app


# --- running it -----------------------------------------------------------------------------------------


def serve(config: ArchiverConfig, password: str, host: str, port: int, level: str) -> int:
    """Run the archiver and its HTTP app until SIGTERM/SIGINT. Exit status."""
    logging.config.dictConfig(logging_config(level))
    return asyncio.run(_serve(config, password, host, port, logging_config(level)))


async def _serve(config: ArchiverConfig, password: str, host: str, port: int, log_config: dict[str, Any]) -> int:
    archiver = Archiver(config)  # opens chat.log: an unreadable one is a configuration error (exit 2)
    await archiver.check_credentials()  # a Redis that refuses our password: exit 2, before listening
    rooms = RoomArchiver(config)  # opens every room's and conversation's chat.log kept in the data dir
    app = create_app(archiver, password, rooms)
    server = ArchiverServer(
        uvicorn.Config(app, host=host, port=port, log_config=log_config, lifespan="off", server_header=False),
        archiver,
        rooms,
    )
    task = asyncio.create_task(_archive(archiver, rooms))
    task.add_done_callback(lambda _: server.request_exit())  # the archiver failing ends the process
    try:
        await server.serve()
    except SystemExit:  # uvicorn could not listen (it has logged why)
        return await _finish(archiver, rooms, task, EXIT_FAILURE)
    return await _finish(archiver, rooms, task, EXIT_OK if server.started else EXIT_FAILURE)


async def _archive(archiver: Archiver, rooms: RoomArchiver) -> None:
    """The default room and the others side by side; one of them failing stops the other."""
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(archiver.run())
            group.create_task(rooms.run())
    finally:
        archiver.stop()
        rooms.stop()


async def _finish(archiver: Archiver, rooms: RoomArchiver, task: asyncio.Task[None], status: int) -> int:
    archiver.stop()
    rooms.stop()
    try:
        await task
    except Exception:
        log.exception("The archiver failed")
        return EXIT_FAILURE
    return status


class ArchiverServer(uvicorn.Server):
    """uvicorn's server; a signal also stops the archiver, and a clean stop exits 0."""

    def __init__(self, config: uvicorn.Config, archiver: Archiver, rooms: RoomArchiver) -> None:
        super().__init__(config)
        self.archiver = archiver
        self.rooms = rooms

    def request_exit(self) -> None:
        self.should_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.archiver.stop()
        self.rooms.stop()
        super().handle_exit(sig, frame)
        self._captured_signals.clear()  # uvicorn would re-raise the signal: a clean stop is status 0

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                log.info("Listening on http://%s:%d (archiver)", shown, port)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
