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

A JSON member whose connection is lost goes AWAY instead of leaving: it keeps its
name and its place for the resume grace, receives nothing, and either resumes
(``resume``: back to JOINED on a new connection, after a replay of what it missed,
with no leave or join logged) or leaves with reason ``lost`` when the grace ends.

    JOINING --join delivered--> JOINED --connection lost--> AWAY --resume--> JOINED
    JOINED/AWAY --leave--> LEAVING --leave delivered--> GONE      AWAY --grace over--> GONE

A room *shared* by several replicas (``shared=True``, Redis) also holds the members
other replicas serve, as REMOTE: it learns of them from their join events, and of
their leaves the same way, so every replica lists the whole room and refuses a name
held anywhere. A REMOTE member that resumes here becomes JOINED here (the journal
records the move, and its old replica closes its old connection); kicks and bans
take effect at their seq on the replica serving the member.

    REMOTE --resume here--> JOINED --resumed elsewhere--> REMOTE --leave delivered--> gone
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from chat_protocol import CloseCode, Limits, MemberInfo, NameRefused, Resumed, check_name, encode, format_ts, name_key
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.claims import NameClaims
from chat_tracker.core.delivery import SharedFrames, frames_for
from chat_tracker.core.dialects import JSON, Dialect, ResumeOffer
from chat_tracker.core.events import (
    ANNOUNCE,
    BAN,
    JOIN,
    KICK,
    LEAVE,
    MEMBER_EVENTS,
    MESSAGE,
    MODERATION_EVENTS,
    MUTE,
    START,
    STOP,
    UNBAN,
    Event,
    EventKind,
)
from chat_tracker.core.events import REPLICA_ID_SPAN as ID_SPAN
from chat_tracker.core.moderation import Ban, Moderation, details, new_ban_id
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.policy import Allowance, MemberPolicy, Verdict
from chat_tracker.core.records import Present
from chat_tracker.core.tokens import ResumeTokens
from chat_tracker.errors import BadToken, Kicked, Recover, Refused
from chat_tracker.journal.protocol import Journal

__all__ = ["Kicked", "Member", "MemberState", "Refused", "Resuming", "Room", "RoomStats"]

log = logging.getLogger("chat_tracker")

CloseAfterLeave = tuple[int, str, tuple[str, ...]]
RECENT_IDS = 128  # message ids remembered per member: far more than a client ever has unacknowledged


class Timer(Protocol):
    def cancel(self) -> None: ...


CallLater = Callable[[float, Callable[[], None]], Timer]


def _loop_call_later(delay: float, callback: Callable[[], None]) -> Timer:
    return asyncio.get_running_loop().call_later(delay, callback)


# The outbox of a member with no connection: closed, so anything pushed to it is dropped.
DETACHED = Outbox(0)
DETACHED.close(CloseCode.NORMAL)


class MemberState(enum.Enum):
    JOINING = "joining"  # name claimed, join event not yet delivered
    JOINED = "joined"
    AWAY = "away"  # connection lost; may resume within the grace
    LEAVING = "leaving"  # name released, leave event not yet delivered
    GONE = "gone"  # outbox closed
    REMOTE = "remote"  # served by another replica (a shared room)


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
    recent_ids: dict[str, Event | None] | None = None  # its message ids -> their events once delivered
    replay: list[Event] | None = None  # while resuming: the live events held back until the replay is out
    recover_after: int | None = None  # rejoining from a lost epoch: its welcome is a ``resumed`` (recovered: false)
    owner: int = 0  # a REMOTE member: the replica serving it
    away_elsewhere: bool = False  # a REMOTE member whose connection dropped on its replica
    resumes: int = 0  # how many times this membership resumed: only the token with this count resumes it

    @property
    def left(self) -> bool:
        return self.state is MemberState.LEAVING or self.state is MemberState.GONE


@dataclass(frozen=True)
class Resuming:
    """A resume under way: replay the events in (``after``, ``until``], then the ones held back in ``member.replay``."""

    member: Member
    after: int
    until: int


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
    resumes: int = 0
    resumes_refused: int = 0
    replayed: int = 0
    replays_stopped: int = 0  # replays that stopped reading because their session was replaced or closed
    duplicates: int = 0
    away: int = 0


