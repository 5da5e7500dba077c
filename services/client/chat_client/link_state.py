"""The ``Link``'s state machine: its states, the events that move it, and every transition, in one table.

Everything that decides where a member's session across connections stands lives
here; ``link`` fires the events as its connections come and go and never keeps a
flag of its own beside the state. The web page's ``LinkMachine`` (chat_tracker/web/
logic.js) is a port with the same names and the same table; tests/web feeds both the
same events.

The first connection is one state, ENTERING: connecting, the password, the name and
the join are the mode's to carry out (``enter``), and any failure before the first
welcome ends the session. After it, each connection goes through the room's states
(REPLAYING, RESENDING, LIVE) and each lost one through WAITING and one attempt
(CONNECTING, then RESUMING, or JOINING when there is no token or the resume is
refused)::

    IDLE -start-> ENTERING -welcome-> REPLAYING -replayed-> RESENDING -resent-> LIVE
                                          ^                                      |
                        welcome / resumed |                                 lost |
                                          |                                      v
    JOINING <-join- RESUMING <-resume- CONNECTING <-reconnect- WAITING <---------+

An attempt that fails goes back to WAITING (``lost``); ``end`` leads from anywhere
but IDLE to ENDED, and once more from ENDED, as h11's ConnectionClosed from CLOSED:
the end is found by the connection that ended it, then by the task that ran it.

Whether the person asked to leave is not part of this machine: the request outlives
connections (it goes out after the resend on the next one), so ``Link.leaving`` is
kept beside the state, as h11 keeps ``keep_alive`` beside its own.
"""

from __future__ import annotations

from enum import StrEnum

from .errors import InvalidState


class LinkState(StrEnum):
    IDLE = "idle"  # made, not started
    ENTERING = "entering"  # the first connection, until the first welcome
    REPLAYING = "replaying"  # in the room on a connection: the events missed meanwhile are arriving
    RESENDING = "resending"  # the replay is in: what is owed goes again; lines typed meanwhile wait
    LIVE = "live"  # everything owed was sent again: a new line goes out at once
    WAITING = "waiting"  # the connection was lost: backing off before the next attempt
    CONNECTING = "connecting"  # an attempt: the WebSocket, hello, the password
    RESUMING = "resuming"  # ``resume`` sent, its answer awaited
    JOINING = "joining"  # a fresh ``join`` (no token, or the resume refused), until its welcome
    ENDED = "ended"  # over: left, removed, refused, or given up


class LinkEvent(StrEnum):
    START = "start"
    JOIN = "join"
    WELCOME = "welcome"
    REPLAYED = "replayed"
    RESENT = "resent"
    LOST = "lost"
    RECONNECT = "reconnect"
    RESUME = "resume"
    RESUMED = "resumed"
    END = "end"


_S = LinkState
_E = LinkEvent

# state -> {event: next state}; an event missing from a state's row is an error in that state.
TRANSITIONS: dict[LinkState, dict[LinkEvent, LinkState]] = {
    _S.IDLE: {_E.START: _S.ENTERING},
    # The page joins from ENTERING, again after a refused name; the terminal client's ``enter`` does it unseen.
    _S.ENTERING: {_E.JOIN: _S.ENTERING, _E.WELCOME: _S.REPLAYING, _E.END: _S.ENDED},
    _S.REPLAYING: {_E.REPLAYED: _S.RESENDING, _E.LOST: _S.WAITING, _E.END: _S.ENDED},
    _S.RESENDING: {_E.RESENT: _S.LIVE, _E.LOST: _S.WAITING, _E.END: _S.ENDED},
    _S.LIVE: {_E.LOST: _S.WAITING, _E.END: _S.ENDED},
    _S.WAITING: {_E.RECONNECT: _S.CONNECTING, _E.END: _S.ENDED},
    _S.CONNECTING: {_E.RESUME: _S.RESUMING, _E.JOIN: _S.JOINING, _E.LOST: _S.WAITING, _E.END: _S.ENDED},
    _S.RESUMING: {_E.RESUMED: _S.REPLAYING, _E.JOIN: _S.JOINING, _E.LOST: _S.WAITING, _E.END: _S.ENDED},
    _S.JOINING: {_E.JOIN: _S.JOINING, _E.WELCOME: _S.REPLAYING, _E.LOST: _S.WAITING, _E.END: _S.ENDED},
    _S.ENDED: {_E.END: _S.ENDED},
}

# Between a lost connection and the next welcome or resumed: silence then is not the tracker's.
RECONNECTING = frozenset({_S.WAITING, _S.CONNECTING, _S.RESUMING, _S.JOINING})


class LinkMachine:
    """Where the session stands; ``fire`` moves it by the table or raises InvalidState."""

    def __init__(self) -> None:
        self._state = LinkState.IDLE

    @property
    def state(self) -> LinkState:
        return self._state

    def fire(self, event: LinkEvent) -> LinkState:
        """Take ``event``: the new state, or InvalidState if the table has no such move from here."""
        moved = TRANSITIONS[self._state].get(event)
        if moved is None:
            raise InvalidState(event, self._state)
        self._state = moved
        return moved
