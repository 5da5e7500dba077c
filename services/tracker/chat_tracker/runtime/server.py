"""Running the tracker under uvicorn, with the shutdown order the chat needs.

uvicorn, on Ctrl+C or SIGTERM, closes every WebSocket with 1012 *before* the app's
lifespan shutdown runs. ``TrackerServer.shutdown`` first tells every member
goodbye (``bye`` + close 1001) and writes the stop to chat.log, then lets uvicorn
finish. The whole sequence fits in 5 seconds even if no client answers.

Before anything else ``serve`` raises the descriptor limit and refuses to start if
``--max-connections`` cannot fit (``descriptors.py``); every connection then goes
through ``transport/http_guard.py``'s ``GuardedHttpProtocol`` (per-address caps, the header deadline,
trusted proxies) before it reaches the app.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import logging.config
import re
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from chat_tracker.core.hosts import is_loopback
from chat_tracker.http.app import TrackerApp, create_app
from chat_tracker.runtime import heap
from chat_tracker.runtime.descriptors import share
from chat_tracker.service.settings import Settings
from chat_tracker.transport.guard import SocketGuard
from chat_tracker.transport.http_guard import RequestBounds, guarded_protocol
from chat_tracker.transport.native import NativeWebSocket
from chat_tracker.transport.tls import PLAIN_WARNING, clear_beyond_loopback

log = logging.getLogger("chat_tracker")

# After our own goodbye, how long uvicorn may wait for connections to finish.
UVICORN_GRACE_SECONDS = 1

_QUERY = re.compile(r"\?\S*")


class RedactQueryStrings(logging.Filter):
    """Cut query strings out of log lines: a password put in a URL must not reach the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_QUERY.sub("?[redacted]", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = _QUERY.sub("?[redacted]", record.msg)
        return True


def logging_config(level: str) -> dict[str, Any]:
    """stdout for everything, one line per event, query strings redacted."""
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
        "formatter": "plain",
        "filters": ["redact"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactQueryStrings}},
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)-7s %(message)s"}},
        "handlers": {"stdout": handler},
        "loggers": {
            "chat_tracker": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            # uvicorn's per-connection INFO lines are noise beside our own join/leave lines.
            "uvicorn.error": {"level": "DEBUG" if level.lower() == "debug" else "WARNING"},
            "uvicorn.access": {"handlers": ["stdout"], "level": "WARNING", "propagate": False},
        },
    }


class TrackerServer(uvicorn.Server):
    """uvicorn's server with the tracker's goodbye run first at shutdown."""

    def __init__(self, config: uvicorn.Config, app: TrackerApp) -> None:
        super().__init__(config)
        self.tracker = app.tracker
        app.tracker.request_exit = self.request_exit

    def request_exit(self) -> None:
        self.should_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # SIGTERM (docker compose stop/up, systemd, Kubernetes) is a restart: members resume.
        # SIGINT (Ctrl+C at the tracker's terminal) keeps the seed's meaning: the chat is over.
        if not self.should_exit:
            self.tracker.restarting = sig == signal.SIGTERM
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal after shutting down, so the process would end
        # "killed by SIGTERM" (or with a KeyboardInterrupt traceback). A shutdown
        # that said goodbye to everyone is a success: exit status 0.
        self._captured_signals.clear()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # SIGHUP reopens chat.log (logrotate's create mode). uvicorn captures only SIGINT and
        # SIGTERM, with signal.signal; this one runs on the loop, so between two batches.
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.tracker.reopen_log)
        http, ws = ("https", "wss") if self.config.is_ssl else ("http", "ws")
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                log.info("Listening on %s://%s:%d (WebSocket: %s://%s:%d/ws)", http, shown, port, ws, shown, port)
        settings = self.tracker.settings
        if clear_beyond_loopback(settings.host, self.config.is_ssl, bool(settings.trusted_proxies.networks)):
            log.warning(PLAIN_WARNING, settings.host)
        heap.settle()  # last: everything made so far lives as long as the server

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.tracker.shutdown()
        await super().shutdown(sockets)
        log.info("Tracker stopped")


def build_server(settings: Settings, socket_ceiling: int, room_logs: int) -> TrackerServer:
    """The tracker under uvicorn, every socket guarded (at most ``socket_ceiling`` open at once), at most
    ``room_logs`` of the rooms' chat.log files open at once."""
    # Logging first: opening chat.log starts retention in a worker thread, whose "Deleted ..." lines
    # must not be lost to a logging not yet configured (uvicorn's Config would only do it next).
    logging.config.dictConfig(logging_config(settings.log_level))
    app = create_app(settings, room_logs)
    guard = SocketGuard(
        settings.max_connections_per_address, socket_ceiling, settings.trusted_proxies, app.tracker.warnings
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(guard, settings.header_timeout, websocket_protocol(app), request_bounds(settings)),
        # Every upgrade goes to the native adapter (http_guard), which reads the frame limit, the
        # pings and --ws-deflate from the settings: uvicorn needs no WebSocket protocol of its own.
        ws="none",
        # X-Forwarded-For is read by http_guard, from --trusted-proxies only; uvicorn's
        # own handling would trust it before the socket guard has counted the socket.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=UVICORN_GRACE_SECONDS,
        log_config=logging_config(settings.log_level),
        lifespan="on",
        # https and wss (transport/tls.py checked both files at start); every protocol above then runs on TLS.
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
    return TrackerServer(config, app)


def request_bounds(settings: Settings) -> RequestBounds:
    """The Host list (``auto`` made concrete for ``--host``) and the body bounds; warns if any host is answered."""
    hosts = settings.allowed_hosts.resolve(settings.host)
    if hosts.any and not is_loopback(settings.host):
        log.warning(
            "Listening on %s and answering any Host header: a web page could reach this tracker through DNS "
            "rebinding; name the hosts it is reached by with --allowed-hosts (TRACKER_ALLOWED_HOSTS)",
            settings.host,
        )
    return RequestBounds(hosts, settings.max_body_bytes, settings.body_timeout)


def websocket_protocol(app: TrackerApp) -> Callable[..., asyncio.Protocol]:
    """What an upgraded socket becomes: the native adapter, bound to the app's tracker."""
    return functools.partial(NativeWebSocket, tracker=app.tracker)


def serve(settings: Settings) -> int:
    """Run until Ctrl+C / SIGTERM (or the room empties with exit-when-empty). Exit status."""
    descriptors = share(settings.max_connections)
    server = build_server(settings, descriptors.sockets, descriptors.room_logs)
    server.run()
    return 0 if server.started else 1
