"""The session's table of transitions, cell by cell: what moves it, what it ignores, and what raises.

Every state is reached the way an adapter reaches it (``start``, frames, the gate's
answers, a resume), with a real room on a real chat.log. Then one input is given:

- each input the table has no place for in that state raises ``IllegalTransition`` (one
  case per illegal state and call), and leaves the session as it was: same state,
  nothing sent, nobody joined or gone;
- each input it does have a place for lands in one of the states its cell names, and a
  peer's input (a text or binary frame, a disconnect) never raises, whatever the state;
- reading ``state``, ``reading`` or ``deadline`` changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from chat_protocol import Welcome, decode_server
from chat_tracker.core.auth import Checked
from chat_tracker.core.dialects import JSON, PLAIN, Dialect
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.ratelimit import Wait
from chat_tracker.core.session import Replay, Session, SessionState, Timeouts
from chat_tracker.core.session_states import PEER_INPUTS, TRANSITIONS, Input
from chat_tracker.core.signin import AccountChecked, CheckAccount, CreateAccount, RegistrationDone, Verdict
from chat_tracker.errors import IllegalTransition, TrackerError
from support.fakes import drain
from support.roomkit import RoomKit

S = SessionState
PASSWORD = "alphonso"
AUTH = json.dumps({"type": "auth", "password": PASSWORD})


@dataclass(frozen=True)
class Call:
    """One of the session's methods, and the table's input it is."""

    name: str
    input: Input
    run: Callable[[Session], object]


CALLS = [
    Call("start", Input.START, lambda s: s.start(b"", None)),
    Call("refuse_banned", Input.TURNED_AWAY, lambda s: s.refuse_banned("spam")),
    Call("refuse_busy_address", Input.TURNED_AWAY, lambda s: s.refuse_busy_address()),
    Call("refuse_full", Input.NO_ROOM, lambda s: s.refuse_full()),
    Call("timed_out", Input.TIMEOUT, lambda s: s.timed_out()),
    Call("password_checked", Input.PASSWORD_CHECKED, lambda s: s.password_checked(True)),
    Call("replayed", Input.REPLAYED, lambda s: s.replayed()),
    Call("account_checked", Input.ACCOUNT_CHECKED, lambda s: s.account_checked(AccountChecked(Verdict.GUEST, "gamma"))),
    Call("registration_done", Input.REGISTERED, lambda s: s.registration_done(RegistrationDone(name="beta"))),
    Call("say_goodbye", Input.GOODBYE, lambda s: s.say_goodbye(1001, "The tracker is shutting down. Bye.")),
    Call("end", Input.END, lambda s: s.end()),
    Call("receive_text", Input.TEXT, lambda s: s.receive_text('{"type":"who"}')),
    Call("receive_binary", Input.BINARY, lambda s: s.receive_binary()),
    Call("disconnected", Input.DISCONNECT, lambda s: s.disconnected(1006)),
]

# The table's complement, written out: every call an adapter could make at a time the dialogue
# has no place for. (The peer's inputs, the goodbye and the end are welcome in every state.)
_ACCOUNTS = {Input.ACCOUNT_CHECKED, Input.REGISTERED}  # answers only the account states wait for
ILLEGAL = {
    S.OPENING: {Input.TIMEOUT, Input.PASSWORD_CHECKED, Input.REPLAYED, *_ACCOUNTS},
    S.AWAIT_PASSWORD: {Input.START, Input.TURNED_AWAY, Input.REPLAYED, *_ACCOUNTS},
    S.CHECKING_PASSWORD: {Input.START, Input.TURNED_AWAY, Input.TIMEOUT, Input.REPLAYED, *_ACCOUNTS},
    S.AWAIT_NAME: {Input.START, Input.TURNED_AWAY, Input.NO_ROOM, Input.REPLAYED, *_ACCOUNTS},
    S.CHECKING_ACCOUNT: {
        Input.START,
        Input.TURNED_AWAY,
        Input.NO_ROOM,
        Input.TIMEOUT,
        Input.REPLAYED,
        Input.REGISTERED,
    },
    S.AWAIT_PASSPHRASE: {Input.START, Input.TURNED_AWAY, Input.NO_ROOM, Input.REPLAYED, *_ACCOUNTS},
    S.AWAIT_RESUME: {Input.START, Input.TURNED_AWAY, Input.REPLAYED, *_ACCOUNTS},
    S.REPLAYING: {Input.START, Input.TURNED_AWAY, Input.NO_ROOM, Input.TIMEOUT, *_ACCOUNTS},
    S.CHATTING: {Input.START, Input.TURNED_AWAY, Input.TIMEOUT, Input.REPLAYED, *_ACCOUNTS},
    S.REGISTERING: {Input.START, Input.TURNED_AWAY, Input.TIMEOUT, Input.REPLAYED, Input.ACCOUNT_CHECKED},
    S.CLOSED: {Input.START, Input.TURNED_AWAY},
}


# --- reaching each state as an adapter does ------------------------------------------------------


def _session(kit: RoomKit, accounts: bool = False, dialect: Dialect = JSON) -> Session:
    return Session(kit.room, dialect, Outbox(1024), "127.0.0.1", Timeouts(auth=7.5, join=42.0), accounts=accounts)


def _authenticated(kit: RoomKit, accounts: bool = False) -> Session:
    session = _session(kit, accounts)
    session.start(b"", None)
    session.receive_text(AUTH)
    session.password_checked(True)
    return session


def _away_member(kit: RoomKit) -> Welcome:
    """A member whose connection was lost: away for the grace, its welcome's token good for a resume."""
    first = _authenticated(kit)
    first.receive_text(json.dumps({"type": "join", "name": "alpha"}))
    kit.flush()
    frames, _ = drain(first.outbox)
    (welcome,) = [message for message in map(decode_server, frames) if isinstance(message, Welcome)]
    first.disconnected(1006)
    return welcome


