"""Frames for members: the shared rendering of a batch, and a member's own view of it.

Most members of a batch receive the same bytes, built once per dialect and handed
over as one piece (``SharedFrames``). The members a batch concerns - its senders,
joiners and leavers - get frames assembled for them alone (``frames_for``): the
joiner its welcome instead of its own join, a JSON sender the echo that acknowledges
its message, a leaver nothing after its own leave.

Everything a welcome needs besides its join event comes in as data (``WelcomeTerms``),
so rendering never calls back into the room that asked for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from chat_protocol import Limits, Resumed, RoomInfo, encode
from chat_tracker.core.catchup import catch_up
from chat_tracker.core.dialects import Dialect, ResumeOffer, SignedIn
from chat_tracker.core.events import JOIN, LEAVE, MESSAGE, Event
from chat_tracker.core.frames import text_frame
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.ride import Ride, Seats
from chat_tracker.core.tokens import ResumeTokens


class Recipient(Protocol):
    """What delivery needs of a member (``room.Member``), so this module does not import the room."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def dialect(self) -> Dialect: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def since_seq(self) -> int | None: ...
    @property
    def recover_after(self) -> int | None: ...
    @property
    def registered(self) -> bool: ...
    @property
    def seen_through(self) -> int: ...
    @property
    def catch_up_after(self) -> int | None: ...
    @property
    def device_id(self) -> str | None: ...
    @property
    def device_token(self) -> str | None: ...
    @property
    def rooms(self) -> tuple[RoomInfo, ...]: ...
    @property
    def after_welcome(self) -> tuple[str, ...]: ...


R = TypeVar("R", bound=Recipient)


@dataclass(frozen=True, slots=True)
class WelcomeTerms:
    """What a joiner's welcome says besides its join event: the room's limits, and how to resume."""

    limits: Limits
    tokens: ResumeTokens | None  # None: this room does not resume
    grace: float
    recent: Sequence[Event] = ()  # the journal's memory: what a returning member's welcome says she missed

    def offer(self, event: Event) -> ResumeOffer | None:
        """What a JSON welcome tells its member for a later resume (None if this room does not resume)."""
        if self.tokens is None:
            return None
        return ResumeOffer(self.tokens.epoch, self.tokens.issue(event.name, event.seq), self.grace)

    def recovered(self, member: Recipient, event: Event) -> str:
        """A member back from a lost epoch: its ``resumed`` (recovered: false) in place of a welcome."""
        after = member.recover_after or 0
        tokens = self.tokens
        assert tokens is not None, "only a room that resumes has a lost epoch to recover from"
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


def _signed_in(member: Recipient, event: Event, terms: WelcomeTerms) -> SignedIn | None:
    """A member who signed in to her account: what she missed since her read position, and her device."""
    if not member.registered:
        return None
    after = member.catch_up_after
    missed = None if after is None else catch_up(member.name, after, event.seq, terms.recent)
    return SignedIn(missed, member.device_id, member.device_token, member.rooms)


