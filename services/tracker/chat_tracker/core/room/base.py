"""What every part of the room shares: its parts, its members' indexes, and the steps all parts take on them.

The room is written in layers, one module per job, each a class built on the one
before: ``queries`` < ``requests`` < ``resumes`` (away and back) < ``devices`` < ``moderating`` <
``shared`` (the replica-shared room) < ``delivering`` < ``closing`` < ``Room``. A layer
calls only what is below it; the one call up is the journal's subscription here, to
the delivery layer's ``_deliver``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from chat_protocol import Limits, name_key
from chat_tracker.core.claims import NameClaims
from chat_tracker.core.dialects import Dialect
from chat_tracker.core.events import BAN, JOIN, LEAVE, Event
from chat_tracker.core.moderation import Moderation
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.ride import Ride
from chat_tracker.core.room.member import MEMBERSHIP_ENDS, Member
from chat_tracker.core.room.roster import Roster
from chat_tracker.core.room.states import ROOM_TRANSITIONS, MemberState, RoomState, RoomStep, Step, next_state
from chat_tracker.core.room.stats import RoomStats
from chat_tracker.core.tokens import ResumeTokens
from chat_tracker.journal.protocol import Journal


class Timer(Protocol):
    def cancel(self) -> None: ...


CallLater = Callable[[float, Callable[[], None]], Timer]


NO_REPLICAS: frozenset[int] = frozenset()  # one for every room (an empty frozenset is 216 B of its own)


def _nothing() -> None:
    """One function for every room's default observer, not a closure each."""


def _loop_call_later(delay: float, callback: Callable[[], None]) -> Timer:
    return asyncio.get_running_loop().call_later(delay, callback)


class Replicas(Protocol):
    """What a room shared by replicas tells the others, straight to the shared journal (``RedisJournal``)."""

    def take_over(self, name: str, member_id: int, resumes: int) -> None:
        """This replica serves ``member_id`` now (its ``resumes``-th resume): the others hand it over."""

    def went_away(self, member_id: int) -> None:
        """``member_id`` lost its connection here: the others list it as away."""