def _replaying(kit: RoomKit) -> Session:
    welcome = _away_member(kit)
    session = _authenticated(kit)
    resume = {"type": "resume", "token": welcome.token, "epoch": welcome.epoch, "after": welcome.seq}
    assert isinstance(session.receive_text(json.dumps(resume)), Replay)
    return session


def _chatting(kit: RoomKit) -> Session:
    session = _authenticated(kit)
    session.receive_text(json.dumps({"type": "join", "name": "beta"}))
    kit.flush()
    return session


def _checking_account(kit: RoomKit) -> Session:
    session = _authenticated(kit, accounts=True)
    assert isinstance(session.receive_text(json.dumps({"type": "join", "name": "gamma"})), CheckAccount)
    return session


def _asked_for_the_passphrase(kit: RoomKit) -> Session:
    """Plain text: the name given is an account's, and the tracker asked for its passphrase."""
    session = _session(kit, accounts=True, dialect=PLAIN)
    session.start(b"", None)
    session.receive_text(PASSWORD)
    session.password_checked(True)
    session.receive_text("gamma")
    session.account_checked(AccountChecked(Verdict.PASSPHRASE_REQUIRED, "gamma"))
    return session


def _registering(kit: RoomKit) -> Session:
    session = _checking_account(kit)
    session.account_checked(AccountChecked(Verdict.GUEST, "gamma"))
    kit.flush()
    assert isinstance(session.receive_text(json.dumps({"type": "register", "passphrase": "a long one"})), CreateAccount)
    return session


def _dropped_by_the_room(kit: RoomKit) -> Session:
    """Chatting until the room dropped its member (too slow): CLOSED, though the session was not told."""
    session = _chatting(kit)
    assert session.member is not None
    kit.room.drop_slow(session.member)
    kit.flush()
    return session


def _prompted(kit: RoomKit) -> Session:
    session = _session(kit)
    session.start(b"", None)
    return session


def _checking(kit: RoomKit) -> Session:
    session = _session(kit)
    session.start(b"", f"Bearer {PASSWORD}")
    return session


def _checks_paused(kit: RoomKit) -> Session:
    """The shared guessing budget is spent: the gate refused unchecked, hiding a right answer."""
    session = _prompted(kit)
    session.receive_text(AUTH)
    session.password_checked(Checked(ok=False, wait=Wait(3.0, own=False), hidden=True))
    return session


def _closed(kit: RoomKit) -> Session:
    session = _prompted(kit)
    session.receive_binary()
    return session


