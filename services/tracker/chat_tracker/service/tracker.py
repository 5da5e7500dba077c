"""The running tracker: the room, where it is kept, the password gates, and open connections.

One instance per process, built by the app factory from a Settings object. The
room is kept in one of two ways, its ``Mode``: alone, on chat.log in the data dir
(``standalone.py``), or as one replica of a room in Redis (``service/replicated.py``). The
tracker owns what does not depend on that: the gates and admission, and the
shutdown path that the server runs *before* uvicorn closes sockets on its own: a
stop (Ctrl+C) tells every member goodbye with close code 1001 and logs their
leaves; a restart (SIGTERM) closes every connection with 1012 and keeps the JSON
members in the room, so they resume.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from chat_protocol import CloseCode
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.accounts import AccountStore
from chat_tracker.core.addresses import address_key
from chat_tracker.core.admission import Admission, AdmissionRefusal, Budget
from chat_tracker.core.auth import PasswordGate
from chat_tracker.core.coalescer import Coalescer, replica_gather
from chat_tracker.core.dialects import JSON, RESTART
from chat_tracker.core.direct import conversation_name, direct_frame
from chat_tracker.core.errands import MarkRead, ReadHistory
from chat_tracker.core.ratelimit import AuthThrottle, KeyedBuckets, WarnLimiter
from chat_tracker.core.room import Member, Room
from chat_tracker.core.session import Session
from chat_tracker.journal.protocol import Journal, Replication
from chat_tracker.replicas.replica import ReplicaLink
from chat_tracker.service.accounts import AccountDesk, Registration, open_account_store
from chat_tracker.service.history import history_page, history_page_of_nothing
from chat_tracker.service.lifecycle import RESTART_MESSAGE, SHUTDOWN_MESSAGE, goodbye, member_policy, restart_goodbye
from chat_tracker.service.membership import Memberships
from chat_tracker.service.replica_rooms import ReplicaRooms
from chat_tracker.service.replicated import Replicated
from chat_tracker.service.rooms import RoomHouse
from chat_tracker.service.settings import Settings
from chat_tracker.service.standalone import Standalone
from chat_tracker.storage.rotation import RotatingLog

log = logging.getLogger("chat_tracker")


class Connections:
    """Every open WebSocket session, joined or not, so shutdown can reach them all; and who may open one.

    Admission (``core/admission.py``) puts members before strangers: when the tracker is
    full, a connection that has not given the password is dropped to make room.
    """

    def __init__(self, budget: Budget) -> None:
        self.admission: Admission[Closable] = Admission(budget)
        self.sessions: set[Closable] = set()
        self.total_opened = 0
        self.strangers_dropped = 0

    def try_open(self, session: Closable, address: str) -> AdmissionRefusal | None:
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
    """What shutdown and admission need from a connection (``transport/driver.py``'s ``SessionDriver``)."""

    __slots__ = ()  # the native adapter keeps its connections slotted

    def say_goodbye(self, code: int, message: str, reason: str) -> None:
        raise NotImplementedError

    def make_room(self) -> None:
        """Close this unauthenticated connection: the tracker is full and a newcomer takes its slot."""
        raise NotImplementedError

    async def finished(self, timeout: float) -> None:
        raise NotImplementedError


class Mode(Protocol):
    """Where the room is kept, and what that way of keeping it does at start and at the end."""

    @property
    def journal(self) -> Journal: ...

    @property
    def replication(self) -> Replication | None:
        """The shared journal's own operations (None: the room is not shared)."""

    @property
    def room(self) -> Room: ...

    @property
    def chat_log(self) -> RotatingLog | None:
        """chat.log, when this process writes it (a replica does not: the archiver does)."""

    @property
    def link(self) -> ReplicaLink | None:
        """A replica's link to the others (None: there are no others)."""

    def start(self) -> None:
        """Log the start and begin the periodic work (needs the running event loop)."""

    def stopping(self) -> None:
        """The shutdown began: stop the periodic work that could race the last write."""

    async def close(self) -> None:
        """After the journal is closed: write and release what is left."""


class Tracker:
    """State shared by the WebSocket endpoint and the REST API.

    With ``settings.redis_url`` it is one replica of a room kept in Redis
    (``service/replicated.py``): no chat.log of its own (the archiver writes it), the journal
    is the Redis stream, and the room lists every replica's members.
    """

    def __init__(self, settings: Settings, room_logs: int) -> None:
        self.settings = settings
        self._room_logs = room_logs  # the rooms' chat.log files open at once (runtime/descriptors.py)
        policy = self.policy = member_policy(settings)
        url = settings.redis_url
        # One coalescing window for every member's frames (None: each batch is written at once).
        self.coalescer = Coalescer(settings.coalesce_ms / 1000) if settings.coalesce_ms > 0 else None
        gather = replica_gather(self.coalescer)
        self.mode: Mode = Standalone(settings, policy) if url is None else Replicated(settings, url, policy, gather)
        self.room, self.journal, self.replication = self.mode.room, self.mode.journal, self.mode.replication
        self.chat_log, self.link = self.mode.chat_log, self.mode.link  # for /metrics and /healthz
        self._on_members()
        self._open_gates(settings)

    def _on_members(self) -> None:
        self.room.on_join = lambda member: log.info(
            "%s has been added (%s, %s)", member.name, member.address, member.dialect.name
        )
        self.room.on_leave = lambda member, reason: log.info("%s left (%s)", member.name, reason)
        self.room.on_away = self._away

    def _away(self, member: Member) -> None:
        log.info("%s is away (connection lost); it may resume for %g s", member.name, self.settings.resume_grace)

    def _open_gates(self, settings: Settings) -> None:
        self.warnings = WarnLimiter()  # every refusal warning, once a minute per kind and address
        self.gate = PasswordGate(settings.password, self._throttle(settings), self.warnings)
        # The admin password has a gate (and a throttle) of its own: guessing it is refused just the same.
        self.admin_gate = (
            PasswordGate(settings.admin_password, self._throttle(settings), self.warnings, what="admin password")
            if settings.admin_password is not None
            else None
        )
        warn_short_passwords(settings)
        # Joins and resumes per address key: a burst of a minute's worth, then the rate.
        self.entries = KeyedBuckets(settings.joins_per_minute / 60.0, max(1.0, settings.joins_per_minute))
        self.connections = Connections(
            Budget(
                total=settings.max_connections,
                strangers=settings.max_unauthenticated,
                strangers_per_address=settings.max_unauthenticated_per_address,
            )
        )
        throttles = (self._throttle(settings), self._throttle(settings))  # per account, per address
        store = open_account_store(settings)
        self.accounts = AccountDesk(store, Registration(settings.registration), throttles, self.warnings)
        self.memberships = Memberships(store, self.room)
        self.memberships.attach()
        # The rooms besides the default one and the conversations: on disk beside chat.log, or (replicas) in Redis.
        self.house = self._house(settings, store)
        self.rooms = self.house.rooms
        self.request_exit: Callable[[], None] | None = None
        self.restarting = False  # set on SIGTERM: the shutdown is a restart, members resume
        self.started = False
        self.stopped = False

    def _house(self, settings: Settings, store: AccountStore | None) -> RoomHouse:
        if not isinstance(self.mode, Replicated):
            return RoomHouse(settings, self.policy, store, self.room, self._room_logs)
        link = self.mode.link
        place = (link.replica, link.epoch)
        house = ReplicaRooms(settings, self.policy, store, self.room, place, replica_gather(self.coalescer))
        self.mode.other_rooms = house
        return house

    async def history_page(self, request: ReadHistory, name: str) -> str:
        """The ``history_page`` frame answering ``name``'s ``history``: of a room she is in, or a conversation."""
        directs = self.rooms.directs
        if request.to is not None:
            conversation = directs.existing(conversation_name(name, request.to)) if directs is not None else None
            if conversation is None:
                return history_page_of_nothing(request, {"to": request.to})
            return await history_page(
                conversation.journal,
                request,
                {"to": request.to},
                lambda event: direct_frame(JSON, event, conversation.other(event.name)),
            )
        place = None if request.room is None else self.rooms.place(request.room)
        if place is None:
            return await history_page(self.journal, request)
        return await history_page(place.room.journal, request, {"room": place.meta.name})

    def mark_read(self, errand: MarkRead) -> None:
        """A registered member has seen up to a seq, in the default room or another."""
        if errand.room is None:
            self.memberships.mark_read(errand.name, errand.seq)
        else:
            self.house.mark_read(errand.room, errand.name, errand.seq)

    def _throttle(self, settings: Settings) -> AuthThrottle:
        return AuthThrottle(
            base_delay=settings.auth_base_delay,
            free_failures=settings.auth_free_failures,
            per_minute=settings.auth_guesses_per_minute,
        )

    def warn_refused_origin(self, address: str, origin: str | None) -> None:
        """A WebSocket from a page of a foreign origin was refused (logged once a minute per address)."""
        if self.warnings.should_warn("origin", address_key(address), time.monotonic()):
            log.warning(
                "Refused a WebSocket from %s: origin %.100r is not allowed (logged once a minute per address)",
                address,
                origin,
            )

    def start(self) -> None:
        """Log the start (needs the running event loop)."""
        if self.started:
            return
        self.started = True
        if self.settings.exit_when_empty:
            self.room.on_empty = self._on_empty
        self.mode.start()
        self.house.start()
        self._loading = asyncio.get_running_loop().create_task(self.memberships.load())

    def admit(self, connection: Closable, session: Session) -> bool:
        """A new WebSocket, accepted: True if it may go on; otherwise its session is told why not.

        A banned address is refused before anything else; then the connection must find a
        place among the strangers (``Connections.try_open``). Every ``/ws`` session opens here.
        """
        ban = self.room.moderation.ban_of_address(session.address)
        if ban is not None:
            session.refuse_banned(ban.reason)
            return False
        refusal = self.connections.try_open(connection, session.address)
        if refusal is AdmissionRefusal.ADDRESS:
            session.refuse_busy_address()
        elif refusal is not None:
            session.refuse_full()
        return refusal is None

    def reopen_log(self) -> None:
        """SIGHUP: reopen chat.log by name (logrotate's create mode), between two batches."""
        if self.chat_log is not None:
            self.chat_log.reopen()

    def _on_empty(self) -> None:
        log.info("Everybody has left. Exiting...")
        if self.request_exit is not None:
            self.request_exit()

    async def shutdown(self) -> None:
        """Stop (1001, every leave logged) or restart (1012, members kept), then wait briefly for the goodbyes."""
        if self.stopped:
            return
        self.stopped = True
        self.mode.stopping()
        await self.journal.sync()  # what was said before the shutdown reaches everyone first
        if self.restarting:
            members = self.room.suspend("tracker stopped for a restart", bye=restart_goodbye)
            code, message, reason = CloseCode.SERVICE_RESTART, RESTART_MESSAGE, RESTART
        else:
            members = self.room.shutdown("tracker stopped", bye=goodbye)
            code, message, reason = CloseCode.GOING_AWAY, SHUTDOWN_MESSAGE, LeaveReason.SHUTDOWN
        self.house.stop("tracker stopped")  # every other room's leaves and stop (its members' sockets are closing)
        await self.journal.sync()  # the leaves and the stop, in chat.log before anyone is waited for
        sessions = list(self.connections.sessions)
        for session in sessions:
            session.say_goodbye(code, message, reason)
        what = "restarting" if self.restarting else "shutting down"
        log.info("%s: told %d member(s) and %d connection(s) goodbye", what.capitalize(), members, len(sessions))
        if sessions:
            await asyncio.gather(*(s.finished(self.settings.shutdown_grace) for s in sessions))
        await self.journal.close()
        await self.house.close()
        await self.mode.close()
        await self.memberships.flush()  # offline marks and read positions of the members just told goodbye
        self.accounts.close()


SHORT_PASSWORD_CHARS = 12


def warn_short_passwords(settings: Settings) -> None:
    """A start-up warning for a password short enough to guess (its length only, never the password)."""
    for what, password in (("room", settings.password), ("admin", settings.admin_password)):
        if password is not None and len(password) < SHORT_PASSWORD_CHARS:
            log.warning(
                "The %s password is shorter than %d characters: choose a longer one (guessing is throttled, "
                "not impossible; see docs/operations.md)",
                what,
                SHORT_PASSWORD_CHARS,
            )
