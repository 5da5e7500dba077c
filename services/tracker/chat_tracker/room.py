"""The room: who is in, under which name, and delivery of the journal's events to them.

Pure logic over injected parts (the journal, the member policy, the clocks): no
sockets and no FastAPI, so it is tested directly. A request (join, say, leave) is
checked here and appended to the journal; the room acts on the event only when the
journal hands it back durable, in seq order (``_deliver``). So a member receives
exactly the events from its own join to its own leave, in chat.log order, and
nothing that is not already in chat.log.

A member's life is an explicit state (``MemberState``): JOINING from the claim of
its name until its join event is delivered, JOINED, LEAVING from the moment it
leaves (its name is free at once) until its leave event is delivered - it still
receives everything before its leave - and GONE once its outbox is closed.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chat_protocol import CloseCode, Limits, MemberInfo, check_name, format_ts
from chat_protocol.reasons import LeaveReason

from .claims import NameClaims
from .delivery import SharedFrames, frames_for
from .dialects import Dialect
from .errors import Kicked, Refused
from .events import JOIN, LEAVE, MESSAGE, START, STOP, Event
from .journal import Journal
from .outbox import Outbox
from .policy import Allowance, MemberPolicy, Verdict

__all__ = ["Kicked", "Member", "MemberState", "Refused", "Room", "RoomStats"]

CloseAfterLeave = tuple[int, str, tuple[str, ...]]


class MemberState(enum.Enum):
    JOINING = "joining"  # name claimed, join event not yet delivered
    JOINED = "joined"
    LEAVING = "leaving"  # name released, leave event not yet delivered
    GONE = "gone"  # outbox closed


@dataclass(eq=False, slots=True)
class Member:
    """One connection in the room."""

    id: int
    name: str
    key: str
    dialect: Dialect
    outbox: Outbox
    address: str
    joined_at: float
    last_active: float
    allowance: Allowance
    state: MemberState = MemberState.JOINING
    since_seq: int | None = None  # the seq of its own join, once delivered: it sees nothing older
    leave_seq: int | None = None  # the seq of its own leave, once delivered
    close_after_leave: CloseAfterLeave = (CloseCode.NORMAL, "", ())

    @property
    def left(self) -> bool:
        return self.state is MemberState.LEAVING or self.state is MemberState.GONE


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


class Room:
    """The single chat room of a tracker process."""

    def __init__(
        self,
        journal: Journal,
        policy: MemberPolicy,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journal = journal
        self.policy = policy
        self.limits: Limits = policy.limits
        self.stats = RoomStats()
        self.on_empty: Callable[[], None] | None = None
        self.on_join: Callable[[Member], None] | None = None
        self.on_leave: Callable[[Member, str], None] | None = None
        self._clock = clock
        self._monotonic = monotonic
        self._claims = NameClaims()
        self._ids = itertools.count(1)
        self._members: dict[str, Member] = {}  # name key -> member, in join order
        self._by_id: dict[int, Member] = {}  # joining, joined, or leaving but not yet told
        self._closed = False
        self._ever_joined = False
        self._unapplied = 0  # local joins and leaves appended whose events have not come back yet
        journal.subscribe(self._deliver)

    # --- queries -----------------------------------------------------------------

    @property
    def member_count(self) -> int:
        return len(self._members)

    @property
    def log_available(self) -> bool:
        return self.journal.writable

    def names(self) -> list[str]:
        return [member.name for member in self._members.values()]

    def who(self) -> list[MemberInfo]:
        now = self._monotonic()
        return [
            MemberInfo(name=m.name, joined_at=format_ts(m.joined_at), idle_seconds=round(now - m.last_active, 3))
            for m in self._members.values()
        ]

    # --- requests ----------------------------------------------------------------

    def start(self, note: str) -> None:
        """Record the tracker's start."""
        self.journal.append(START, text=note)

    def join(self, name: str, dialect: Dialect, outbox: Outbox, address: str) -> Member:
        """Claim ``name`` and enter. Raises NameRefused (invalid/reserved) or Refused."""
        check_name(name)
        if self._closed:
            raise Refused("shutting_down", "the tracker is shutting down")
        key = self._claims.claim(name)
        if not self.journal.writable:
            self._claims.release(key)
            raise Refused("log_unavailable", "chat.log cannot be written right now; try again later")
        now = self._monotonic()
        member = Member(
            id=next(self._ids),
            name=name,
            key=key,
            dialect=dialect,
            outbox=outbox,
            address=address,
            joined_at=self._clock(),
            last_active=now,
            allowance=self.policy.allowance(),
        )
        self._members[key] = member
        self._by_id[member.id] = member
        self._ever_joined = True
        self.stats.joins += 1
        self._unapplied += 1
        self.journal.append(JOIN, name, origin=member.id, members=tuple(self.names()))
        if self.on_join is not None:
            self.on_join(member)
        return member

    def say(self, member: Member, text: str) -> None:
        """Send ``text`` from ``member`` to everyone. Raises Refused, or Kicked for flooding."""
        if member.left:
            return
        refusal = self.policy.check_text(text, self.journal.writable)
        if refusal is None:
            verdict = self.policy.check_rate(member.allowance)
            if verdict is Verdict.REMOVE:
                raise self._remove_for_flooding(member)
            if verdict is Verdict.REFUSE:
                refusal = self.policy.rate_refusal()
        if refusal is not None:
            self.stats.refused_messages += 1
            raise refusal
        member.last_active = self._monotonic()
        self.stats.messages += 1
        self.journal.append(MESSAGE, member.name, text, origin=member.id)

    def _remove_for_flooding(self, member: Member) -> Kicked:
        self.stats.refused_messages += 1
        self.stats.flood_drops += 1
        message = "you kept sending over the rate limit; disconnected"
        final = (member.dialect.error("flooding", message), member.dialect.bye("flooding", message))
        self.leave(member, LeaveReason.FLOODING, close=(CloseCode.FLOODING, "flooding", final))
        return Kicked("flooding", message)

    def leave(self, member: Member, reason: str, close: CloseAfterLeave | None = None) -> None:
        """Take ``member`` out of the room: one leave event, however often it is called."""
        if member.left:
            return
        member.state = MemberState.LEAVING
        if close is not None:
            member.close_after_leave = close
        del self._members[member.key]
        self._claims.release(member.key)
        self.stats.leaves += 1
        if self._closed:
            return
        self._unapplied += 1
        self.journal.append(LEAVE, member.name, reason, origin=member.id)
        if self.on_leave is not None:
            self.on_leave(member, reason)
        if not self._members and self._ever_joined and self.on_empty is not None:
            self.on_empty()

    def drop_slow(self, member: Member) -> None:
        """``member`` could not keep up: its outbox overflowed."""
        if not member.left:
            self.stats.slow_drops += 1
        self.leave(member, LeaveReason.SLOW)

    def shutdown(self, note: str, bye: Callable[[Member], tuple[str, ...]]) -> int:
        """Log every member's leave and the stop, then close every outbox with 1001.

        Members are not told of each other's leaving: each gets one goodbye instead.
        Deliver what is pending first (``await journal.sync()``); the leaves and the
        stop become durable with the journal's next commit. Returns the number told.
        """
        if self._closed:
            return 0
        members = list(self._by_id.values())
        for member in members:
            if not member.left:
                self.journal.append(LEAVE, member.name, LeaveReason.SHUTDOWN, origin=member.id)
        self.journal.append(STOP, text=note)
        self._closed = True
        for member in members:
            member.state = MemberState.GONE
            member.outbox.close(CloseCode.GOING_AWAY, "tracker shutting down", bye(member))
        self._members.clear()
        self._claims.clear()
        self._by_id.clear()
        return len(members)

    # --- delivery ----------------------------------------------------------------

    def _deliver(self, batch: Sequence[Event]) -> None:
        """Hand each member its frames for a durable batch (the journal's subscriber).

        Most members receive exactly the shared rendering of every event in the
        batch: that is built once per dialect and handed over as one piece. Only
        the members the batch concerns (its senders, joiners, leavers) get frames
        assembled for them alone.
        """
        if self._closed:
            return
        concerned = {event.origin for event in batch}  # its senders, joiners and leavers
        # Only while a local join or leave is on its way back is there a seq to note.
        leavers = self._apply_membership(batch) if self._unapplied else ()
        shared = SharedFrames(batch)
        deliveries = 0
        for member in self._by_id.values():
            if member.id in concerned:
                if member.since_seq is not None:
                    deliveries += frames_for(member, batch, self.limits)
            elif member.since_seq is not None:
                deliveries += shared.push_to(member)
        self.stats.deliveries += deliveries
        for leaver in leavers:
            self._finish_leaving(leaver)

    def _apply_membership(self, batch: Sequence[Event]) -> list[Member]:
        """Note where each local member's join and leave take effect; the members leaving in this batch."""
        leavers: list[Member] = []
        for event in batch:
            kind = event.kind
            if (kind is not JOIN and kind is not LEAVE) or event.origin is None:
                continue
            member = self._by_id.get(event.origin)
            if member is None:
                continue  # not one of this process's members
            self._unapplied -= 1
            if kind is JOIN:
                member.since_seq = event.seq
                if member.state is MemberState.JOINING:
                    member.state = MemberState.JOINED
            else:
                member.leave_seq = event.seq
                leavers.append(member)
        return leavers

    def _finish_leaving(self, member: Member) -> None:
        # A leaver stays a recipient until the batch holding its own leave event is
        # delivered, so it still receives (and acknowledges) everything before it.
        code, reason, final = member.close_after_leave
        member.state = MemberState.GONE
        member.outbox.close(code, reason, final)
        del self._by_id[member.id]