REACH: dict[str, tuple[SessionState, Callable[[RoomKit], Session]]] = {
    "opening": (S.OPENING, _session),
    "await_password": (S.AWAIT_PASSWORD, _prompted),
    "checking_password": (S.CHECKING_PASSWORD, _checking),
    "await_name": (S.AWAIT_NAME, _authenticated),
    "checking_account": (S.CHECKING_ACCOUNT, _checking_account),
    "await_passphrase": (S.AWAIT_PASSPHRASE, _asked_for_the_passphrase),
    "await_resume": (S.AWAIT_RESUME, _checks_paused),
    "replaying": (S.REPLAYING, _replaying),
    "chatting": (S.CHATTING, _chatting),
    "registering": (S.REGISTERING, _registering),
    "closed": (S.CLOSED, _closed),
    "closed_by_the_room": (S.CLOSED, _dropped_by_the_room),
}


@pytest.fixture
def kit(tmp_path: Path) -> RoomKit:
    return RoomKit.create(tmp_path, grace=60)


def _reach(kit: RoomKit, where: str) -> Session:
    state, reach = REACH[where]
    session = reach(kit)
    assert session.state is state
    drain(session.outbox)
    return session


def _cases(legal: bool) -> list[tuple[str, Call]]:
    """(where, call) for every call that state's row has (``legal``) or has not a place for."""
    return [
        (where, call)
        for where, (state, _) in REACH.items()
        for call in CALLS
        if (call.input in TRANSITIONS[state]) is legal
    ]


ILLEGAL_CASES, LEGAL_CASES = _cases(legal=False), _cases(legal=True)


def _ids(cases: list[tuple[str, Call]]) -> list[str]:
    return [f"{where}-{call.name}" for where, call in cases]


# --- the table ----------------------------------------------------------------------------------


def test_the_tables_complement_is_what_raises() -> None:
    """The calls that raise are exactly the ones written out in ILLEGAL; every state has a row."""
    assert set(TRANSITIONS) == set(SessionState)
    complement = {state: {i for i in Input if i not in TRANSITIONS[state]} for state in SessionState}
    assert complement == ILLEGAL


def test_the_peer_and_the_cleanup_are_welcome_in_every_state() -> None:
    """A frame, a binary frame, a disconnect, the shutdown's goodbye and the adapter's end never raise."""
    for state in SessionState:
        assert PEER_INPUTS | {Input.GOODBYE, Input.END} <= set(TRANSITIONS[state]), state


def test_an_illegal_transition_is_a_tracker_error() -> None:
    assert issubclass(IllegalTransition, TrackerError)


@pytest.mark.parametrize(("where", "call"), ILLEGAL_CASES, ids=_ids(ILLEGAL_CASES))
def test_a_call_out_of_turn_raises_and_changes_nothing(kit: RoomKit, where: str, call: Call) -> None:
    """The adapter asked at a time the table has no place for: IllegalTransition, and the session is as it was."""
    session = _reach(kit, where)
    before, names, member = session.state, kit.room.names(), session.member
    _, close = drain(session.outbox)  # a closed session's close request stays
    with pytest.raises(IllegalTransition):
        call.run(session)
    assert session.state is before and session.member is member
    assert drain(session.outbox) == ([], close)
    assert kit.room.names() == names


@pytest.mark.parametrize(("where", "call"), LEGAL_CASES, ids=_ids(LEGAL_CASES))
def test_a_call_in_turn_lands_where_its_cell_says(kit: RoomKit, where: str, call: Call) -> None:
    """Every cell of the table, tried: the session ends in one of the states the cell names."""
    session = _reach(kit, where)
    before = session.state
    call.run(session)
    assert session.state in TRANSITIONS[before][call.input]


@pytest.mark.parametrize("where", list(REACH))
def test_reading_where_it_stands_changes_nothing(kit: RoomKit, where: str) -> None:
    """``state``, ``reading`` and ``deadline`` only read: the session's fields stay as they were."""
    session = _reach(kit, where)
    fields = _fields(session)
    seen = [(session.state, session.reading, session.deadline) for _ in range(3)]
    assert seen == [seen[0]] * 3
    assert _fields(session) == fields


def _fields(session: Session) -> dict[str, object]:
    """The session's fields (it has ``__slots__``, no ``__dict__``), the unset ones left out."""
    return {name: getattr(session, name) for name in Session.__slots__ if hasattr(session, name)}
