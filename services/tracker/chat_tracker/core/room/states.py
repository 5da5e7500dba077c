"""A member's life, and the room's, each as one table: from every state, the steps it may take and where they lead.

Written as h11 writes a connection's states (``h11/_state.py``): a state is one enum
value, it changes only through a step looked up here (``Member.advance`` for a member,
``RoomBase._room_step`` for the room), and a step the table does not list from the
current state raises ``IllegalTransition`` - a bug in the caller, not something a peer
can cause: what comes from outside (a frame, another replica's notice) is checked
before a step is taken. A step may lead back to the state it was taken from: a message
from a joined member is logged, a second leave or a message from a member already on
its way out changes nothing.

    JOINING --join delivered--> JOINED --connection lost--> AWAY --resume--> RESUMING --caught up--> JOINED
    JOINING/JOINED/RESUMING --leave--> LEAVING --leave delivered--> GONE         AWAY --leave--> GONE
    REMOTE <--resumed elsewhere-- JOINED/RESUMING/AWAY    REMOTE --resume here--> RESUMING
    JOINED/RESUMING/AWAY --the tracker restarts--> SUSPENDED (kept in room.json; resumes after the restart)

Data that is not a state stays data on the member: the seq it joined at, the close it
gets once its leave is delivered, the events held back while it resumes, the replica
serving it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from chat_tracker.errors import IllegalTransition


class MemberState(enum.Enum):
    JOINING = "joining"  # name claimed, join event not yet delivered
    JOINED = "joined"
    RESUMING = "resuming"  # on a new connection: its live events wait until its replay is out
    AWAY = "away"  # connection lost; may resume within the grace
    LEAVING = "leaving"  # name released, leave event not yet delivered: it still receives what came before
    GONE = "gone"  # outbox closed
    REMOTE = "remote"  # served by another replica (a shared room)
    REMOTE_AWAY = "remote_away"  # served by another replica, where its connection dropped
    SUSPENDED = "suspended"  # the tracker restarts: connection closed, kept in room.json to resume after


class Step(enum.Enum):
    """What can happen to a member."""

    JOIN_DELIVERED = "its join event is delivered"
    SAY = "it sends a message"
    LEAVE = "it leaves, or is taken out"
    GO_AWAY = "its connection is lost and it may resume"
    RESUME = "it resumes on a new connection, here"
    CATCH_UP = "it is handed some of the events held back meanwhile"
    CAUGHT_UP = "it is handed the last of them: live from now on"
    LEAVE_DELIVERED = "its leave event is delivered (or the journal refused it: it moved)"
    NAME_LOST = "another replica claimed its name first"
    RESUMED_ELSEWHERE = "it resumed on another replica"
    AWAY_ELSEWHERE = "its connection to another replica dropped"
    SUSPEND = "the tracker restarts; it is kept"
    CLOSE = "the tracker stops, or its room was lost"


_JOINING, _JOINED, _RESUMING, _AWAY = MemberState.JOINING, MemberState.JOINED, MemberState.RESUMING, MemberState.AWAY
_LEAVING, _GONE, _REMOTE, _REMOTE_AWAY = (
    MemberState.LEAVING,
    MemberState.GONE,
    MemberState.REMOTE,
    MemberState.REMOTE_AWAY,
)
_SUSPENDED = MemberState.SUSPENDED

MEMBER_TRANSITIONS: Mapping[MemberState, Mapping[Step, MemberState]] = {
    _JOINING: {
        Step.JOIN_DELIVERED: _JOINED,
        Step.SAY: _JOINING,  # logged after its join, so it is in order
        Step.LEAVE: _LEAVING,
        Step.NAME_LOST: _GONE,
        Step.CLOSE: _GONE,
    },
    _JOINED: {
        Step.SAY: _JOINED,
        Step.LEAVE: _LEAVING,
        Step.GO_AWAY: _AWAY,
        Step.RESUME: _RESUMING,  # its old connection is still open (it may not know yet that it is dead)
        Step.RESUMED_ELSEWHERE: _REMOTE,
        Step.AWAY_ELSEWHERE: _JOINED,  # a late notice: it is served here now
        Step.SUSPEND: _SUSPENDED,
        Step.CLOSE: _GONE,
    },
    _RESUMING: {
        Step.SAY: _RESUMING,
        Step.LEAVE: _LEAVING,  # its replay stops: nothing it missed matters once it leaves
        Step.GO_AWAY: _AWAY,
        Step.RESUME: _RESUMING,  # again, on yet another connection
        Step.CATCH_UP: _RESUMING,
        Step.CAUGHT_UP: _JOINED,
        Step.RESUMED_ELSEWHERE: _REMOTE,
        Step.AWAY_ELSEWHERE: _RESUMING,
        Step.SUSPEND: _SUSPENDED,
        Step.CLOSE: _GONE,
    },
    _AWAY: {
        Step.LEAVE: _GONE,  # no connection to tell: logged, and done
        Step.RESUME: _RESUMING,
        Step.LEAVE_DELIVERED: _GONE,  # a shared room: another replica logged it (its grace ran out there)
        Step.RESUMED_ELSEWHERE: _REMOTE,
        Step.AWAY_ELSEWHERE: _AWAY,  # our own notice, read back
        Step.SUSPEND: _SUSPENDED,
        Step.CLOSE: _GONE,
    },
    _LEAVING: {
        Step.SAY: _LEAVING,  # ignored
        Step.LEAVE: _LEAVING,  # one leave event, however often it is asked for
        Step.JOIN_DELIVERED: _LEAVING,  # it left before its join was out: it still gets its welcome
        Step.LEAVE_DELIVERED: _GONE,
        Step.CLOSE: _GONE,
    },
    _GONE: {Step.SAY: _GONE, Step.LEAVE: _GONE},  # ignored
    _REMOTE: {
        Step.LEAVE: _REMOTE,  # it leaves on its own replica
        Step.RESUME: _RESUMING,
        Step.LEAVE_DELIVERED: _GONE,
        Step.RESUMED_ELSEWHERE: _REMOTE,  # from one other replica to another
        Step.AWAY_ELSEWHERE: _REMOTE_AWAY,
    },
    _REMOTE_AWAY: {
        Step.LEAVE: _REMOTE_AWAY,
        Step.RESUME: _RESUMING,
        Step.LEAVE_DELIVERED: _GONE,
        Step.RESUMED_ELSEWHERE: _REMOTE,
        Step.AWAY_ELSEWHERE: _REMOTE_AWAY,
    },
    _SUSPENDED: {Step.LEAVE: _SUSPENDED},  # its leave is not logged: it comes back after the restart
}

# Where a member may come into being: claiming a name here, restored from room.json, or seen joining elsewhere.
INITIAL_STATES = frozenset((_JOINING, _AWAY, _REMOTE))
LEFT = frozenset((_LEAVING, _GONE, _SUSPENDED))  # out of the room, as far as its connection here is concerned
SERVED_ELSEWHERE = frozenset((_REMOTE, _REMOTE_AWAY))


class RoomState(enum.Enum):
    NEW = "new"  # nobody has been in it yet: its being empty is no news
    OPEN = "open"
    CLOSED = "closed"  # stopped or suspended: no joins, no resumes, leaves no longer logged


class RoomStep(enum.Enum):
    ENTER = "a member comes in (joins, is restored, or is seen on another replica)"
    CLOSE = "the tracker stops or restarts"


ROOM_TRANSITIONS: Mapping[RoomState, Mapping[RoomStep, RoomState]] = {
    RoomState.NEW: {RoomStep.ENTER: RoomState.OPEN, RoomStep.CLOSE: RoomState.CLOSED},
    RoomState.OPEN: {RoomStep.ENTER: RoomState.OPEN, RoomStep.CLOSE: RoomState.CLOSED},
    RoomState.CLOSED: {},
}

S = TypeVar("S", bound=enum.Enum)
E = TypeVar("E", bound=enum.Enum)


def next_state(table: Mapping[S, Mapping[E, S]], state: S, step: E) -> S:
    """Where ``step`` leads from ``state``. Raises IllegalTransition if the table has no such step."""
    try:
        return table[state][step]
    except KeyError:
        raise IllegalTransition(state, step) from None
