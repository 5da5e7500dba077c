"""The room: who is in, under which name, and the one order in which everything happens.

Pure logic over injected parts (the chat log, the fan-out backend, the clocks): no
sockets and no FastAPI, so it is tested directly. Everything runs on one event
loop, so a name check and its claim happen with no await between them: of many
connections claiming one name at once exactly one wins.

Order of an event's life: ``_record`` gives it the next sequence number and queues
it; ``flush`` (scheduled once per loop iteration) writes the whole batch to
chat.log in one write and only then publishes it; the backend calls ``_deliver``,
which appends the batch's frames to every member's outbox. Members therefore see
events in chat.log order, and nothing is seen that is not already in chat.log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chat_protocol import Limits, MemberInfo, check_name, format_ts, has_lone_surrogate, name_key

from .chatlog import ChatLog, LogWriteError
from .dialects import Dialect, own_frames
from .events import JOIN, LEAVE, MESSAGE, START, STOP, Event
from .fanout import FanoutBackend, InMemoryBackend
from .outbox import Frame, Outbox
from .ratelimit import TokenBucket
from .wire import text_frame

LOG_RETRY_SECONDS = 1.0
LOG_WRITE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, float("inf"))


class Refused(Exception):
    """A request the room turns down; ``code`` is the protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Kicked(Refused):
    """A refusal after which the member has been removed from the room."""


@dataclass(eq=False, slots=True)
class Member:
    """One joined connection."""

    name: str
    key: str
    dialect: Dialect
    outbox: Outbox
    address: str
    joined_at: float
    since_seq: int  # the seq of its own join: it sees nothing older
    last_active: float
    bucket: TokenBucket
    flood_bucket: TokenBucket
    left: bool = False
    leave_seq: int | None = None  # the seq of its leave event, once it left
    close_after_leave: tuple[int, str, tuple[str, ...]] = (1000, "", ())


@dataclass
class RoomStats:
    """Counters read by /metrics; plain integers so counting costs nothing on the hot path."""

    messages: int = 0
    deliveries: int = 0
    joins: int = 0
    leaves: int = 0
    refused_messages: int = 0
    slow_drops: int = 0
    flood_drops: int = 0
    log_write_errors: int = 0
    log_writes: int = 0
    log_write_seconds: float = 0.0
    log_write_buckets: list[int] = field(default_factory=lambda: [0] * len(LOG_WRITE_BUCKETS))

    def observe_log_write(self, seconds: float) -> None:
        self.log_writes += 1
        self.log_write_seconds += seconds
        for index, bound in enumerate(LOG_WRITE_BUCKETS):
            if seconds <= bound:
                self.log_write_buckets[index] += 1
                break


@dataclass(frozen=True)
class RoomPolicy:
    """Limits the room enforces beyond those announced to members."""

    flood_tolerance: int = 20  # refused messages in a burst before a member is closed
    flood_forgiveness: float = 1.0  # refused messages forgiven per second


