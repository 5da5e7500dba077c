"""The running tracker: the room, its chat log, the password gate, and open connections.

One instance per process, built by the app factory from a Settings object. It
owns start-up (open and repair chat.log, log the start) and the shutdown path
(every member told goodbye with close code 1001, chat.log flushed) that the
server runs *before* uvicorn closes sockets on its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from chat_protocol import CloseCode
from chat_protocol.reasons import LeaveReason

from . import __version__
from .addresses import address_key
from .admission import Admission, Budget, Refusal
from .auth import PasswordGate
from .chatlog import ChatLog, DiscardingChatLog
from .errors import LogWriteError
from .journal import LocalJournal
from .policy import MemberPolicy
from .ratelimit import AuthThrottle
from .room import Member, Room
from .rotation import KillSwitch, RotatingLog, clock_from_env, rotation_policy
from .settings import Settings

log = logging.getLogger("chat_tracker")

SHUTDOWN_MESSAGE = "The tracker is shutting down. Bye."
LOG_WATCH_SECONDS = 1.0


class Connections:
    """Every open WebSocket session, joined or not, so shutdown can reach them all; and who may open one.

    Admission (``admission.py``) puts members before strangers: when the tracker is
    full, a connection that has not given the password is dropped to make room.
    """

    def __init__(self, budget: Budget) -> None:
        self.admission: Admission[Closable] = Admission(budget)
        self.sessions: set[Closable] = set()
        self.total_opened = 0
        self.strangers_dropped = 0

    def try_open(self, session: Closable, address: str) -> Refusal | None:
        """Admit ``session`` (from ``address``) as a stranger, or say why not."""
        verdict = self.admission.admit(session, address_key(address))
        if verdict.refusal is not None:
            return verdict.refusal
        if verdict.dropped is not None:
            self.strangers_dropped += 1
            verdict.dropped.make_room()
        self.sessions.add(session)
        self.total_opened += 1
        return None

    def authenticated(self, session: Closable) -> None:
        """``session``'s password was accepted: it is a member, never dropped to make room."""
        self.admission.authenticated(session)

    def close(self, session: Closable) -> None:
        self.sessions.discard(session)
        self.admission.remove(session)


class Closable:
    """What shutdown and admission need from a session (implemented in websocket.py)."""

    def say_goodbye(self, code: int, message: str) -> None:
        raise NotImplementedError

    def make_room(self) -> None:
        """Close this unauthenticated connection: the tracker is full and a newcomer takes its slot."""
        raise NotImplementedError

    async def finished(self, timeout: float) -> None:
        raise NotImplementedError


class Tracker:
    """State shared by the WebSocket endpoint and the REST API."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        log_class = DiscardingChatLog if settings.bench_disable_log else ChatLog
        clock = clock_from_env(os.environ)
        kill = KillSwitch.from_environ(os.environ)  # test-only (TRACKER_TEST_KILL_AT)
        self.chat_log = RotatingLog(settings.data_dir, log_class, rotation_policy(settings), clock=clock, kill=kill)
        report = self.chat_log.open()
        if settings.bench_disable_log:
            log.warning("TRACKER_BENCH_DISABLE_LOG is set: chat.log is NOT written (benchmarks only)")
        if report.torn_bytes_removed:
            log.warning(
                "Repaired %s: removed a torn last line of %d bytes", self.chat_log.path, report.torn_bytes_removed
            )
        self.last_seq_at_start = report.last_seq
        self.journal = LocalJournal(
            self.chat_log, last_seq=report.last_seq, history_size=settings.history_size, clock=clock
        )
        self.journal.on_trouble = self._on_log_trouble
        policy = MemberPolicy(
            settings.limits, settings.flood_tolerance, settings.flood_forgiveness, monotonic=time.monotonic
        )
        self.room = Room(self.journal, policy)
        self.room.on_join = lambda member: log.info(
            "%s has been added (%s, %s)", member.name, member.address, member.dialect.name
        )
        self.room.on_leave = lambda member, reason: log.info("%s left (%s)", member.name, reason)
        self.gate = PasswordGate(
            settings.password,
            AuthThrottle(base_delay=settings.auth_base_delay, free_failures=settings.auth_free_failures),
        )
        self.connections = Connections(
            Budget(
                total=settings.max_connections,
                strangers=settings.max_unauthenticated,
                strangers_per_address=settings.max_unauthenticated_per_address,
            )
        )
        self.request_exit: Callable[[], None] | None = None
        self.started = False
        self.stopped = False

    def start(self) -> None:
        """Log the start in chat.log (needs the running event loop)."""
        if self.started:
            return
        self.started = True
        if self.settings.exit_when_empty:
            self.room.on_empty = self._on_empty
        self.room.start(f"tracker {__version__} started")
        log.info("Chat log: %s (continuing after seq %d)", self.chat_log.path, self.last_seq_at_start)
        self._watch_log()

    def _watch_log(self) -> None:
        """About once a second, off the hot path: has chat.log been truncated or replaced underneath?"""
        if not self.stopped:
            self.chat_log.check_underneath()
            asyncio.get_running_loop().call_later(LOG_WATCH_SECONDS, self._watch_log)

    def reopen_log(self) -> None:
        """SIGHUP: reopen chat.log by name (logrotate's create mode), between two batches."""
        self.chat_log.reopen()

    def _on_empty(self) -> None:
        log.info("Everybody has left. Exiting...")
        if self.request_exit is not None:
            self.request_exit()

    def _on_log_trouble(self, error: LogWriteError | None) -> None:
        if error is None:
            log.warning("chat.log is writable again; pending events written")
        else:
            log.error("Cannot write chat.log (%s); messages are refused until it is writable", error.strerror)

    async def shutdown(self) -> None:
        """Tell every connection goodbye (1001), log the stop, and wait briefly for the goodbyes."""
        if self.stopped:
            return
        self.stopped = True
        await self.journal.sync()  # what was said before the shutdown reaches everyone first
        members = self.room.shutdown("tracker stopped", bye=_goodbye)
        await self.journal.sync()  # the leaves and the stop, in chat.log before anyone is waited for
        sessions = list(self.connections.sessions)
        for session in sessions:
            session.say_goodbye(CloseCode.GOING_AWAY, SHUTDOWN_MESSAGE)
        log.info("Shutting down: told %d member(s) and %d connection(s) goodbye", members, len(sessions))
        if sessions:
            await asyncio.gather(*(s.finished(self.settings.shutdown_grace) for s in sessions))
        await self.journal.close()


def _goodbye(member: Member) -> tuple[str, ...]:
    return (member.dialect.bye(LeaveReason.SHUTDOWN, SHUTDOWN_MESSAGE),)
