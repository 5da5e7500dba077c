"""The running tracker: the room, its chat log, the password gate, and open connections.

One instance per process, built by the app factory from a Settings object. It
owns start-up (open and repair chat.log, find the room's epoch and who was in the
room, log the start) and the shutdown path that the server runs *before* uvicorn
closes sockets on its own: a stop (Ctrl+C) tells every member goodbye with close
code 1001 and logs their leaves; a restart (SIGTERM) closes every connection with
1012 and keeps the JSON members in the room (``room.json``), so they resume.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from chat_protocol import CloseCode
from chat_protocol.reasons import LeaveReason
from chat_tracker import __version__
from chat_tracker.core.addresses import address_key
from chat_tracker.core.admission import Admission, AdmissionRefusal, Budget
from chat_tracker.core.auth import PasswordGate
from chat_tracker.core.dialects import RESTART
from chat_tracker.core.events import REPLICA_ID_SPAN
from chat_tracker.core.outbox import Coalescer
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.ratelimit import AuthThrottle, KeyedBuckets, WarnLimiter
from chat_tracker.core.records import Present
from chat_tracker.core.room import Member, Room
from chat_tracker.core.session import Session
from chat_tracker.core.tokens import ResumeTokens, new_epoch
from chat_tracker.errors import LogWriteError
from chat_tracker.journal.local import LocalJournal
from chat_tracker.journal.redis_keys import Keys, event_of
from chat_tracker.journal.redis_stream import RedisJournal
from chat_tracker.replicas.replica import ReplicaLink, open_replica
from chat_tracker.service.settings import Settings
from chat_tracker.storage.chatlog import ChatLog, DiscardingChatLog
from chat_tracker.storage.checkpoint import Checkpoint, fold, read_checkpoint, write_checkpoint
from chat_tracker.storage.resume_keys import COUNTS_FILE, ResumeCounts, drop_previous_key, load_key, load_previous_key
from chat_tracker.storage.rotation import KillSwitch, RotatingLog, RotationPolicy, clock_from_env
from chat_tracker.storage.segments import RetentionPolicy

log = logging.getLogger("chat_tracker")

SHUTDOWN_MESSAGE = "The tracker is shutting down. Bye."
RESTART_MESSAGE = "The tracker is restarting; you will be reconnected."
LOG_WATCH_SECONDS = 1.0
CHECKPOINT_SECONDS = 60.0  # room.json at most this old, so a start folds at most a minute of chat.log


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
    """What shutdown and admission need from a session (implemented in websocket.py and native.py)."""

    __slots__ = ()  # the native adapter keeps its connections slotted

    def say_goodbye(self, code: int, message: str, reason: str) -> None:
        raise NotImplementedError

    def make_room(self) -> None:
        """Close this unauthenticated connection: the tracker is full and a newcomer takes its slot."""
        raise NotImplementedError

    async def finished(self, timeout: float) -> None:
        raise NotImplementedError


class Tracker:
    """State shared by the WebSocket endpoint and the REST API.

    With ``settings.redis_url`` it is one replica of a room kept in Redis
    (``replica.py``): no chat.log of its own (the archiver writes it), the journal
    is the Redis stream, and the room lists every replica's members.
    """

    chat_log: RotatingLog | None = None  # None for a replica: the archiver writes chat.log
    journal: LocalJournal | RedisJournal

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.shared = settings.redis_url is not None
        self.link: ReplicaLink | None = None
        if settings.redis_url is not None:
            self._open_replica(settings, settings.redis_url)
        else:
            self._open_local(settings)
        self._on_members(settings)
        self._open_gates(settings)

    def _open_local(self, settings: Settings) -> None:
        """The single process: chat.log in the data dir is the journal."""
        log_class = DiscardingChatLog if settings.bench_disable_log else ChatLog
        clock = clock_from_env(os.environ)
        kill = KillSwitch.from_environ(os.environ)  # test-only (TRACKER_TEST_KILL_AT)
        chat_log = RotatingLog(settings.data_dir, log_class, rotation_policy(settings), clock=clock, kill=kill)
        self.chat_log = chat_log
        report = chat_log.open()
        if settings.bench_disable_log:
            log.warning("TRACKER_BENCH_DISABLE_LOG is set: chat.log is NOT written (benchmarks only)")
        if report.torn_bytes_removed:
            log.warning("Repaired %s: removed a torn last line of %d bytes", chat_log.path, report.torn_bytes_removed)
        self.last_seq_at_start = report.last_seq
        self.was_present = self._who_was_present(report.last_seq)
        journal = LocalJournal(
            chat_log,
            last_seq=report.last_seq,
            history_size=settings.history_size,
            epoch=self.was_present.epoch,
            clock=clock,
        )
        self.journal = journal
        journal.on_trouble = self._on_log_trouble
        # The members who come back after a restart ask for what they missed: read it once, now.
        journal.preload(chat_log.tail(min(settings.history_size, report.last_seq)))
        policy = self._policy(settings)
        previous_key = load_previous_key(settings.data_dir)  # ``rotate-key`` made a new key: the old one, for a grace
        tokens = ResumeTokens(load_key(settings.data_dir), self.journal.epoch, previous_key)
        self.room = Room(self.journal, policy, tokens=tokens, grace=settings.resume_grace)
        self.resume_counts = ResumeCounts(settings.data_dir, self.journal.epoch)
        self.room.on_token_spent = self._record_resume

    def _open_replica(self, settings: Settings, url: str) -> None:
        """Join the room in Redis (or start it): the journal is its stream, the room lists every replica's members."""
        keys = Keys(settings.redis_prefix)
        address = f"{settings.host}:{settings.port}"
        opened = open_replica(url, keys, settings.redis_volatile, address, settings.redis_password)
        log.info(
            "Replica %d of the room in Redis (%s, epoch %s, after seq %d)",
            opened.replica,
            keys.prefix,
            opened.epoch,
            opened.seq,
        )
        self.was_present = Checkpoint(opened.epoch, opened.seq)
        self.last_seq_at_start = opened.seq
        journal = RedisJournal(
            url,
            keys,
            replica=opened.replica,
            epoch=opened.epoch,
            last_seq=opened.seq,
            history_size=settings.history_size,
            # A quarter of the coalescing window: who accepts 10 ms there accepts 2.5 ms here.
            gather=settings.coalesce_ms / 4000,
            password=settings.redis_password,
        )
        self.journal = journal
        room = Room(
            journal,
            self._policy(settings),
            tokens=ResumeTokens(opened.key, opened.epoch, opened.previous_key),
            grace=settings.resume_grace,
            shared=True,
            first_id=opened.replica * REPLICA_ID_SPAN + 1,
        )
        self.room = room
        room.replica = opened.replica
        room.install([(m.member_id, m.name, m.since_seq, m.joined_at, m.replica, m.resumes) for m in opened.roster])
        for seq, at, body in opened.moderation:
            event = event_of(seq, {"t": str(at), "e": body})
            room.moderation.apply(event.kind.value, event.name, event.details())
        journal.on_control = room.control
        journal.on_refused = room.refused
        room.replicas = journal  # the room tells the others itself who moved here and who dropped
        self.link = ReplicaLink(
            url,
            keys,
            opened.replica,
            opened.epoch,
            settings.resume_grace,
            on_fenced=self._fenced,
            on_epoch_lost=self._epoch_lost,
            last_seq=lambda: journal.last_seq,
            on_dead=self._replicas_dead,
            on_unreachable=journal.unreachable,
            key=opened.key,
            on_key_rotated=self._key_rotated,
            password=settings.redis_password,
        )

    def _policy(self, settings: Settings) -> MemberPolicy:
        return MemberPolicy(
            settings.limits, settings.flood_tolerance, settings.flood_forgiveness, monotonic=time.monotonic
        )

    def _on_members(self, settings: Settings) -> None:
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
        self.request_exit: Callable[[], None] | None = None
        # One coalescing window for every member's frames (None: each batch is written at once).
        self.coalescer = Coalescer(settings.coalesce_ms / 1000) if settings.coalesce_ms > 0 else None
        self.restarting = False  # set on SIGTERM: the shutdown is a restart, members resume
        self.started = False
        self.stopped = False
        self._checkpoint_seq = -1

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

    def _who_was_present(self, last_seq: int) -> Checkpoint:
        """The room's epoch and who was in the room at chat.log's end: ``room.json`` brought up to date.

        A new epoch when chat.log is new, or no longer reaches the checkpoint's seq
        (replaced by an older copy: its seqs will be used again).
        """
        data_dir = self.settings.data_dir
        checkpoint = read_checkpoint(data_dir)
        if checkpoint is None or last_seq == 0 or checkpoint.seq > last_seq:
            if last_seq > 0:
                log.warning("chat.log has no matching %s: a new epoch; no earlier session can resume", "room.json")
            checkpoint = Checkpoint(new_epoch(), 0)
        assert self.chat_log is not None
        return fold(checkpoint, self.chat_log.read_after, last_seq)

    def start(self) -> None:
        """Log the start in chat.log (needs the running event loop)."""
        if self.started:
            return
        self.started = True
        if self.settings.exit_when_empty:
            self.room.on_empty = self._on_empty
        if self.link is not None:
            self._start_replica(self.link)
            return
        assert self.chat_log is not None
        self.room.start(f"tracker {__version__} started")
        log.info("Chat log: %s (continuing after seq %d)", self.chat_log.path, self.last_seq_at_start)
        self.room.moderation.restore(self.was_present.moderation)
        self.room.on_address_ban = lambda: self._write_checkpoint(self._checkpoint(*self.room.present()))
        restored = self.room.restore(self.was_present.members, self.resume_counts.read())
        self.resume_counts.rewrite(self.room.resume_counts())  # only the members still in: the file stays small
        self._retire_previous_key()
        if restored:
            log.info("%d member(s) were in the room: away until they resume (%g s)", restored, self.room.grace)
        self._write_checkpoint(self._checkpoint(*self.room.present()))  # the epoch is on disk before any token
        self._watch_log()
        asyncio.get_running_loop().call_later(CHECKPOINT_SECONDS, self._checkpoint_now)

    def _record_resume(self, member: Member) -> None:
        """A resume spent ``member``'s token: its count in ``resume.counts`` before the new token goes out."""
        try:
            self.resume_counts.record(member.since_seq or 0, member.resumes)
        except OSError as error:
            # The resume goes on (the old token is refused from memory); only a restart before the
            # disk is writable again would let the replaced token resume once more.
            log.error("Cannot write %s (%s): the replaced token is refused until a restart", COUNTS_FILE, error)

    def _key_rotated(self, key: bytes) -> None:
        """``rotate-key`` gave the room in Redis a new key: issue under it, accept the old one for one grace."""
        old = self.room.tokens
        if old is None:
            return
        self.room.tokens = old.rotated(key)
        self._retire_previous_key()

    def _retire_previous_key(self) -> None:
        """After one grace, no token under the previous key can still resume anyone: stop accepting it."""
        tokens = self.room.tokens
        if tokens is None or not tokens.has_previous:
            return
        log.info("Tokens under the previous resume key are accepted for %g s (resume.key.previous)", self.room.grace)

        def retire() -> None:
            if self.room.tokens is not tokens:
                return  # rotated again meanwhile: that rotation retires its own previous key
            tokens.forget_previous()
            if self.link is None:
                drop_previous_key(self.settings.data_dir)
            log.info("The previous resume key's grace is over: it resumes no one any more")

        asyncio.get_running_loop().call_later(self.room.grace, retire)

    def _start_replica(self, link: ReplicaLink) -> None:
        assert isinstance(self.journal, RedisJournal)
        self.journal.on_trouble = self._on_redis_trouble
        self.journal.start()
        link.start()
        self.room.start(f"tracker {__version__} started (replica {link.replica})")
        self._retire_previous_key()
        log.info(
            "Room in Redis: %d member(s) in, continuing after seq %d", self.room.member_count, self.last_seq_at_start
        )

    def _on_redis_trouble(self, error: LogWriteError | None) -> None:
        if error is None:
            log.warning("Redis is writable again; pending requests written")

    def _fenced(self) -> None:
        """This replica was reaped while cut off: its members' leaves are in the stream; register again."""
        link = self.link
        assert link is not None and isinstance(self.journal, RedisJournal)
        asyncio.get_running_loop().create_task(self._register_again(link, self.journal))

    async def _register_again(self, link: ReplicaLink, journal: RedisJournal) -> None:
        replica = await link.register()
        journal.replica = replica
        self.room.replica = replica
        self.room.renumber(replica * REPLICA_ID_SPAN + 1)
        log.warning("Registered again as replica %d", replica)

    def _epoch_lost(self, epoch: str, seq: int, key: bytes) -> None:
        """Redis lost the room: close every connection here with 1012 and carry on in the new epoch."""
        assert isinstance(self.journal, RedisJournal) and self.link is not None
        self.journal.restart_at(epoch, seq)
        told = self.room.reset(bye=_restart_goodbye)
        self.room.previous_tokens = self.room.tokens  # its members come back: joined again, recovered: false
        self.room.tokens = ResumeTokens(key, epoch)
        self.was_present = Checkpoint(epoch, seq)
        log.error(
            "New epoch %s after seq %d: %d member(s) here were closed with 1012 and must join again", epoch, seq, told
        )
        self._fenced()

    def _replicas_dead(self, dead: frozenset[int]) -> None:
        self.room.dead_replicas = dead

    def _checkpoint_now(self) -> None:
        """Every minute while the room changes: room.json, written in a worker thread."""
        if self.stopped:
            return
        seq, members = self.room.present()
        if seq != self._checkpoint_seq:
            self._checkpoint_seq = seq
            checkpoint = self._checkpoint(seq, members)  # taken here, on the loop; written in a thread
            asyncio.get_running_loop().run_in_executor(None, self._write_checkpoint, checkpoint)
        asyncio.get_running_loop().call_later(CHECKPOINT_SECONDS, self._checkpoint_now)

    def admit(self, connection: Closable, session: Session) -> bool:
        """A new WebSocket, accepted: True if it may go on; otherwise its session is told why not.

        A banned address is refused before anything else; then the connection must find a
        place among the strangers (``Connections.try_open``). Both adapters open sessions here.
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

    def _checkpoint(self, seq: int, members: list[Present]) -> Checkpoint:
        return Checkpoint(self.journal.epoch, seq, tuple(members), self.room.moderation.snapshot())

    def _write_checkpoint(self, checkpoint: Checkpoint) -> None:
        if self.settings.bench_disable_log:
            return
        try:
            write_checkpoint(self.settings.data_dir, checkpoint)
        except OSError as error:
            log.warning("Cannot write room.json (%s); a restart reads more of chat.log", error.strerror)

    def _watch_log(self) -> None:
        """About once a second, off the hot path: has chat.log been truncated or replaced underneath?"""
        if not self.stopped and self.chat_log is not None:
            self.chat_log.check_underneath()
            asyncio.get_running_loop().call_later(LOG_WATCH_SECONDS, self._watch_log)

    def reopen_log(self) -> None:
        """SIGHUP: reopen chat.log by name (logrotate's create mode), between two batches."""
        if self.chat_log is not None:
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
        """Stop (1001, every leave logged) or restart (1012, members kept), then wait briefly for the goodbyes."""
        if self.stopped:
            return
        self.stopped = True
        await self.journal.sync()  # what was said before the shutdown reaches everyone first
        if self.restarting:
            members = self.room.suspend("tracker stopped for a restart", bye=_restart_goodbye)
            code, message, reason = CloseCode.SERVICE_RESTART, RESTART_MESSAGE, RESTART
        else:
            members = self.room.shutdown("tracker stopped", bye=_goodbye)
            code, message, reason = CloseCode.GOING_AWAY, SHUTDOWN_MESSAGE, LeaveReason.SHUTDOWN
        await self.journal.sync()  # the leaves and the stop, in chat.log before anyone is waited for
        sessions = list(self.connections.sessions)
        for session in sessions:
            session.say_goodbye(code, message, reason)
        what = "restarting" if self.restarting else "shutting down"
        log.info("%s: told %d member(s) and %d connection(s) goodbye", what.capitalize(), members, len(sessions))
        if sessions:
            await asyncio.gather(*(s.finished(self.settings.shutdown_grace) for s in sessions))
        await self.journal.close()
        if self.link is not None:
            # Its alive key goes at once: the others reap whoever does not resume within the grace.
            await self.link.stop(deregister=True)
            return
        self._write_checkpoint(self._checkpoint(*self.room.present()))
        self.resume_counts.close()


def _goodbye(member: Member) -> tuple[str, ...]:
    return (member.dialect.bye(LeaveReason.SHUTDOWN, SHUTDOWN_MESSAGE),)


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


def _restart_goodbye(member: Member) -> tuple[str, ...]:
    return (member.dialect.bye(RESTART, RESTART_MESSAGE),)


def rotation_policy(settings: Settings) -> RotationPolicy:
    """chat.log's rotation and retention, from the flags."""
    retention = RetentionPolicy(settings.keep_segments, settings.keep_days, settings.keep_bytes)
    return RotationPolicy(settings.rotate_bytes, settings.rotate_daily, retention, settings.compress)