class Room:
    """The single chat room of a tracker process."""

    def __init__(
        self,
        journal: Journal,
        policy: MemberPolicy,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        tokens: ResumeTokens | None = None,
        grace: float = 0.0,
        call_later: CallLater = _loop_call_later,
        shared: bool = False,
        first_id: int = 1,
    ) -> None:
        self.journal = journal
        self.shared = shared
        self.replica = 0  # a shared room: this replica's number
        self.dead_replicas: frozenset[int] = frozenset()  # a shared room: replicas that stopped answering
        self.on_resumed_here: Callable[[Member], None] | None = None
        self.on_token_spent: Callable[[Member], None] | None = None  # a resume took a token: persist the count
        self.previous_tokens: ResumeTokens | None = None  # a shared room: the epoch its journal lost
        self.policy = policy
        self.tokens = tokens
        self.grace = grace
        self.limits: Limits = policy.limits
        self.stats = RoomStats()
        self.on_empty: Callable[[], None] | None = None
        self.on_join: Callable[[Member], None] | None = None
        self.on_leave: Callable[[Member, str], None] | None = None
        self.on_away: Callable[[Member], None] | None = None
        # An address ban is about to be logged: make the address durable elsewhere (room.json; a
        # replica's Redis keeps it in the event itself, which no member or chat.log line shows).
        self.on_address_ban: Callable[[], None] = lambda: None
        self._clock = clock
        self._monotonic = monotonic
        self._call_later = call_later
        self._claims = NameClaims()
        self._ids = itertools.count(first_id)
        self._members: dict[str, Member] = {}  # name key -> member, in join order
        self._by_id: dict[int, Member] = {}  # connected: joining, joined, or leaving but not yet told
        self._away: dict[int, Timer] = {}  # member id -> the end of its grace
        self._delivered_seq = journal.last_seq
        self.moderation = Moderation(clock)
        self._moderating = 0  # moderation events appended whose delivery has not applied them yet
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
            MemberInfo(
                name=m.name,
                joined_at=format_ts(m.joined_at),
                idle_seconds=round(now - m.last_active, 3),
                away=m.state is MemberState.AWAY or (m.state is MemberState.REMOTE and self._away_elsewhere(m)),
            )
            for m in self._members.values()
        ]

    def _away_elsewhere(self, member: Member) -> bool:
        return member.away_elsewhere or member.owner in self.dead_replicas

    @property
    def away_count(self) -> int:
        return len(self._away)

    def present(self) -> tuple[int, list[Present]]:
        """Who is in the room as of the last delivered seq (``room.json``): the seq and its members."""
        seq = self._delivered_seq
        members = [
            Present(m.name, m.since_seq, m.joined_at)
            for m in self._members.values()
            if m.since_seq is not None and m.since_seq <= seq
        ]
        return seq, members

    def resume_counts(self) -> list[tuple[int, int]]:
        """``(join seq, resumes)`` of every member in the room (``resume.counts`` keeps only these)."""
        return [(m.since_seq, m.resumes) for m in self._members.values() if m.since_seq is not None]

    def offer(self, event: Event) -> ResumeOffer | None:
        """What a JSON welcome tells its member for a later resume (None if this room does not resume)."""
        if self.tokens is None:
            return None
        return ResumeOffer(self.tokens.epoch, self.tokens.issue(event.name, event.seq), self.grace)

    def token_for(self, member: Member) -> str:
        """``member``'s latest token: the one its next resume must bring ("" if this room does not resume)."""
        if self.tokens is None:
            return ""
        return self.tokens.issue(member.name, member.since_seq or 0, member.resumes)

    # --- requests ----------------------------------------------------------------

    def start(self, note: str) -> None:
        """Record the tracker's start."""
        self.journal.append(START, text=note)

    def restore(self, present: Sequence[Present], resumes: Mapping[int, int] | None = None) -> int:
        """Bring back, as AWAY for the grace, the members who were in the room when the tracker last stopped.

        ``resumes``: join seq -> how many times that membership had resumed (``resume.counts``).
        """
        counts = resumes or {}
        restored = 0
        for was in present:
            try:
                key = self._claims.claim(was.name)
            except (NameRefused, Refused):
                continue  # the rules changed, or a duplicate: it cannot come back under that name
            member = Member(
                id=next(self._ids),
                name=was.name,
                key=key,
                dialect=JSON,
                outbox=DETACHED,
                address="",
                joined_at=was.joined_at,
                last_active=self._monotonic(),
                allowance=self.policy.allowance(),
                state=MemberState.AWAY,
                since_seq=was.since_seq,
                resumes=counts.get(was.since_seq, 0),
            )
            self._members[key] = member
            self._ever_joined = True
            self._start_grace(member)
            restored += 1
        return restored

    def join(
        self, name: str, dialect: Dialect, outbox: Outbox, address: str, recover_after: int | None = None
    ) -> Member:
        """Claim ``name`` and enter. Raises NameRefused (invalid/reserved) or Refused."""
        check_name(name)
        if self._closed:
            raise Refused("shutting_down", "the tracker is shutting down")
        ban = self.moderation.ban_of_name(name)
        if ban is not None:
            raise Refused("banned", f"the name {name!r} is banned by a moderator{_because(ban.reason)}")
        try:
            key = self._claims.claim(name)
        except Refused as taken:
            holder = self._members.get(name_key(name))
            if holder is not None and holder.state is MemberState.AWAY:
                message = f"{taken.message}; its holder's connection dropped, and it is kept for them for a while"
                raise Refused("name_taken", message) from None
            raise
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
            recover_after=recover_after,
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

    def say(self, member: Member, text: str, msg_id: str | None = None) -> None:
        """Send ``text`` from ``member`` to everyone. Raises Refused, or Kicked for flooding.

        A message whose ``msg_id`` this member already sent is not logged again: the
        sender gets the first one's echo (if it is out yet) as its acknowledgement.
        """
        if member.left:
            return
        refusal = self.policy.check_text(text, self.journal.writable)
        if self.moderation.mutes and member.key in self.moderation.mutes:
            refusal = self._muted(member) or refusal
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
        if msg_id is not None and self._seen(member, msg_id):
            return
        self.stats.messages += 1
        self.journal.append(MESSAGE, member.name, text, origin=member.id, msg_id=msg_id)

    def _muted(self, member: Member) -> Refused | None:
        until = self.moderation.muted_until(member.name)
        if until is None:
            return None
        return Refused("muted", f"you are muted by a moderator until {format_ts(until)}; your message was not sent")

    def _seen(self, member: Member, msg_id: str) -> bool:
        """Whether ``msg_id`` is a resend (then acknowledge it); else remember it."""
        ids = member.recent_ids
        if ids is None:
            ids = member.recent_ids = {}
        elif msg_id in ids:
            self.stats.duplicates += 1
            first = ids[msg_id]
            if first is not None:
                member.outbox.push(first.own_json_frame())
            return True
        ids[msg_id] = None
        if len(ids) > RECENT_IDS:
            del ids[next(iter(ids))]
        return False

    def _remove_for_flooding(self, member: Member) -> Kicked:
        self.stats.refused_messages += 1
        self.stats.flood_drops += 1
        message = "you kept sending over the rate limit; disconnected"
        final = (member.dialect.error("flooding", message), member.dialect.bye("flooding", message))
        self.leave(member, LeaveReason.FLOODING, close=(CloseCode.FLOODING, "flooding", final))
        return Kicked("flooding", message)

    def leave(self, member: Member, reason: str, close: CloseAfterLeave | None = None) -> None:
        """Take ``member`` out of the room: one leave event, however often it is called."""
        if member.left or member.state is MemberState.REMOTE:
            return  # a REMOTE member leaves on its own replica
        if member.state is MemberState.AWAY:
            self._leave_while_away(member, reason)
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

    def _leave_while_away(self, member: Member, reason: str) -> None:
        # No connection to tell and none in the delivery set: logged, and done.
        timer = self._away.pop(member.id, None)
        if timer is not None:
            timer.cancel()
        member.state = MemberState.GONE
        del self._members[member.key]
        self._claims.release(member.key)
        self.stats.leaves += 1
        if self._closed:
            return
        self.journal.append(LEAVE, member.name, reason, origin=member.id)
        if self.on_leave is not None:
            self.on_leave(member, reason)
        if not self._members and self._ever_joined and self.on_empty is not None:
            self.on_empty()

    # --- connections lost and resumed ----------------------------------------------

    def connection_lost(self, member: Member, outbox: Outbox, reason: str, resumable: bool) -> None:
        """``member``'s connection (the one with ``outbox``) ended without a leave.

        A resumable member goes AWAY for the grace; any other leaves with ``reason``.
        A connection the member has since resumed away from changes nothing.
        """
        if member.outbox is not outbox or member.left or member.state is MemberState.AWAY:
            return
        if resumable and self.grace > 0 and member.state is MemberState.JOINED and not self._closed:
            self._go_away(member)
        else:
            self.leave(member, reason)

    def _go_away(self, member: Member) -> None:
        member.state = MemberState.AWAY
        member.outbox = DETACHED
        member.replay = None
        del self._by_id[member.id]
        self.stats.away += 1
        self._start_grace(member)
        if self.on_away is not None:
            self.on_away(member)

    def _start_grace(self, member: Member) -> None:
        self._away[member.id] = self._call_later(self.grace, lambda: self._grace_over(member))

    def _grace_over(self, member: Member) -> None:
        self._away.pop(member.id, None)
        if member.state is MemberState.AWAY:
            self.leave(member, LeaveReason.LOST)

    def resume(self, token: str, epoch: str, after: int, outbox: Outbox, address: str) -> Resuming:
        """Bring the member ``token`` speaks for back on ``outbox``. Raises Refused (resume_* codes).

        Its live events are held back (``member.replay``) from here on; the caller
        replays (``after``, ``until``] from the journal, then ``catch_up`` hands it the rest.
        """
        try:
            resuming = self._resume(token, epoch, after, outbox, address)
        except Refused:
            self.stats.resumes_refused += 1
            raise
        self.stats.resumes += 1
        return resuming

    def _resume(self, token: str, epoch: str, after: int, outbox: Outbox, address: str) -> Resuming:
        if self._closed:
            raise Refused("shutting_down", "the tracker is shutting down")
        tokens = self.tokens
        if tokens is None:
            raise Refused("resume_bad_token", "this tracker does not resume sessions")
        if epoch != tokens.epoch:
            self._recover(token, epoch, after)
            raise Refused("resume_wrong_epoch", "chat.log has started anew (another epoch): nothing can be resumed")
        try:
            claim = tokens.check(token)
        except BadToken as error:
            raise Refused("resume_bad_token", str(error)) from None
        if after > self._delivered_seq and not self.shared:
            raise Refused("resume_beyond_end", f"seq {after} is beyond the end of chat.log ({self._delivered_seq})")
        member = self._members.get(name_key(claim.name))
        if member is None or member.since_seq != claim.since_seq:
            raise Refused("resume_expired", f"the session of {claim.name} has ended (it left, or its grace ran out)")
        if claim.resumes != member.resumes:
            raise Refused("resume_bad_token", "the resume token was used already: only the latest one resumes")
        self._spend_token(member)
        self._attach(member, outbox, address)
        if self.shared and self.on_resumed_here is not None:
            self.on_resumed_here(member)  # the other replicas learn who serves it now
        # Never replay from before its own join: it saw that as its welcome. A shared
        # room may not have read up to ``after`` yet: then nothing is replayed, and
        # live events up to ``after`` are skipped (``until``).
        after = max(after, claim.since_seq)
        return Resuming(member, after=after, until=max(after, self._delivered_seq))

    def _spend_token(self, member: Member) -> None:
        """The token just checked is used up: the next count, persisted before its token is sent."""
        member.resumes += 1
        if self.on_token_spent is not None:
            self.on_token_spent(member)

    def _recover(self, token: str, epoch: str, after: int) -> None:
        """A token of the epoch this shared room's journal lost: raise Recover (join again), else return."""
        previous = self.previous_tokens
        if previous is None or epoch != previous.epoch:
            return
        try:
            claim = previous.check(token)
        except BadToken:
            return
        raise Recover(claim.name, after)

    def recovered_frame(self, member: Member, event: Event) -> str:
        """A member back from a lost epoch: its ``resumed`` (recovered: false) in place of a welcome."""
        after = member.recover_after or 0
        tokens = self.tokens
        assert tokens is not None
        resumed = Resumed(
            seq=event.seq,
            name=member.name,
            epoch=tokens.epoch,
            token=tokens.issue(member.name, event.seq),
            recovered=False,
            replayed=0,
            messages=0,
            members=list(event.members),
            limits=self.limits,
            resume_grace=self.grace,
            gone=[after + 1, event.seq - 1] if event.seq - 1 > after else None,
        )
        return encode(resumed)

    def _attach(self, member: Member, outbox: Outbox, address: str) -> None:
        if member.state is MemberState.REMOTE:
            member.state = MemberState.JOINED
            member.owner = 0
            member.away_elsewhere = False
        elif member.state is MemberState.AWAY:
            timer = self._away.pop(member.id, None)
            if timer is not None:
                timer.cancel()
            member.state = MemberState.JOINED
        else:  # its old connection is still open (it may not know yet that it is dead): it is replaced
            message = "this session was resumed on another connection"
            member.outbox.close(CloseCode.REPLACED, "replaced", (member.dialect.error("replaced", message),))
        member.outbox = outbox
        member.address = address
        member.replay = []
        self._by_id[member.id] = member

    def catch_up(self, member: Member, *, last: bool) -> list[Event]:
        """The events held back for a resuming member; with ``last``, it receives live ones from now on."""
        held = member.replay or []
        member.replay = None if last else []
        return held

    def replay_frames(self, member: Member, events: Sequence[Event], after: int) -> tuple[list[str], int]:
        """``member``'s frames for replayed events after seq ``after`` (its own messages with their ids).

        Also the seq of the last event framed (``after`` if none): where the member's cursor ends up.
        """
        kept, _ = self.replayable(member, events, after)
        frames = [
            event.own_json_frame() if event.origin == member.id else member.dialect.shared(event) for event in kept
        ]
        self.stats.replayed += len(frames)
        return frames, kept[-1].seq if kept else after

    @staticmethod
    def replayable(member: Member, events: Sequence[Event], after: int) -> tuple[list[Event], bool]:
        """The ``events`` after seq ``after`` that ``member`` is replayed; True once its own leave is among them."""
        kept: list[Event] = []
        for event in events:
            if event.seq <= after or event.kind not in MEMBER_EVENTS:
                continue
            if event.origin == member.id and event.kind is not MESSAGE:
                return kept, True  # its own leave: nothing after it is its business
            kept.append(event)
        return kept, False

    # --- moderation (the admin REST calls these; moderation.py keeps the state) ---------

    def find(self, name: str) -> Member | None:
        """The member in the room under ``name`` (any spelling of it), away or not."""
        return self._members.get(name_key(name))

    def kick(self, member: Member, reason: str) -> None:
        """Log the kick, then take the member out: close 4011, its client does not come back."""
        self._moderate(KICK, member.name, details(reason=reason or None))
        if not self.shared:  # a shared room removes the member at the kick's seq, where it is served
            self._kick_now(member, reason)

    def _kick_now(self, member: Member, reason: str) -> None:
        message = f"you were removed by a moderator{_because(reason)}"
        self._remove(member, LeaveReason.KICKED, CloseCode.KICKED, message)

    def mute(self, member: Member, seconds: float, reason: str) -> float | None:
        """Refuse ``member``'s messages for ``seconds`` (0: lift the mute). When it ends, or None."""
        until = self._clock() + seconds if seconds > 0 else None
        body = details(
            seconds=seconds, until=format_ts(until) if until else None, until_epoch=until, reason=reason or None
        )
        self._moderate(MUTE, member.name, body)
        return until

    def ban(self, *, name: str | None, address: str | None, seconds: float | None, reason: str) -> Ban:
        """Ban a name (its lookalikes too) or an address or network; whoever matches now is removed."""
        until = self._clock() + seconds if seconds is not None else None
        ban = Ban(new_ban_id(), name, address, until, reason)
        if address is not None:
            self.moderation.remember_address(ban.id, address)
            self.on_address_ban()  # room.json has it before chat.log has the ban (whose line does not name it)
        body = details(
            id=ban.id,
            address=address,
            seconds=seconds,
            until=format_ts(until) if until else None,
            until_epoch=until,
            reason=reason or None,
        )
        self._moderate(BAN, name or "-", body)
        if not self.shared:  # a shared room removes the banned at the ban's seq, where they are served
            self._remove_banned(ban)
        return ban

    def _remove_banned(self, ban: Ban) -> None:
        message = f"you are banned by a moderator{_because(ban.reason)}"
        for member in [m for m in self._members.values() if ban.matches_name(m.name) or ban.matches_address(m.address)]:
            self._remove(member, LeaveReason.BANNED, CloseCode.BANNED, message)

    def unban(self, ban_id: str) -> bool:
        """Lift a ban; False if there is no such ban (in force)."""
        if ban_id not in {ban.id for ban in self.moderation.active()}:
            return False
        self._moderate(UNBAN, "-", details(id=ban_id))
        return True

    def announce(self, text: str) -> None:
        self.journal.append(ANNOUNCE, text=text)

    def _moderate(self, kind: EventKind, name: str, body: str) -> None:
        self._moderating += 1
        self.journal.append(kind, name, body)

    def _remove(self, member: Member, reason: LeaveReason, code: int, message: str) -> None:
        code_name = "kicked" if reason is LeaveReason.KICKED else "banned"
        final = (member.dialect.error(code_name, message), member.dialect.bye(code_name, message))
        self.leave(member, reason, close=(code, code_name, final))

    def _apply_moderation(self, batch: Sequence[Event]) -> None:
        """Mutes and bans take effect at their seq (the same point in every process that reads the journal)."""
        for event in batch:
            if event.kind in MODERATION_EVENTS:
                self._moderating = max(0, self._moderating - 1)
                self.moderation.apply(event.kind.value, event.name, event.details())
                if self.shared and not self._closed:
                    self._enforce(event)

    def _enforce(self, event: Event) -> None:
        """A shared room: a kick or a ban removes, at its seq, the members this replica serves."""
        if event.kind is KICK:
            member = self._members.get(name_key(event.name))
            if member is not None and member.state is not MemberState.REMOTE:
                self._kick_now(member, str(event.details().get("reason") or ""))
        elif event.kind is BAN:
            ban_id = event.details().get("id")
            for ban in self.moderation.active():
                if ban.id == ban_id:
                    self._remove_banned(ban)

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
        for member in self._away_members():
            self.journal.append(LEAVE, member.name, LeaveReason.SHUTDOWN, origin=member.id)
        self.journal.append(STOP, text=note)
        self._close_all(members, CloseCode.GOING_AWAY, "tracker shutting down", bye)
        self._members.clear()
        return len(members)

    def suspend(self, note: str, bye: Callable[[Member], tuple[str, ...]]) -> int:
        """The tracker restarts (SIGTERM): close every connection with 1012, keep the resumable members.

        JSON members stay in the room - nothing is logged for them, and after the
        restart they come back as AWAY (``room.json``) and resume. Plain-text members
        cannot resume: they leave (reason ``shutdown``). Returns the number told.
        """
        if self._closed:
            return 0
        members = list(self._by_id.values())
        for member in members:
            if not member.left and (member.dialect is not JSON or member.since_seq is None):
                self.journal.append(LEAVE, member.name, LeaveReason.SHUTDOWN, origin=member.id)
                self._members.pop(member.key, None)
        self.journal.append(STOP, text=note)
        self._close_all(members, CloseCode.SERVICE_RESTART, "tracker restarting", bye)
        return len(members)

    def _away_members(self) -> list[Member]:
        return [member for member in self._members.values() if member.state is MemberState.AWAY]

    def _close_all(
        self, members: list[Member], code: int, reason: str, bye: Callable[[Member], tuple[str, ...]]
    ) -> None:
        self._closed = True
        for timer in self._away.values():
            timer.cancel()
        self._away.clear()
        for member in members:
            member.state = MemberState.GONE
            member.outbox.close(code, reason, bye(member))
        self._claims.clear()
        self._by_id.clear()

    # --- delivery ----------------------------------------------------------------

    def _deliver(self, batch: Sequence[Event]) -> None:
        """Hand each member its frames for a durable batch (the journal's subscriber).

        Most members receive exactly the shared rendering of every event in the
        batch: that is built once per dialect and handed over as one piece. Only
        the members the batch concerns (its senders, joiners, leavers) get frames
        assembled for them alone.
        """
        self._delivered_seq = batch[-1].seq
        if self._moderating or self.shared:
            self._apply_moderation(batch)
        if self._closed:
            return
        if self.shared:
            # Another replica's start and stop lines are in the stream too: not for members.
            batch = [event for event in batch if event.kind in MEMBER_EVENTS]
            if not batch:
                return
        concerned = {event.origin for event in batch}  # its senders, joiners and leavers
        # Only while a local join or leave is on its way back is there a seq to note.
        if self.shared:
            leavers = self._apply_shared_membership(batch)
        else:
            leavers = self._apply_membership(batch) if self._unapplied else []
        shared = SharedFrames(batch)
        deliveries = 0
        for member in self._by_id.values():
            if member.replay is not None:
                member.replay.extend(batch)  # resuming: after its replay
            elif member.id in concerned:
                if member.since_seq is not None:
                    deliveries += frames_for(member, batch, self)
                    if member.recent_ids is not None:
                        _note_ids(member.recent_ids, member.id, batch)
            elif member.since_seq is not None:
                deliveries += shared.push_to(member)
        self.stats.deliveries += deliveries
        _forget_member_lists(batch)
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

    # --- a room shared by replicas ----------------------------------------------------

    def install(self, members: Sequence[tuple[int, str, int, float, int, int]]) -> None:
        """A shared room at start: the members already in, ``(id, name, join seq, joined at, replica, resumes)``."""
        for member_id, name, since_seq, joined_at, owner, resumes in members:
            self._add_remote(member_id, name, since_seq, joined_at, owner).resumes = resumes

    def _add_remote(self, member_id: int, name: str, since_seq: int, joined_at: float, owner: int) -> Member:
        key = name_key(name)
        holder = self._members.get(key)
        if holder is not None:
            if holder.state is MemberState.JOINING:
                self._lost_name(holder)  # another replica's claim of the name came first
            else:
                log.warning("%s joined on replica %d while held here; the later join wins", name, owner)
                self._members.pop(key, None)
        self._claims.release(key)
        try:
            self._claims.claim(name)
        except (NameRefused, Refused):
            log.warning("%s (joined on replica %d) breaks this replica's name rules; listed anyway", name, owner)
        member = Member(
            id=member_id,
            name=name,
            key=key,
            dialect=JSON,
            outbox=DETACHED,
            address="",
            joined_at=joined_at,
            last_active=self._monotonic(),
            allowance=self.policy.allowance(),
            state=MemberState.REMOTE,
            since_seq=since_seq,
            owner=owner,
        )
        self._members[key] = member
        self._ever_joined = True
        return member

    def _apply_shared_membership(self, batch: Sequence[Event]) -> list[Member]:
        """Every join and leave, this replica's and the others': the whole room, in seq order."""
        leavers: list[Member] = []
        for event in batch:
            kind = event.kind
            if event.origin is None:
                continue
            if kind is MESSAGE:
                if event.origin not in self._by_id:  # a REMOTE member spoke: its idle time starts again
                    remote = self._members.get(name_key(event.name))
                    if remote is not None:
                        remote.last_active = self._monotonic()
                continue
            if kind is not JOIN and kind is not LEAVE:
                continue
            member = self._by_id.get(event.origin)
            if kind is JOIN:
                if member is not None and member.state is MemberState.JOINING:
                    member.since_seq = event.seq
                    member.state = MemberState.JOINED
                    event.members = tuple(self.names())  # its welcome, as of its join
                elif member is None:
                    self._add_remote(event.origin, event.name, event.seq, event.time, event.origin // ID_SPAN)
            elif member is not None:
                if not member.left:  # its leave was logged elsewhere (this replica was cut off and reaped)
                    self._members.pop(member.key, None)
                    self._claims.release(member.key)
                    member.state = MemberState.LEAVING
                    member.close_after_leave = (CloseCode.SERVICE_RESTART, "restart", ())
                member.leave_seq = event.seq
                leavers.append(member)
            else:
                self._remote_left(event)
        return leavers

    def _remote_left(self, event: Event) -> None:
        key = name_key(event.name)
        member = self._members.get(key)
        if member is None or member.id != event.origin:
            return
        timer = self._away.pop(member.id, None)
        if timer is not None:
            timer.cancel()
        member.state = MemberState.GONE
        del self._members[key]
        self._claims.release(key)
        if not self._members and self._ever_joined and self.on_empty is not None:
            self.on_empty()

    def _lost_name(self, member: Member) -> None:
        """A local joiner whose name another replica claimed first: refused, as if the name had been taken."""
        self._members.pop(member.key, None)
        self._claims.release(member.key)
        self._by_id.pop(member.id, None)
        member.state = MemberState.GONE
        message = f"the name {member.name!r} was taken on another replica at the same moment"
        member.outbox.close(CloseCode.NORMAL, "name_taken", (member.dialect.error("name_taken", message),))

    def refused(self, event: Event) -> None:
        """The journal would not log ``event``: a join whose name is held, a leave of a member that moved."""
        member = self._by_id.get(event.origin) if event.origin is not None else None
        if member is None:
            return
        if event.kind is JOIN and member.state is MemberState.JOINING:
            self._lost_name(member)
        elif event.kind is LEAVE and member.state is MemberState.LEAVING:
            self._finish_leaving(member)

    def control(self, body: dict[str, object]) -> None:
        """A control entry from the journal: a member now served by replica ``r``, or away there."""
        member_id, replica = body.get("o"), body.get("r")
        member = next((m for m in self._members.values() if m.id == member_id), None)
        if member is None or not isinstance(replica, int):
            return
        if body.get("c") == "away":
            if member.state is MemberState.REMOTE:
                member.away_elsewhere = True
            return
        resumes = body.get("g")
        if isinstance(resumes, int) and resumes > member.resumes:
            member.resumes = resumes  # a resume on another replica spent the token before it
        if replica == self.replica:
            return  # our own take-over, read back
        if member.state is not MemberState.REMOTE:
            self._handed_over(member)
        member.owner = replica
        member.away_elsewhere = False

    def _handed_over(self, member: Member) -> None:
        """``member`` resumed on another replica: close its connection here; it is REMOTE from now on."""
        timer = self._away.pop(member.id, None)
        if timer is not None:
            timer.cancel()
        if member.outbox is not DETACHED:
            message = "this session was resumed on another connection"
            member.outbox.close(CloseCode.REPLACED, "replaced", (member.dialect.error("replaced", message),))
        self._by_id.pop(member.id, None)
        member.state = MemberState.REMOTE
        member.outbox = DETACHED
        member.replay = None

    def renumber(self, first_id: int) -> None:
        """A shared room registered under a new replica number: new members' ids start at ``first_id``."""
        self._ids = itertools.count(first_id)

    def reset(self, bye: Callable[[Member], tuple[str, ...]]) -> int:
        """A shared room whose journal lost the room (a new epoch): everyone here is closed with 1012, and forgotten."""
        members = list(self._by_id.values())
        for timer in self._away.values():
            timer.cancel()
        self._away.clear()
        for member in members:
            member.state = MemberState.GONE
            member.outbox.close(CloseCode.SERVICE_RESTART, "restart", bye(member))
        self._by_id.clear()
        self._members.clear()
        self._claims.clear()
        self.moderation = Moderation(self._clock)
        self._delivered_seq = self.journal.last_seq
        return len(members)

    def _finish_leaving(self, member: Member) -> None:
        if member.replay is not None:
            member.replay = None  # the resume under way sees it has left and stops
        # A leaver stays a recipient until the batch holding its own leave event is
        # delivered, so it still receives (and acknowledges) everything before it.
        code, reason, final = member.close_after_leave
        member.state = MemberState.GONE
        member.outbox.close(code, reason, final)
        del self._by_id[member.id]


def _forget_member_lists(batch: Sequence[Event]) -> None:
    """Drop each join's list of who was in the room once its welcome has been built.

    Only the joiner's welcome reads it. Kept, the journal's ring of recent events
    would hold a list of the whole room per join: at 10,000 members the last
    10,000 joins alone would pin some 400 MB.
    """
    for event in batch:
        if event.members:
            event.members = ()


def _note_ids(ids: dict[str, Event | None], member_id: int, batch: Sequence[Event]) -> None:
    """Remember the delivered event of each message id the member sent, to acknowledge a resend."""
    for event in batch:
        if event.origin == member_id and event.msg_id is not None and event.msg_id in ids:
            ids[event.msg_id] = event


def _because(reason: str) -> str:
    return f": {reason}" if reason else ""
