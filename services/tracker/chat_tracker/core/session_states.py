"""The states of one connection's dialogue, and the one table of what moves it between them.

``TRANSITIONS[state][input]`` is the set of states that ``input`` may leave a session
in; ``session.Session`` looks every input up here before it acts, and checks where it
went after. An input missing from its state's row raises ``IllegalTransition``: the
adapter asked at a time the dialogue has no place for (``start`` twice, a timeout where
there is no deadline, ``replayed`` with no replay running).

What the peer does (``PEER_INPUTS``: a text frame, a binary frame, going away) is in
every row: a peer may send anything at any time, and is answered as the row says (an
error, a close, or nothing), never with an exception. So are ``GOODBYE`` and ``END``,
which shutdown and the adapter's cleanup send to every session whatever its state.
``CLOSED`` also takes what may still arrive once the session closed on its own, before
the adapter heard of it (a timer, the gate's answer, a replay ending, a drop to make room).
Once started, a gate's answer when no check is pending is dropped: only a checked
password moves the dialogue on, so a stray answer admits nobody.

The main line (the table below has every outcome)::

    OPENING --start--> AWAIT_PASSWORD --text--> CHECKING_PASSWORD --right--> AWAIT_NAME --join--> CHATTING
    OPENING --start, header password--> CHECKING_PASSWORD --checks paused--> AWAIT_RESUME
    AWAIT_NAME --join--> CHECKING_ACCOUNT --a guest, or signed in--> CHATTING (accounts kept: signin.py)
    CHECKING_ACCOUNT --a plain member's registered name--> AWAIT_PASSPHRASE --text--> CHECKING_ACCOUNT
    CHATTING --register--> REGISTERING --registered or refused--> CHATTING
    AWAIT_NAME, AWAIT_RESUME --resume--> REPLAYING --replayed--> CHATTING
    any state --refusal, exit, leave, binary frame, goodbye, disconnect, end--> CLOSED

The room can take a chatting member out without the session (too slow, resumed on
another connection, a moderator, the tracker stopping): ``Session.state`` then reads
CLOSED, and the next input records it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from chat_tracker.core.room import Resuming
from chat_tracker.core.signin import CheckAccount, CreateAccount
from chat_tracker.errors import IllegalTransition


class SessionState(enum.Enum):
    OPENING = "opening"  # accepted, not started: only admission and ``start``
    AWAIT_PASSWORD = "await_password"
    CHECKING_PASSWORD = "checking_password"  # the gate has the candidate: nothing is read
    AWAIT_NAME = "await_name"
    CHECKING_ACCOUNT = "checking_account"  # the adapter looks the name up (and checks a passphrase): nothing is read
    AWAIT_PASSPHRASE = "await_passphrase"  # plain dialect: the name is an account, its passphrase comes next
    AWAIT_RESUME = "await_resume"  # checks are paused for everyone: only a resume may get in (session.py)
    REPLAYING = "replaying"  # resumed: the adapter is replaying what it missed
    CHATTING = "chatting"
    REGISTERING = "registering"  # a chatting member's account is being made: its frames wait
    CLOSED = "closed"  # nothing more is read; the goodbye (if any) is queued


class Input(enum.Enum):
    """What can happen to a session: the ``Session`` method that takes it is named alongside."""

    TEXT = "a text frame"  # receive_text
    BINARY = "a binary frame"  # receive_binary
    DISCONNECT = "the peer went away"  # disconnected
    START = "start"  # start
    TURNED_AWAY = "a refusal at the door"  # refuse_banned, refuse_busy_address
    NO_ROOM = "a refusal for want of room"  # refuse_full
    TIMEOUT = "a timeout"  # timed_out
    PASSWORD_CHECKED = "the gate's answer"  # password_checked
    REPLAYED = "the replay's end"  # replayed
    ACCOUNT_CHECKED = "the account's answer"  # account_checked
    REGISTERED = "the registration's end"  # registration_done
    GOODBYE = "a goodbye"  # say_goodbye
    END = "the end of the connection"  # end


@dataclass(frozen=True)
class CheckPassword:
    """Action: check ``candidate`` with the password gate, then call ``password_checked``."""

    candidate: str | None


@dataclass(frozen=True)
class Replay:
    """Action: replay what the resumed member missed (``Resuming``), then call ``replayed``."""

    resuming: Resuming


@dataclass(frozen=True)
class Timeouts:
    auth: float  # seconds to give the password
    join: float  # seconds for each attempt at a name


PEER_INPUTS = frozenset((Input.TEXT, Input.BINARY, Input.DISCONNECT))

_S = SessionState
_CLOSED = frozenset((_S.CLOSED,))


def _to(*states: SessionState) -> frozenset[SessionState]:
    return frozenset(states)


TRANSITIONS: Mapping[SessionState, Mapping[Input, frozenset[SessionState]]] = {
    _S.OPENING: {
        Input.START: _to(_S.AWAIT_PASSWORD, _S.CHECKING_PASSWORD, _S.CLOSED),  # prompted; header password; URL one
        Input.TURNED_AWAY: _CLOSED,  # a banned address, or one with too many strangers
        Input.NO_ROOM: _CLOSED,  # the tracker is full
        Input.TEXT: _to(_S.OPENING),  # nothing is read before the start: dropped
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
    _S.AWAIT_PASSWORD: {
        Input.TEXT: _to(_S.CHECKING_PASSWORD, _S.CLOSED),  # a candidate; a JSON frame that is no ``auth``: 4008
        Input.TIMEOUT: _CLOSED,  # 4002
        Input.PASSWORD_CHECKED: _to(_S.AWAIT_PASSWORD),  # an answer to no question: dropped, admits nobody
        Input.NO_ROOM: _CLOSED,  # a stranger, dropped to make room
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
    _S.CHECKING_PASSWORD: {
        Input.PASSWORD_CHECKED: _to(_S.AWAIT_NAME, _S.AWAIT_RESUME, _S.CLOSED),  # right; paused; wrong or refused
        Input.TEXT: _to(_S.CHECKING_PASSWORD),  # not reading: dropped
        Input.NO_ROOM: _CLOSED,  # still a stranger
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
    _S.AWAIT_NAME: {
        # refused name or junk (asked again); joined, or joined again after a lost epoch; a name to
        # look up among the accounts; resumed; plain ``exit``, or too many joins: 4014
        Input.TEXT: _to(_S.AWAIT_NAME, _S.CHATTING, _S.CHECKING_ACCOUNT, _S.REPLAYING, _S.CLOSED),
        Input.TIMEOUT: _CLOSED,
        Input.PASSWORD_CHECKED: _to(_S.AWAIT_NAME),  # dropped
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
    _S.CHECKING_ACCOUNT: {
        # a guest or signed in: joined (or its name refused); a passphrase to ask for (plain) or a
        # wrong one: asked again; too many wrong ones: 4013
        Input.ACCOUNT_CHECKED: _to(_S.CHATTING, _S.AWAIT_NAME, _S.AWAIT_PASSPHRASE, _S.CLOSED),
        Input.TEXT: _to(_S.CHECKING_ACCOUNT),  # not reading: dropped
        Input.PASSWORD_CHECKED: _to(_S.CHECKING_ACCOUNT),  # dropped
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
    _S.AWAIT_PASSPHRASE: {
        Input.TEXT: _to(_S.CHECKING_ACCOUNT, _S.CLOSED),  # the passphrase to check; ``exit``
        Input.TIMEOUT: _CLOSED,
        Input.PASSWORD_CHECKED: _to(_S.AWAIT_PASSPHRASE),  # dropped
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
    _S.AWAIT_RESUME: {
        Input.TEXT: _to(_S.REPLAYING, _S.CHATTING, _S.CLOSED),  # resumed; joined again after a lost epoch; 4013, 4014
        Input.TIMEOUT: _CLOSED,
        Input.PASSWORD_CHECKED: _to(_S.AWAIT_RESUME),  # dropped
        Input.NO_ROOM: _CLOSED,  # still a stranger
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
    _S.REPLAYING: {
        Input.REPLAYED: _to(_S.CHATTING),
        Input.TEXT: _to(_S.REPLAYING),  # not reading: dropped
        Input.PASSWORD_CHECKED: _to(_S.REPLAYING),  # dropped
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
    _S.CHATTING: {
        # said, asked, refused; an account to make; left or removed for flooding
        Input.TEXT: _to(_S.CHATTING, _S.REGISTERING, _S.CLOSED),
        Input.PASSWORD_CHECKED: _to(_S.CHATTING),  # dropped
        # A member back from a lost epoch while checks were paused joined without a ``Replay``, and
        # the adapter marks a connection authenticated only at AWAIT_NAME or a Replay: it may still
        # be taken for a stranger and dropped to make room.
        Input.NO_ROOM: _CLOSED,
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
    _S.REGISTERING: {
        Input.REGISTERED: _to(_S.CHATTING),  # told how it went, whichever way
        Input.TEXT: _to(_S.REGISTERING),  # not reading: dropped
        Input.PASSWORD_CHECKED: _to(_S.REGISTERING),  # dropped
        Input.NO_ROOM: _CLOSED,  # as CHATTING
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
    _S.CLOSED: {
        Input.TEXT: _CLOSED,  # dropped
        Input.TIMEOUT: _CLOSED,  # a timer that fired as it closed: nothing more
        Input.PASSWORD_CHECKED: _CLOSED,  # a late answer: nobody to admit
        Input.REPLAYED: _CLOSED,  # a replay that ended after the close
        Input.ACCOUNT_CHECKED: _CLOSED,  # a look-up that ended after the close
        Input.REGISTERED: _CLOSED,  # a registration that ended after the member left
        Input.NO_ROOM: _CLOSED,  # a stranger closing, dropped to make room
        Input.BINARY: _CLOSED,
        Input.DISCONNECT: _CLOSED,
        Input.GOODBYE: _CLOSED,
        Input.END: _CLOSED,
    },
}

READING = frozenset(
    (_S.AWAIT_PASSWORD, _S.AWAIT_NAME, _S.AWAIT_PASSPHRASE, _S.AWAIT_RESUME, _S.CHATTING)
)  # the adapter reads a frame


def deadline_of(state: SessionState, timeouts: Timeouts) -> float | None:
    """How long a session in ``state`` waits for the peer's next frame; None for as long as it takes."""
    if state is _S.AWAIT_PASSWORD or state is _S.AWAIT_RESUME:
        return timeouts.auth
    if state is _S.AWAIT_NAME or state is _S.AWAIT_PASSPHRASE:
        return timeouts.join
    return None


Action = CheckPassword | Replay | CheckAccount | CreateAccount  # what a session asks its adapter to carry out

_WAITING: dict[type[object], SessionState] = {
    CheckPassword: _S.CHECKING_PASSWORD,
    Replay: _S.REPLAYING,
    CheckAccount: _S.CHECKING_ACCOUNT,
}


def waiting_for(action: Action) -> SessionState:
    """The state a session asking for ``action`` is in until it is told the action is done."""
    return _WAITING.get(type(action), _S.REGISTERING)


def expect(state: SessionState, happening: Input) -> None:
    """Raise ``IllegalTransition`` unless ``state``'s row takes ``happening``."""
    if happening not in TRANSITIONS[state]:
        raise IllegalTransition(
            state, happening, f"a session in {state.name} cannot take {happening.value} ({happening.name})"
        )


def check_move(state: SessionState, happening: Input, after: SessionState) -> None:
    """Raise ``IllegalTransition`` unless the table lets ``happening`` take a session from ``state`` to ``after``."""
    if after not in TRANSITIONS[state][happening]:
        raise IllegalTransition(
            state, happening, f"{happening.name} cannot take a session from {state.name} to {after.name}"
        )