class RoomBase:
    """The room's parts and its members, without any of its jobs (the layers above add those)."""

    # Slots, not a __dict__: a room holds more attributes than CPython shares the keys of (30), so each
    # room's dict was its own (1.6 KB); rooms of five are many. The layers above add none (``__slots__ = ()``).
    __slots__ = (
        "_away",
        "_by_id",
        "_call_later",
        "_claims",
        "_clock",
        "_delivered_seq",
        "_ids",
        "_members",
        "_monotonic",
        "_offline",
        "_rides",
        "_state",
        "dead_replicas",
        "grace",
        "journal",
        "limits",
        "moderation",
        "on_address_ban",
        "on_away",
        "on_empty",
        "on_join",
        "on_leave",
        "on_offline_end",
        "on_token_spent",
        "on_welcomed",
        "owns_connections",
        "policy",
        "previous_tokens",
        "replica",
        "replicas",
        "shared",
        "stats",
        "tokens",
    )

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
        self.policy = policy
        self.limits: Limits = policy.limits
        self.tokens = tokens
        self.grace = grace
        self.stats = RoomStats()
        self.moderation = Moderation(clock)
        self._shared_parts(shared)
        # False for a room besides the default one (core/rooms.py): its members' connections are the default
        # room's, so leaving it ends no connection (the goodbye frames go out, the socket stays open).
        self.owns_connections = True
        self._observers()
        self._clock = clock
        self._monotonic = monotonic
        self._call_later = call_later
        self._state = RoomState.NEW
        self._claims = NameClaims()
        self._ids = itertools.count(first_id)
        self._members: dict[str, Member] = {}  # name key -> member, in join order: who the room lists
        self._by_id = Roster()  # connected here: joining, joined, resuming, or leaving but not yet told
        self._away: dict[int, Timer] = {}  # member id -> the end of its grace (AWAY members)
        # Registered members with no connection (still members): name key -> (name, last seen). Kept from the
        # account store at start (``restore_roster``), then from the events themselves, on every replica alike.
        self._offline: dict[str, tuple[str, float]] = {}
        self._rides: dict[Dialect, Ride] = {}  # frames held for the coalescing window, shared (core/ride.py)
        self._delivered_seq = journal.last_seq
        journal.subscribe(self._deliver)

    def _shared_parts(self, shared: bool) -> None:
        """What a room shared by replicas keeps of the others (``shared.py``)."""
        self.shared = shared
        self.replica = 0  # a shared room: this replica's number
        self.dead_replicas: frozenset[int] = NO_REPLICAS  # a shared room: replicas that stopped answering
        self.replicas: Replicas | None = None  # a shared room: where it tells the others who moved or dropped
        self.previous_tokens: ResumeTokens | None = None  # a shared room: the epoch its journal lost

    def _observers(self) -> None:
        """What the tracker may watch (it logs, persists and counts; it never calls back into the room)."""
        self.on_empty: Callable[[], None] | None = None
        self.on_join: Callable[[Member], None] | None = None
        self.on_leave: Callable[[Member, str], None] | None = None
        self.on_away: Callable[[Member], None] | None = None
        self.on_offline_end: Callable[[str, str], None] | None = None  # an offline member's membership ended
        # A member's join is delivered, just before her welcome is rendered (core/rooms.py takes her back to her rooms).
        self.on_welcomed: Callable[[Member], None] | None = None
        self.on_token_spent: Callable[[Member], None] | None = None  # a resume took a token: persist the count
        # An address ban is about to be logged: make the address durable elsewhere (room.json; a
        # replica's Redis keeps it in the event itself, which no member or chat.log line shows).
        self.on_address_ban: Callable[[], None] = _nothing

    def _deliver(self, batch: Sequence[Event]) -> None:
        """Hand a durable batch to the members: the delivery layer's job (``delivering.py``)."""
        raise NotImplementedError

    # --- the room's own state --------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._state is RoomState.CLOSED

    def _room_step(self, step: RoomStep) -> None:
        self._state = next_state(ROOM_TRANSITIONS, self._state, step)

    def _enter(self, member: Member) -> None:
        """List ``member`` under its name (claimed already); connected here unless away or remote."""
        self._room_step(RoomStep.ENTER)
        self._members[member.key] = member
        if member.state is MemberState.JOINING:
            self._by_id[member.id] = member

    def restore_roster(self, offline: Sequence[tuple[str, float]]) -> None:
        """The registered members as the account store lists them (name, last seen): those not in the room are offline.

        A member already in the room under one of these names (kept across a restart) is registered.
        """
        for name, last_seen in offline:
            key = name_key(name)
            member = self._members.get(key)
            if member is not None:
                member.registered = True
            else:
                self._offline.setdefault(key, (name, last_seen))

    def _note_presence(self, batch: Sequence[Event]) -> None:
        """Keep the offline roster up to date with a delivered batch: who came online, went offline, or parted."""
        for event in batch:
            if event.kind is JOIN or event.kind is BAN:  # online again, or banned: not listed as offline
                self._offline.pop(name_key(event.name), None)
            elif event.kind is LEAVE:
                if event.presence is False:
                    self._offline[name_key(event.name)] = (event.name, event.time)
                elif event.text in MEMBERSHIP_ENDS:
                    self._offline.pop(name_key(event.name), None)

    def _empty_now(self) -> None:
        """The last member is out: tell the tracker, if anyone was ever in."""
        if not self._members and self._state is RoomState.OPEN and self.on_empty is not None:
            self.on_empty()

    # --- members' indexes ------------------------------------------------------------

    def _unlist(self, member: Member) -> None:
        """``member`` no longer holds its name (if it still did)."""
        if self._members.get(member.key) is member:
            del self._members[member.key]
            self._claims.release(member.key)

    def _end_grace(self, member: Member) -> None:
        timer = self._away.pop(member.id, None)
        if timer is not None:
            timer.cancel()

    def _finish_leaving(self, member: Member) -> None:
        """Its leave is delivered (it received everything before it): close its connection with its goodbye."""
        member.advance(Step.LEAVE_DELIVERED)
        code, reason, final = member.goodbye
        if self.owns_connections:
            member.outbox.close(code, reason, final)
        else:
            member.outbox.push_texts(list(final))
        del self._by_id[member.id]
