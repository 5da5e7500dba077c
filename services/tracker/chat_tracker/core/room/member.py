"""A member of the room: one person under one name, its state (``states.py``) and the data that goes with it."""

from __future__ import annotations

from dataclasses import dataclass

from chat_protocol import CloseCode, RoomInfo
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.dialects import Dialect
from chat_tracker.core.events import Event
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.policy import Allowance
from chat_tracker.core.room.states import INITIAL_STATES, LEFT, MEMBER_TRANSITIONS, MemberState, Step, next_state
from chat_tracker.core.signin import AccountChecked

# The close a member gets once its leave is delivered: code, reason, and the frames sent before it.
Goodbye = tuple[int, str, tuple[str, ...]]
PLAIN_GOODBYE: Goodbye = (CloseCode.NORMAL, "", ())

# The outbox of a member with no connection: closed, so anything pushed to it is dropped.
DETACHED = Outbox(0)
DETACHED.close(CloseCode.NORMAL)


@dataclass(slots=True)
class Welcoming:
    """What a member's join and welcome read beyond the usual, kept apart: a member of three rooms would
    otherwise carry these five slots, nearly always empty, in each of them."""

    recover_after: int | None = None  # joined back from a lost epoch: its welcome is a ``resumed`` (recovered: false)
    catch_up_after: int | None = None  # a returning registered member: her read position (her welcome catches up)
    device_token: str | None = None  # the token her welcome hands her device (then forgotten)
    rooms: tuple[RoomInfo, ...] = ()  # a registered member signing in: her other rooms, for her welcome (rooms.py)
    after_welcome: tuple[str, ...] = ()  # ... and the direct messages she missed, sent right after it (direct.py)


NOT_WELCOMING = Welcoming()  # read only: what a member without one reads


@dataclass(eq=False, slots=True)
class Member:
    """One member, connected here, away, or served by another replica.

    ``state`` is written by ``advance`` alone, through the table in ``states.py``.
    """

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
    since_seq: int | None = None  # the seq of its own join, once known: it receives nothing older
    seen_through: int = 0  # resumed after this seq (maybe ahead of this replica's reader): nothing up to it again
    goodbye: Goodbye = PLAIN_GOODBYE  # how its connection closes once its leave is delivered
    recent_ids: dict[str, Event | None] | None = None  # its message ids -> their events once delivered
    # Only while RESUMING (``advance`` makes and drops them): most members never resume, and a member of
    # three rooms would otherwise keep six empty lists.
    held: list[Event] | None = None  # RESUMING: live events kept until its replay is out
    owed_echoes: list[Event] | None = None  # RESUMING: first echoes of resends, after the replay
    owner: int = 0  # REMOTE: the replica serving it
    registered: bool = False  # signed in to the account of its name (or registered it since)
    device_id: str | None = None  # signed in from this device of her account
    extra: bool = False  # a further connection of an account already in the room: not listed, logs no join or leave
    resumes: int = 0  # how many times this membership resumed: only the token with this count resumes it
    welcoming: Welcoming | None = None  # what only her join and welcome read (the properties below); most have none

    # What only her join and welcome read, in ``welcoming`` (made when there is something to keep).

    @property
    def recover_after(self) -> int | None:
        return (self.welcoming or NOT_WELCOMING).recover_after

    @recover_after.setter
    def recover_after(self, value: int | None) -> None:
        self._welcome("recover_after", value)

    @property
    def catch_up_after(self) -> int | None:
        return (self.welcoming or NOT_WELCOMING).catch_up_after

    @catch_up_after.setter
    def catch_up_after(self, value: int | None) -> None:
        self._welcome("catch_up_after", value)

    @property
    def device_token(self) -> str | None:
        return (self.welcoming or NOT_WELCOMING).device_token

    @device_token.setter
    def device_token(self, value: str | None) -> None:
        self._welcome("device_token", value)

    @property
    def rooms(self) -> tuple[RoomInfo, ...]:
        return (self.welcoming or NOT_WELCOMING).rooms

    @rooms.setter
    def rooms(self, value: tuple[RoomInfo, ...]) -> None:
        self._welcome("rooms", value)

    @property
    def after_welcome(self) -> tuple[str, ...]:
        return (self.welcoming or NOT_WELCOMING).after_welcome

    @after_welcome.setter
    def after_welcome(self, value: tuple[str, ...]) -> None:
        self._welcome("after_welcome", value)

    def _welcome(self, field: str, value: object) -> None:
        """Keep ``value`` for her welcome; a default one kept by nobody makes no ``Welcoming`` (a guest holds none)."""
        if self.welcoming is None:
            if value == getattr(NOT_WELCOMING, field):
                return
            self.welcoming = Welcoming()
        setattr(self.welcoming, field, value)

    def __post_init__(self) -> None:
        if self.state not in INITIAL_STATES:
            raise ValueError(f"a member starts joining, away or remote, not {self.state.name}")

    def advance(self, step: Step) -> MemberState:
        """Take ``step`` (raises IllegalTransition if its state has none); the state it was in."""
        was = self.state
        self.state = next_state(MEMBER_TRANSITIONS, was, step)
        if was is not MemberState.RESUMING and self.state is MemberState.RESUMING:
            self.held, self.owed_echoes = [], []
        elif was is MemberState.RESUMING and self.state is not MemberState.RESUMING:
            self.held = None  # what it had not been handed is no longer its business (or it is live now)
            self.owed_echoes = None
        return was

    def can(self, step: Step) -> bool:
        """Whether ``step`` may be taken now: for notices from elsewhere, which may be stale."""
        return step in MEMBER_TRANSITIONS[self.state]

    @property
    def left(self) -> bool:
        """Out of the room as far as its connection here goes: leaving, gone, or kept only for a restart."""
        return self.state in LEFT

    @property
    def replay(self) -> list[Event] | None:
        """While it resumes, the live events held back for after its replay; None once it receives them live."""
        return self.held if self.state is MemberState.RESUMING else None


def signed_in_as(member: Member, signed_in: AccountChecked | None) -> None:
    """What signing in to her account (``signed_in``, None for a guest) makes of a new member."""
    if signed_in is not None:
        member.registered = True
        member.catch_up_after = signed_in.read
        member.device_id, member.device_token = signed_in.device, signed_in.device_token


def logged_reason(member: Member, reason: str) -> str:
    """chat.log's leave reason: a registered member whose connection ends only goes offline (membership.py)."""
    if member.registered and reason not in MEMBERSHIP_ENDS:
        return LeaveReason.OFFLINE
    return reason


MEMBERSHIP_ENDS = frozenset(
    (LeaveReason.PART, LeaveReason.BANNED, LeaveReason.REMOVED)
)  # what ends a registered member's membership


@dataclass(frozen=True)
class Resuming:
    """A resume under way: replay the events in (``after``, ``until``], then the ones held back in ``member.held``."""

    member: Member
    after: int
    until: int