class Room:
    """The single chat room of a tracker process."""

    def __init__(
        self,
        log: ChatLog,
        limits: Limits,
        *,
        last_seq: int,
        policy: RoomPolicy = RoomPolicy(),
        backend: FanoutBackend | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        auto_flush: bool = True,
    ) -> None:
        self.limits = limits
        self.policy = policy
        self.stats = RoomStats()
        self.on_empty: Callable[[], None] | None = None
        self.on_join: Callable[[Member], None] | None = None
        self.on_leave: Callable[[Member, str], None] | None = None
        self.on_log_trouble: Callable[[LogWriteError | None], None] | None = None
        self._log = log
        self._backend = backend or InMemoryBackend()
        self._backend.attach(self._deliver)
        self._clock = clock
        self._monotonic = monotonic
        self._auto_flush = auto_flush
        self._next_seq = last_seq + 1
        self._by_key: dict[str, Member] = {}
        self._recipients: dict[Member, None] = {}  # ordered set: joined, or leaving but not yet told
        self._pending: list[Event] = []
        self._flush_scheduled = False
        self._log_error: LogWriteError | None = None
        self._closed = False
        self._ever_joined = False

    # --- queries -----------------------------------------------------------------

    @property
    def member_count(self) -> int:
        return len(self._by_key)

    @property
    def log_available(self) -> bool:
        return self._log_error is None

    def names(self) -> list[str]:
        return [member.name for member in self._by_key.values()]

    def who(self) -> list[MemberInfo]:
        now = self._monotonic()
        return [
            MemberInfo(
                name=m.name, joined_at=format_ts(m.joined_at), idle_seconds=round(now - m.last_active, 3)
            )
            for m in self._by_key.values()
        ]

    # --- commands ----------------------------------------------------------------

    def start(self, note: str) -> None:
        """Record the tracker's start."""
        self._record(Event(self._take_seq(), self._clock(), START, text=note))

    def join(self, name: str, dialect: Dialect, outbox: Outbox, address: str) -> Member:
        """Claim ``name`` and enter. Raises NameRefused (invalid/reserved) or Refused."""
        check_name(name)
        key = name_key(name)
        if self._closed:
            raise Refused("shutting_down", "the tracker is shutting down")
        if key in self._by_key:
            raise Refused("name_taken", f"the name {name!r} is taken (or too close to {self._by_key[key].name!r})")
        if self._log_error is not None:
            raise Refused("log_unavailable", "chat.log cannot be written right now; try again later")
        now = self._monotonic()
        member = Member(
            name=name, key=key, dialect=dialect, outbox=outbox, address=address,
            joined_at=self._clock(), since_seq=self._next_seq, last_active=now,
            bucket=TokenBucket(self.limits.rate_per_second, self.limits.rate_burst, self._monotonic),
            flood_bucket=TokenBucket(
                self.policy.flood_forgiveness, self.policy.flood_tolerance, self._monotonic
            ),
        )
        self._by_key[key] = member
        self._recipients[member] = None
        self._ever_joined = True
        self.stats.joins += 1
        event = Event(self._take_seq(), member.joined_at, JOIN, name, origin=member)
        event.members_at_join = tuple(self.names())
        self._record(event)
        if self.on_join is not None:
            self.on_join(member)
        return member

    def say(self, member: Member, text: str) -> None:
        """Send ``text`` from ``member`` to everyone. Raises Refused, or Kicked for flooding."""
        if member.left:
            return
        refusal = self._check_text(text) or self._check_rate(member)
        if refusal is not None:
            self.stats.refused_messages += 1
            raise refusal
        member.last_active = self._monotonic()
        self.stats.messages += 1
        self._record(Event(self._take_seq(), self._clock(), MESSAGE, member.name, text, origin=member))

    def _check_text(self, text: str) -> Refused | None:
        if not text.strip():
            return Refused("empty", "empty message not sent")
        if len(text) > self.limits.max_message_chars:
            return Refused(
                "too_long",
                f"message too long: {len(text)} characters, the limit is {self.limits.max_message_chars}",
            )
        if has_lone_surrogate(text):
            return Refused("invalid_text", "message is not valid Unicode text")
        if self._log_error is not None:
            return Refused("log_unavailable", "message not sent: chat.log cannot be written right now")
        return None

    def _check_rate(self, member: Member) -> Refused | None:
        if member.bucket.take():
            return None
        if member.flood_bucket.take():
            rate = f"{self.limits.rate_per_second:g}"
            return Refused("rate_limited", f"slow down: at most {rate} messages/s; message not sent")
        self.stats.flood_drops += 1
        message = "you kept sending over the rate limit; disconnected"
        dialect = member.dialect
        final = (dialect.error("flooding", message), dialect.bye("flooding", message))
        self.leave(member, "flooding", close=(4006, "flooding", final))
        return Kicked("flooding", message)

    def leave(
        self, member: Member, reason: str, close: tuple[int, str, tuple[str, ...]] | None = None
    ) -> None:
        """Take ``member`` out of the room: one leave event, however often it is called."""
        if member.left:
            return
        member.left = True
        if close is not None:
            member.close_after_leave = close
        del self._by_key[member.key]
        self.stats.leaves += 1
        if self._closed:
            return
        member.leave_seq = self._take_seq()
        self._record(Event(member.leave_seq, self._clock(), LEAVE, member.name, reason, origin=member))
        if self.on_leave is not None:
            self.on_leave(member, reason)
        if not self._by_key and self._ever_joined and self.on_empty is not None:
            self.on_empty()

    def drop_slow(self, member: Member) -> None:
        """``member`` could not keep up: its outbox overflowed."""
        if not member.left:
            self.stats.slow_drops += 1
        self.leave(member, "slow")

    def shutdown(self, note: str, bye: Callable[[Member], tuple[str, ...]]) -> int:
        """Log every member's leave and the stop, then close every outbox with 1001.

        Members are not told of each other's leaving: each gets one goodbye instead.
        Returns the number of members told.
        """
        if self._closed:
            return 0
        self.flush()
        members = list(self._recipients)
        now = self._clock()
        events = [
            Event(self._take_seq(), now, LEAVE, m.name, "shutdown") for m in members if not m.left
        ]
        events.append(Event(self._take_seq(), now, STOP, text=note))
        self._closed = True
        for member in members:
            member.left = True
            member.outbox.close(1001, "tracker shutting down", bye(member))
        self._by_key.clear()
        self._recipients.clear()
        self._pending.extend(events)
        self.flush()
        return len(members)

    # --- the pipeline ------------------------------------------------------------

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _record(self, event: Event) -> None:
        self._pending.append(event)
        if self._auto_flush and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write every pending event to chat.log, then publish them. Retries later on failure."""
        self._flush_scheduled = False
        if not self._pending:
            return
        batch = self._pending
        data = b"".join(event.log_line() for event in batch)
        started = time.perf_counter()
        try:
            self._log.append(data)
        except LogWriteError as error:
            self._log_failed(error)
            return
        self.stats.observe_log_write(time.perf_counter() - started)
        self._pending = []
        if self._log_error is not None:
            self._log_error = None
            if self.on_log_trouble is not None:
                self.on_log_trouble(None)
        if not self._closed:
            self._backend.publish(batch)

    def _log_failed(self, error: LogWriteError) -> None:
        self.stats.log_write_errors += 1
        first_failure = self._log_error is None
        self._log_error = error
        if first_failure and self.on_log_trouble is not None:
            self.on_log_trouble(error)
        if self._auto_flush and not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(LOG_RETRY_SECONDS, self.flush)

    def _deliver(self, batch: Sequence[Event]) -> None:
        """Hand each member its frames for a logged batch (called by the backend).

        Most members receive exactly the shared rendering of every event in the
        batch: that is built once per dialect and handed over as one piece. Only
        the members the batch concerns (its senders, joiners, leavers, and those who
        joined part-way through it) get frames assembled for them alone.
        """
        first_seq, last_seq = batch[0].seq, batch[-1].seq
        concerned = {event.origin for event in batch}
        shared = _SharedFrames(batch)
        deliveries = 0
        finished: list[Member] = []
        for member in self._recipients:
            if member in concerned or member.since_seq > first_seq:
                deliveries += self._deliver_individually(member, batch)
            else:
                deliveries += shared.push_to(member)
            if member.leave_seq is not None and member.leave_seq <= last_seq:
                finished.append(member)
        self.stats.deliveries += deliveries
        for member in finished:
            self._finish_leaving(member)

    def _deliver_individually(self, member: Member, batch: Sequence[Event]) -> int:
        outbox, dialect = member.outbox, member.dialect
        wired = outbox.wired
        frames: list[Frame] = []
        until = member.leave_seq if member.leave_seq is not None else batch[-1].seq
        for event in batch:
            if event.seq < member.since_seq or event.seq > until:
                continue  # from before it joined, or after it left (later in this batch)
            if event.origin is member:
                own = own_frames(member, event, self.limits)
                frames.extend([text_frame(text) for text in own] if wired else own)
            else:
                frames.append(dialect.shared_wire(event) if wired else dialect.shared(event))
        outbox.push_many(frames)
        return len(frames)

    def _finish_leaving(self, member: Member) -> None:
        # A leaver stays a recipient until the batch holding its own leave event is
        # delivered, so it still receives (and acknowledges) everything before it.
        code, reason, final = member.close_after_leave
        member.outbox.close(code, reason, final)
        del self._recipients[member]


class _SharedFrames:
    """A batch's frames as most members receive them, built once per (dialect, wired)."""

    __slots__ = ("batch", "_built")

    def __init__(self, batch: Sequence[Event]) -> None:
        self.batch = batch
        self._built: dict[tuple[Dialect, bool], tuple[list[Frame], bytes]] = {}

    def push_to(self, member: Member) -> int:
        outbox = member.outbox
        key = (member.dialect, outbox.wired)
        built = self._built.get(key)
        if built is None:
            built = self._build(*key)
            self._built[key] = built
        frames, joined = built
        if key[1]:
            outbox.push_wire(joined, len(frames))
        else:
            outbox.push_many(frames)
        return len(frames)

    def _build(self, dialect: Dialect, wired: bool) -> tuple[list[Frame], bytes]:
        if wired:
            wire_frames: list[Frame] = [dialect.shared_wire(event) for event in self.batch]
            return wire_frames, b"".join(wire_frames)  # type: ignore[arg-type]
        return [dialect.shared(event) for event in self.batch], b""