class SharedFrames(Generic[R]):
    """A batch's frames as most members receive them, built once per dialect (and per wiring).

    ``behind`` lists the members whose outbox overflowed as the batch was pushed to them:
    what to do about them is the caller's business, once the batch is out. ``rides`` are the
    room's (``core/ride.py``), one per dialect: a held member gets on, and is skipped while it
    rides; ``finish`` adds the batch to them once everyone has been handed it. With ``seats`` (the
    room's roster) a member that gets on is left out of the room's next batches until it gets off.
    """

    __slots__ = ("_rides", "_seats", "_texts", "_wire", "batch", "behind", "notices")

    def __init__(self, batch: Sequence[Event], rides: dict[Dialect, Ride], seats: Seats | None = None) -> None:
        self.batch = batch
        self._rides = rides
        self._seats = seats  # the room's roster: its riders are left out of its next batches
        # Only joins and leaves: nobody waits for them, so they may wait for the coalescing window.
        self.notices = all(event.kind is JOIN or event.kind is LEAVE for event in batch)
        self.behind: list[R] = []
        self._wire: dict[Dialect, bytes] = {}  # WebSocket frames, joined: for wired outboxes
        self._texts: dict[Dialect, list[str]] = {}  # texts: for outboxes with no wire (deflate)

    def push_to(self, member: R) -> int:
        """Queue the batch for ``member``; the number of frames queued."""
        outbox = member.outbox
        dialect = member.dialect
        if outbox.wire is not None:  # nearly every member: one dict lookup, no key built
            count = len(self.batch)
            if self.notices:  # kept apart from the ride: the coalescer does not count them as traffic
                outbox.push_wire(self._joined(dialect), count, True)
                return self._check(member, count)
            ride = self._rides.get(dialect)
            if ride is None:
                ride = self._rides[dialect] = Ride(self._seats)
            elif outbox.ride is ride:
                return count  # riding: ``finish`` adds the batch to the ride, once for all its riders
            outbox.push_wire(self._joined(dialect), count, self.notices, ride, member)
        else:
            texts = self._texts.get(dialect)
            if texts is None:
                texts = self._texts[dialect] = [dialect.shared(event) for event in self.batch]
            outbox.push_texts(texts)
            count = len(texts)
        return self._check(member, count)

    def _check(self, member: R, count: int) -> int:
        if member.outbox.overflowed:
            self.behind.append(member)
        return count

    def finish(self) -> None:
        """Every member has been handed the batch: add it to each ride that has riders."""
        if self.notices:
            return
        for dialect, ride in self._rides.items():
            if ride.riders:
                ride.add(self._joined(dialect), len(self.batch))

    def _joined(self, dialect: Dialect) -> bytes:
        joined = self._wire.get(dialect)
        if joined is None:
            joined = self._wire[dialect] = b"".join([dialect.shared_wire(event) for event in self.batch])
        return joined


def frames_for(member: Recipient, batch: Sequence[Event], terms: WelcomeTerms) -> int:
    """Queue ``member``'s own view of ``batch`` (from its join to its leave); the number of frames."""
    since = member.since_seq
    assert since is not None, "a member receives nothing before its join is delivered"
    outbox, dialect = member.outbox, member.dialect
    # Off its room's ride first, even if its own view is nothing (a plain sender's own message): the
    # ride's rendering of this batch is not for it.
    outbox.alight()
    wired = outbox.wired
    wire_frames: list[bytes] = []
    texts: list[str] = []
    for event in batch:
        if event.seq < since or event.seq <= member.seen_through:
            continue  # from before it joined, or had before it resumed
        if event.origin == member.id:
            own = own_texts(dialect, event, terms, member)
            if wired:
                wire_frames.extend([text_frame(text) for text in own])
            else:
                texts.extend(own)
            if event.kind is LEAVE:
                break  # its own leave: nothing after it is its business
        elif wired:
            wire_frames.append(dialect.shared_wire(event))
        else:
            texts.append(dialect.shared(event))
    if wired:
        if wire_frames:
            outbox.push_wire(b"".join(wire_frames), len(wire_frames))
        return len(wire_frames)
    outbox.push_texts(texts)
    return len(texts)


def own_texts(dialect: Dialect, event: Event, terms: WelcomeTerms, member: Recipient) -> list[str]:
    """What a member receives for an event it caused itself."""
    if event.kind is MESSAGE:
        return [dialect.own_message(event)] if dialect.echo_own_messages else []
    if event.kind is JOIN and member.recover_after is not None:
        return [terms.recovered(member, event)]  # back from a lost epoch: resumed, not recovered
    if event.kind is JOIN:
        welcome = dialect.welcome(event, terms.limits, terms.offer(event), _signed_in(member, event, terms))
        return welcome + list(member.after_welcome) if member.after_welcome else welcome
    return []  # your own leave: you get a bye instead
