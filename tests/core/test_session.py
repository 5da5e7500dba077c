"""One connection's dialogue as a state machine: password, name, chat and goodbye, in both dialects, with no socket.

Each test plays the WebSocket adapter: it feeds the ``Session`` frames, timeouts and
disconnects, answers its ``CheckPassword`` actions the way the password gate would,
and reads what the peer would have received from the connection's outbox. The room
is real (``RoomKit``: a real chat.log in a temporary directory, fake clocks).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from chat_protocol import (
    Authenticated,
    Bye,
    ChatMessage,
    Error,
    Hello,
    Left,
    Limits,
    Members,
    ServerMessage,
    Welcome,
    decode_server,
)
from chat_tracker.core.auth import Checked
from chat_tracker.core.dialects import JSON, PLAIN, Dialect
from chat_tracker.core.outbox import CloseRequest, Outbox
from chat_tracker.core.ratelimit import KeyedBuckets, Wait
from chat_tracker.core.session import Action, CheckPassword, Errand, Session, SessionState, Timeouts, leave_reason
from chat_tracker.storage.chatlog import LogWriteError
from support.fakes import FakeWire, drain
from support.roomkit import RoomKit

PASSWORD = "alphonso"
TIMEOUTS = Timeouts(auth=7.5, join=42.0)
DIALECTS = pytest.mark.parametrize("dialect", [PLAIN, JSON], ids=["plain", "json"])

WELCOME_LINES = [
    "Hi alpha, You have been added to the server.",
    "Online now (1): alpha",
    "Limits: 2000 characters per message, 10 messages/s (bursts of 20).",
    "Just type your message and press Enter; send exit to leave.",
]


class Peer:
    """One connection: its session, and everything its outbox has sent so far."""

    def __init__(
        self, kit: RoomKit, dialect: Dialect, *, timeouts: Timeouts = TIMEOUTS, wire: FakeWire | None = None
    ) -> None:
        self.kit = kit
        self.dialect = dialect
        self.outbox = Outbox(1024, wire=wire)
        self.session = Session(kit.room, dialect, self.outbox, "127.0.0.1", timeouts)
        self.frames: list[str] = []
        self.close: CloseRequest | None = None

    def state(self) -> SessionState:
        return self.session.state  # a call, so that type checkers do not narrow it across steps

    def got(self) -> list[str]:
        """The frames sent since the last call (and any close request, in ``close``)."""
        frames, close = drain(self.outbox)
        self.frames.extend(frames)
        self.close = close or self.close
        return frames

    def got_json(self) -> list[ServerMessage]:
        return [decode_server(frame) for frame in self.got()]

    # --- what a client sends, in its dialect -----------------------------------------------

    def password(self, password: str = PASSWORD) -> Action | Errand | None:
        if self.dialect is PLAIN:
            return self.session.receive_text(password + "\r\n")
        return self.session.receive_text(json.dumps({"type": "auth", "password": password}))

    def name(self, name: str) -> None:
        frame = name + "\n" if self.dialect is PLAIN else json.dumps({"type": "join", "name": name})
        assert self.session.receive_text(frame) is None

    def say(self, text: str) -> None:
        frame = text if self.dialect is PLAIN else json.dumps({"type": "message", "text": text})
        assert self.session.receive_text(frame) is None

    def send_json(self, body: object) -> Action | Errand | None:
        return self.session.receive_text(json.dumps(body))

    # --- the gate, played here --------------------------------------------------------------

    def gate(self, action: Action | Errand | None) -> None:
        """Answer ``action`` as the password gate would."""
        assert isinstance(action, CheckPassword)
        self.session.password_checked(action.candidate == PASSWORD)

    def authenticate(self) -> None:
        assert self.session.start(b"", None) is None
        self.gate(self.password())
        self.got()

    def join(self, name: str) -> None:
        """Authenticate, join as ``name`` and receive the welcome."""
        self.authenticate()
        self.name(name)
        assert self.state() is SessionState.CHATTING
        self.kit.flush()
        self.got()


@pytest.fixture
def kit(tmp_path: Path) -> RoomKit:
    return RoomKit.create(tmp_path)


def _error(frame: str) -> tuple[str, str]:
    message = decode_server(frame)
    assert isinstance(message, Error), frame
    return message.code, message.message


def _close_code(peer: Peer) -> int | None:
    peer.got()
    return None if peer.close is None else peer.close.code


def _logged(kit: RoomKit) -> list[tuple[str, str, str]]:
    kit.flush()
    return [(entry.kind, entry.name, entry.text) for entry in kit.entries()]


# --- stage 1: the password -----------------------------------------------------------------


def test_plain_peer_is_asked_for_the_password(kit: RoomKit) -> None:
    """A plain-text peer first sees ``Enter server password...`` and has the auth timeout to answer."""
    peer = Peer(kit, PLAIN)
    assert peer.session.start(b"", None) is None
    assert peer.got() == ["Enter server password..."]
    assert peer.state() is SessionState.AWAIT_PASSWORD
    assert peer.session.reading and peer.session.deadline == 7.5
    assert peer.session.member is None


def test_json_peer_gets_an_unauthenticated_hello(kit: RoomKit) -> None:
    """A JSON peer without an Authorization header first gets ``hello`` with ``authenticated: false``."""
    peer = Peer(kit, JSON)
    assert peer.session.start(b"", None) is None
    assert peer.got_json() == [Hello(version=1, authenticated=False)]
    assert peer.state() is SessionState.AWAIT_PASSWORD and peer.session.deadline == 7.5


def test_plain_password_is_checked_then_the_name_is_asked(kit: RoomKit) -> None:
    """The plain password frame (CR/LF stripped, nothing else) goes to the gate; nothing is read or sent meanwhile."""
    peer = Peer(kit, PLAIN)
    peer.session.start(b"", None)
    peer.got()
    action = peer.session.receive_text(PASSWORD + "\r\n")
    assert action == CheckPassword(PASSWORD)
    assert peer.state() is SessionState.CHECKING_PASSWORD
    assert not peer.session.reading and peer.session.deadline is None
    assert peer.got() == []
    peer.session.password_checked(True)
    assert peer.got() == ["Welcome to our server...", "Enter your username..."]
    assert peer.state() is SessionState.AWAIT_NAME
    assert peer.session.reading and peer.session.deadline == 42.0


def test_plain_password_keeps_its_spaces(kit: RoomKit) -> None:
    """Only a trailing CR/LF is stripped: `` alphonso `` is a different (wrong) password."""
    peer = Peer(kit, PLAIN)
    peer.session.start(b"", None)
    assert peer.session.receive_text(" alphonso \n") == CheckPassword(" alphonso ")


def test_json_auth_frame_is_checked_then_authenticated(kit: RoomKit) -> None:
    """``auth`` goes to the gate; a right password is answered with ``authenticated``."""
    peer = Peer(kit, JSON)
    peer.session.start(b"", None)
    peer.got()
    action = peer.send_json({"type": "auth", "password": PASSWORD, "extra": "ignored"})
    assert action == CheckPassword(PASSWORD)
    assert peer.state() is SessionState.CHECKING_PASSWORD and peer.got() == []
    peer.session.password_checked(True)
    assert peer.got_json() == [Authenticated()]
    assert peer.state() is SessionState.AWAIT_NAME and peer.session.deadline == 42.0


def test_wrong_plain_password_says_so_and_closes_4001(kit: RoomKit) -> None:
    """A wrong plain password: ``Wrong password. Bye.`` then close 4001; nothing is joined or logged."""
    peer = Peer(kit, PLAIN)
    peer.session.start(b"", None)
    peer.got()
    action = peer.password("Alphonso")
    assert action == CheckPassword("Alphonso")
    peer.session.password_checked(False)
    assert peer.got() == ["Wrong password. Bye."]
    assert peer.close == CloseRequest(4001, "bad_password")
    assert peer.state() is SessionState.CLOSED and not peer.session.reading
    assert peer.session.member is None
    assert _logged(kit) == []


def test_wrong_json_password_is_bad_password_and_closes_4001(kit: RoomKit) -> None:
    """A wrong ``auth`` password: ``error`` ``bad_password`` then close 4001; no ``authenticated``."""
    peer = Peer(kit, JSON)
    peer.session.start(b"", None)
    peer.got()
    peer.gate(peer.password("wrong"))
    frames = peer.got()
    assert [_error(frame)[0] for frame in frames] == ["bad_password"]
    assert peer.close is not None and peer.close.code == 4001
    assert peer.state() is SessionState.CLOSED
    assert _logged(kit) == []


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {PASSWORD}",
        f"bearer   {PASSWORD} ",
        "Basic " + base64.b64encode(f"anyone:{PASSWORD}".encode()).decode(),
    ],
    ids=["bearer", "bearer-spaces", "basic"],
)
def test_password_in_the_header_says_hello_authenticated(kit: RoomKit, header: str) -> None:
    """A right ``Authorization`` header is checked before anything is sent; then ``hello`` says authenticated."""
    peer = Peer(kit, JSON)
    action = peer.session.start(b"", header)
    assert action == CheckPassword(PASSWORD)
    assert peer.state() is SessionState.CHECKING_PASSWORD and peer.got() == []
    peer.session.password_checked(True)
    assert peer.got_json() == [Hello(version=1, authenticated=True)]
    assert peer.state() is SessionState.AWAIT_NAME
    peer.name("alpha")
    kit.flush()
    assert isinstance(peer.got_json()[0], Welcome)


@pytest.mark.parametrize("header", ["Bearer wrong", "Bearer ", "Basic !!!", "Token alphonso", ""])
def test_wrong_header_password_closes_4001_without_a_hello(kit: RoomKit, header: str) -> None:
    """A wrong, empty or garbled header password: ``bad_password`` and 4001 right away, never a ``hello``."""
    peer = Peer(kit, JSON)
    peer.gate(peer.session.start(b"", header))
    frames = peer.got()
    assert [_error(frame)[0] for frame in frames] == ["bad_password"]
    assert peer.close is not None and peer.close.code == 4001


def test_plain_peer_is_asked_for_the_password_even_with_a_header(kit: RoomKit) -> None:
    """The Authorization header is the structured dialect's; a plain-text peer is still prompted."""
    peer = Peer(kit, PLAIN)
    assert peer.session.start(b"", f"Bearer {PASSWORD}") is None
    assert peer.got() == ["Enter server password..."]
    assert peer.state() is SessionState.AWAIT_PASSWORD


@DIALECTS
@pytest.mark.parametrize("header", [None, f"Bearer {PASSWORD}"])
def test_password_in_the_url_closes_4003_before_any_check(kit: RoomKit, dialect: Dialect, header: str | None) -> None:
    """A non-empty query string: ``password_in_url`` then 4003, and no password check at all (even a right header)."""
    peer = Peer(kit, dialect)
    assert peer.session.start(f"password={PASSWORD}".encode(), header) is None
    frames = peer.got()
    if dialect is JSON:
        assert [_error(frame)[0] for frame in frames] == ["password_in_url"]
    else:
        assert frames == ["! never put the password in the URL"]
    assert peer.close == CloseRequest(4003, "password_in_url")
    assert peer.state() is SessionState.CLOSED


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type":"join","name":"alpha"}', "not_authenticated"),
        ('{"type":"message","text":"hi"}', "not_authenticated"),
        ('{"type":"who"}', "not_authenticated"),
        ('{"type":"leave"}', "not_authenticated"),
        ("alphonso", "malformed"),  # the plain-text way, in the wrong dialect
        ("{not json", "malformed"),
        ("[]", "malformed"),
        ('{"type":1}', "malformed"),
        ('{"type":"auth"}', "malformed"),  # no password
        ('{"type":"auth","password":null}', "malformed"),
        ('{"type":"auth","password":["alphonso"]}', "malformed"),
        ("[" * 5000, "malformed"),
        ('{"type":"sudo"}', "unknown_type"),
    ],
)
def test_anything_but_auth_first_closes_4008(kit: RoomKit, frame: str, code: str) -> None:
    """Before authentication, a frame that is not a well-formed ``auth`` gets an error and close 4008, unchecked."""
    peer = Peer(kit, JSON)
    peer.session.start(b"", None)
    peer.got()
    assert peer.session.receive_text(frame) is None
    assert [_error(f)[0] for f in peer.got()] == [code]
    assert peer.close is not None and peer.close.code == 4008
    assert peer.state() is SessionState.CLOSED


@pytest.mark.parametrize("state", ["password", "name", "chatting"])
@DIALECTS
def test_binary_frame_closes_1003(kit: RoomKit, dialect: Dialect, state: str) -> None:
    """A binary frame, at any stage: ``binary_not_accepted`` then 1003; a member is then logged leaving ``closed``."""
    peer = Peer(kit, dialect)
    if state == "password":
        peer.session.start(b"", None)
    elif state == "name":
        peer.authenticate()
    else:
        peer.join("alpha")
    peer.got()
    peer.session.receive_binary()
    frames = peer.got()
    if dialect is JSON:
        assert [_error(frame)[0] for frame in frames] == ["binary_not_accepted"]
    else:
        assert frames == ["! binary frames are not accepted"]
    assert peer.close == CloseRequest(1003, "binary_not_accepted")
    assert peer.state() is SessionState.CLOSED and not peer.session.reading
    peer.session.end()  # what the adapter does once the session stops reading
    expected = [("join", "alpha", ""), ("leave", "alpha", "closed")] if state == "chatting" else []
    assert _logged(kit) == expected


# --- deadlines -------------------------------------------------------------------------------


@DIALECTS
def test_no_password_in_time_closes_4002_naming_the_seconds(kit: RoomKit, dialect: Dialect) -> None:
    """At the password prompt the deadline is the auth timeout; running out: ``handshake_timeout``, 4002."""
    peer = Peer(kit, dialect)
    peer.session.start(b"", None)
    peer.got()
    assert peer.session.deadline == 7.5
    peer.session.timed_out()
    frames = peer.got()
    if dialect is JSON:
        assert [_error(frame) for frame in frames] == [("handshake_timeout", "no password within 7.5 s")]
    else:
        assert frames == ["! no password within 7.5 s"]
    assert peer.close == CloseRequest(4002, "handshake_timeout")
    assert peer.state() is SessionState.CLOSED and peer.session.deadline is None


@DIALECTS
def test_no_accepted_name_in_time_closes_4002_naming_the_seconds(kit: RoomKit, dialect: Dialect) -> None:
    """At the name prompt the deadline is the join timeout, and refused attempts do not extend past it."""
    peer = Peer(kit, dialect)
    peer.authenticate()
    assert peer.session.deadline == 42.0
    peer.name("admin")  # refused: still at the name prompt, same deadline per attempt
    assert peer.session.deadline == 42.0
    peer.got()
    peer.session.timed_out()
    frames = peer.got()
    if dialect is JSON:
        assert [_error(frame) for frame in frames] == [("handshake_timeout", "no accepted name within 42 s")]
    else:
        assert frames == ["! no accepted name within 42 s"]
    assert peer.close is not None and peer.close.code == 4002
    assert _logged(kit) == []


def test_deadline_per_state(kit: RoomKit) -> None:
    """No deadline while the gate checks, while chatting, or once closed."""
    peer = Peer(kit, JSON, timeouts=Timeouts(auth=1, join=2.25))
    peer.session.start(b"", None)
    assert peer.session.deadline == 1
    peer.password()
    assert peer.session.deadline is None
    peer.session.password_checked(True)
    assert peer.session.deadline == 2.25
    peer.name("alpha")
    assert peer.state() is SessionState.CHATTING and peer.session.deadline is None
    peer.session.disconnected(1000)
    assert peer.session.deadline is None


# --- stage 2: the name -----------------------------------------------------------------------


def test_plain_refused_name_says_why_and_asks_again(kit: RoomKit) -> None:
    """``Name refused: <reason>`` and the prompt again, on the same connection; then a good name is welcomed."""
    other = Peer(kit, JSON)
    other.join("alpha")
    peer = Peer(kit, PLAIN)
    peer.authenticate()
    for name, reason in [
        ("admin", "the name 'admin' is reserved"),
        ("a1pha", "the name 'a1pha' is taken (or too close to 'alpha')"),
        (
            "al pha",
            "invalid name: use 1-32 characters: letters A-Z, digits, '_', '-' or '.', starting with a letter or digit",
        ),
    ]:
        peer.name(name)
        assert peer.got() == [f"Name refused: {reason}", "Enter your username..."]
        assert peer.state() is SessionState.AWAIT_NAME and peer.session.member is None
    peer.name("beta")
    assert peer.state() is SessionState.CHATTING
    assert peer.got() == []  # the welcome comes once the join is in chat.log
    kit.flush()
    assert peer.got() == [
        "Hi beta, You have been added to the server.",
        "Online now (2): alpha, beta",
        "Limits: 2000 characters per message, 10 messages/s (bursts of 20).",
        "Just type your message and press Enter; send exit to leave.",
    ]
    assert [(e.kind, e.name) for e in kit.entries()] == [("join", "alpha"), ("join", "beta")]


def test_json_refused_name_is_an_error_and_the_connection_stays(kit: RoomKit) -> None:
    """Invalid, reserved and taken names each get their error code; the next good ``join`` is welcomed."""
    other = Peer(kit, PLAIN)
    other.join("alpha")
    peer = Peer(kit, JSON)
    peer.authenticate()
    for name, code in [
        ("", "name_invalid"),
        ("ålpha", "name_invalid"),
        ("Adm1n", "name_reserved"),
        ("ALPHA", "name_taken"),
        ("alp.ha", "name_taken"),
    ]:
        peer.name(name)
        assert [_error(frame)[0] for frame in peer.got()] == [code]
        assert peer.state() is SessionState.AWAIT_NAME and peer.close is None
    peer.name("alpha2")
    kit.flush()
    welcome = peer.got_json()[0]
    assert isinstance(welcome, Welcome)
    assert welcome.name == "alpha2" and welcome.members == ["alpha", "alpha2"] and welcome.seq == 2


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type":"message","text":"hi"}', "not_joined"),
        ('{"type":"who"}', "not_joined"),
        ('{"type":"leave"}', "not_joined"),
        ('{"type":"auth","password":"alphonso"}', "already_authenticated"),
        ('{"type":"join"}', "malformed"),
        ("not json", "malformed"),
        ('{"type":"dance"}', "unknown_type"),
    ],
)
def test_json_before_the_welcome_only_join_is_accepted(kit: RoomKit, frame: str, code: str) -> None:
    """After authentication, anything but ``join`` gets an error and the connection stays at the name prompt."""
    peer = Peer(kit, JSON)
    peer.authenticate()
    assert peer.session.receive_text(frame) is None
    assert [_error(f)[0] for f in peer.got()] == [code]
    assert peer.state() is SessionState.AWAIT_NAME and peer.close is None
    assert _logged(kit) == []


def test_plain_exit_at_the_name_prompt_says_bye_and_closes_1000(kit: RoomKit) -> None:
    """``exit`` instead of a name: ``Bye.`` then close 1000; nothing is logged."""
    peer = Peer(kit, PLAIN)
    peer.authenticate()
    peer.name("exit")
    assert peer.got() == ["Bye."]
    assert peer.close == CloseRequest(1000, "left")
    assert peer.state() is SessionState.CLOSED
    assert _logged(kit) == []


def test_join_while_chat_log_cannot_be_written_is_refused_and_may_be_retried(kit: RoomKit) -> None:
    """With chat.log unwritable, ``join`` gets ``log_unavailable`` at the same prompt; it works once the log does."""
    failing = True
    write = kit.log.append

    def flaky_append(data: bytes) -> None:
        if failing:
            raise LogWriteError(28, "No space left on device")
        write(data)

    kit.log.append = flaky_append  # type: ignore[method-assign]
    kit.room.start("tracker started")
    kit.flush()  # fails: the journal is not writable now
    peer = Peer(kit, JSON)
    peer.authenticate()
    peer.name("alpha")
    assert [_error(frame)[0] for frame in peer.got()] == ["log_unavailable"]
    assert peer.state() is SessionState.AWAIT_NAME
    failing = False
    kit.flush()
    peer.name("alpha")
    kit.flush()
    assert isinstance(peer.got_json()[0], Welcome)
    assert [(e.kind, e.name) for e in kit.entries()] == [("start", "-"), ("join", "alpha")]


# --- stage 3: chatting -------------------------------------------------------------------------


def test_plain_chat_say_and_exit(kit: RoomKit) -> None:
    """Plain lines are messages (CR/LF stripped, no echo; ``who`` and "exit now" are ordinary text); ``exit`` leaves."""
    listener = Peer(kit, JSON)
    listener.join("beta")
    peer = Peer(kit, PLAIN)
    peer.join("alpha")
    peer.say("Hi I am alpha\r\n")
    peer.say("who")
    peer.say("exit now")
    kit.flush()
    assert peer.got() == []  # no echo for plain-text members
    said = [m for m in listener.got_json() if isinstance(m, ChatMessage)]
    assert [(m.name, m.text) for m in said] == [("alpha", "Hi I am alpha"), ("alpha", "who"), ("alpha", "exit now")]
    peer.say("exit\r\n")
    assert peer.state() is SessionState.CLOSED and not peer.session.reading
    assert peer.got() == []  # the goodbye waits for the leave to be in chat.log
    kit.flush()
    assert peer.got() == ["Bye, alpha."]
    assert peer.close is not None and peer.close.code == 1000
    assert _logged(kit)[-1] == ("leave", "alpha", "exit")
    left = listener.got_json()
    assert isinstance(left[-1], Left) and left[-1].reason == "exit"
    peer.session.end()
    assert [kind for kind, _, _ in _logged(kit)].count("leave") == 1


def test_plain_refused_message_is_a_bang_line(kit: RoomKit) -> None:
    """A refused plain message is answered with ``! <reason>`` and the member stays."""
    peer = Peer(kit, PLAIN)
    peer.join("alpha")
    peer.say("\r\n")
    peer.say("x" * 2001)
    assert peer.got() == ["! empty message not sent", "! message too long: 2001 characters, the limit is 2000"]
    assert peer.state() is SessionState.CHATTING
    assert [kind for kind, _, _ in _logged(kit)] == ["join"]


def test_json_chat_say_who_and_leave(kit: RoomKit) -> None:
    """A JSON member's message comes back as its echo; ``who`` lists members; ``leave`` gets ``bye`` then 1000."""
    other = Peer(kit, PLAIN)
    other.join("beta")
    peer = Peer(kit, JSON)
    peer.join("alpha")
    kit.mono.advance(3)
    peer.say("hello \u202e world")
    assert peer.got() == []  # the echo waits for chat.log
    kit.flush()
    echo = peer.got_json()
    assert [(m.seq, m.name, m.text) for m in echo if isinstance(m, ChatMessage)] == [(3, "alpha", "hello \u202e world")]
    assert other.got() == ["* alpha joined the chat", "alpha: hello \\u202e world"]
    assert peer.send_json({"type": "who"}) is None
    (members,) = peer.got_json()
    assert isinstance(members, Members)
    assert [(m.name, m.idle_seconds) for m in members.members] == [("beta", 3.0), ("alpha", 0.0)]
    assert peer.send_json({"type": "leave"}) is None
    assert peer.state() is SessionState.CLOSED
    kit.flush()
    assert peer.got_json() == [Bye(reason="left", message="Bye, alpha.")]
    assert peer.close == CloseRequest(1000, "left")
    assert _logged(kit)[-1] == ("leave", "alpha", "exit")
    assert other.got() == ["* alpha left the chat"]


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ('{"type":"join","name":"alpha"}', ("already_joined", "already joined as alpha")),
        ('{"type":"join","name":"gamma"}', ("already_joined", "already joined as alpha")),
        ('{"type":"auth","password":"alphonso"}', ("already_authenticated", "already authenticated")),
        ('{"type":"message"}', ("malformed", "'message' needs a string 'text'")),
        ('{"type":"message","text":""}', ("empty", "empty message not sent")),
        ('{"type":"message","text":"\\ud800"}', ("invalid_text", "message is not valid Unicode text")),
        ("\u0000", ("malformed", "frame is not valid JSON")),
        ('{"type":"kick","name":"beta"}', ("unknown_type", "unknown message type 'kick'")),
    ],
)
def test_json_refusals_while_joined_keep_the_member(kit: RoomKit, frame: str, error: tuple[str, str]) -> None:
    """A second ``join``, an ``auth``, junk or a refused message gets an error; the member stays, nothing is logged."""
    peer = Peer(kit, JSON)
    peer.join("alpha")
    assert peer.session.receive_text(frame) is None
    assert [_error(f) for f in peer.got()] == [error]
    assert peer.state() is SessionState.CHATTING and peer.session.member is not None
    assert kit.room.names() == ["alpha"]
    assert [kind for kind, _, _ in _logged(kit)] == ["join"]


# --- leaving ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [(code, "closed") for code in (1000, 1001, 1002, 1003, 1007, 1009)]
    + [(code, "lost") for code in (1005, 1006, 1011, 1012, 4000)],
)
@DIALECTS
def test_disconnect_logs_closed_or_lost(kit: RoomKit, dialect: Dialect, code: int, reason: str) -> None:
    """A member whose connection ends is logged leaving ``closed`` (a close frame or a broken rule) or ``lost``."""
    assert leave_reason(code) == reason
    listener = Peer(kit, JSON)
    listener.join("beta")
    peer = Peer(kit, dialect)
    peer.join("alpha")
    peer.session.disconnected(code)
    assert peer.state() is SessionState.CLOSED and not peer.session.reading
    assert kit.room.names() == ["beta"]
    peer.session.end()  # the adapter always ends the session: still one leave
    assert _logged(kit)[-1] == ("leave", "alpha", reason)
    assert [kind for kind, _, _ in _logged(kit)].count("leave") == 1
    left = listener.got_json()[-1]
    assert isinstance(left, Left) and (left.name, left.reason) == ("alpha", reason)


@pytest.mark.parametrize("stage", ["password", "checking", "name"])
def test_disconnect_before_joining_logs_nothing(kit: RoomKit, stage: str) -> None:
    """A peer that goes away before its welcome leaves no trace in chat.log, and a late gate answer changes nothing."""
    peer = Peer(kit, PLAIN)
    peer.session.start(b"", None)
    if stage != "password":
        action = peer.password()
        if stage == "name":
            peer.gate(action)
    peer.session.disconnected(1006)
    peer.session.password_checked(True)
    assert peer.state() is SessionState.CLOSED and peer.session.member is None
    peer.session.end()
    assert _logged(kit) == []


def test_end_takes_a_chatting_member_out_as_closed(kit: RoomKit) -> None:
    """However the connection ended, ``end`` leaves the room (``closed``) exactly once."""
    peer = Peer(kit, JSON)
    peer.join("alpha")
    peer.session.end()
    peer.session.end()
    assert peer.state() is SessionState.CLOSED
    assert _logged(kit) == [("join", "alpha", ""), ("leave", "alpha", "closed")]


@DIALECTS
def test_flooding_removal_closes_the_session(tmp_path: Path, dialect: Dialect) -> None:
    """A member kept over the rate limit is removed: its session is CLOSED at once; 4006 follows its logged leave."""
    kit = RoomKit.create(tmp_path, Limits(rate_per_second=1, rate_burst=2), flood_tolerance=1)
    peer = Peer(kit, dialect)
    peer.join("alpha")
    peer.say("one")
    peer.say("two")
    peer.say("three")  # refused: rate_limited
    assert peer.state() is SessionState.CHATTING
    peer.say("four")  # removed
    assert peer.state() is SessionState.CLOSED and not peer.session.reading
    assert kit.room.names() == []
    peer.say("five")  # what the adapter might still read: ignored
    kit.flush()
    peer.got()
    assert peer.close is not None and peer.close.code == 4006
    assert [(kind, text) for kind, _, text in _logged(kit)] == [
        ("join", ""),
        ("msg", "one"),
        ("msg", "two"),
        ("leave", "flooding"),
    ]


def test_slow_drop_closes_the_session(kit: RoomKit) -> None:
    """A member the room drops as too slow is CLOSED for its session too; ``end`` adds no second leave."""
    peer = Peer(kit, PLAIN)
    peer.join("alpha")
    member = peer.session.member
    assert member is not None
    kit.room.drop_slow(member)
    assert peer.state() is SessionState.CLOSED and not peer.session.reading
    peer.session.end()
    assert _logged(kit)[1:] == [("leave", "alpha", "slow")]


def test_nothing_is_read_once_closed(kit: RoomKit) -> None:
    """After the close, frames, timeouts and gate answers are ignored: no frame, no action, no state change."""
    peer = Peer(kit, JSON)
    peer.session.start(b"", None)
    peer.session.timed_out()
    peer.got()
    assert peer.send_json({"type": "auth", "password": PASSWORD}) is None
    peer.session.password_checked(True)
    peer.session.receive_binary()
    assert peer.got() == [] and peer.state() is SessionState.CLOSED
    assert peer.close is not None and peer.close.code == 4002


@pytest.mark.parametrize("stage", ["password", "name"])
def test_an_unasked_gate_answer_admits_nobody(kit: RoomKit, stage: str) -> None:
    """``password_checked(True)`` when no check is pending changes nothing: only a checked password moves on."""
    peer = Peer(kit, JSON)
    if stage == "password":
        peer.session.start(b"", None)
    else:
        peer.authenticate()
    before = peer.state()
    peer.got()
    peer.session.password_checked(True)
    peer.session.password_checked(False)
    assert peer.state() is before and peer.got() == [] and peer.close is None


def test_refuse_full_closes_4005(kit: RoomKit) -> None:
    """A connection over ``--max-connections`` is told ``server_full`` and closed with 4005."""
    peer = Peer(kit, JSON)
    peer.session.refuse_full()
    assert [_error(frame)[0] for frame in peer.got()] == ["server_full"]
    assert peer.close is not None and peer.close.code == 4005


# --- shutdown ----------------------------------------------------------------------------------


def test_say_goodbye_at_shutdown_reaches_every_stage(kit: RoomKit) -> None:
    """At shutdown members get the room's goodbye, and connections still in the handshake get one too: 1001 for all."""
    message = "The tracker is shutting down. Bye."
    member = Peer(kit, JSON)
    member.join("alpha")
    plain_member = Peer(kit, PLAIN, wire=FakeWire())
    plain_member.join("beta")
    prompted = Peer(kit, PLAIN)
    prompted.session.start(b"", None)
    checking = Peer(kit, JSON)
    checking.session.start(b"", None)
    action = checking.password()
    naming = Peer(kit, JSON)
    naming.authenticate()
    peers = [member, plain_member, prompted, checking, naming]
    for peer in peers:
        peer.got()

    kit.shutdown("tracker stopped", lambda m: (m.dialect.bye("shutdown", message),))
    naming.name("gamma")  # a join that arrives while the tracker stops
    assert [_error(frame)[0] for frame in naming.got()] == ["shutting_down"]
    for peer in peers:
        peer.session.say_goodbye(1001, message)
    checking.gate(action)  # the gate answers late: too late

    assert member.got_json() == [Bye(reason="shutdown", message=message)]
    assert plain_member.got() == ["* The tracker is shutting down. Bye."]
    assert prompted.got() == ["* The tracker is shutting down. Bye."]
    assert checking.got_json() == [Bye(reason="shutdown", message=message)]
    assert naming.got_json() == [Bye(reason="shutdown", message=message)]
    for peer in peers:
        assert peer.close is not None and peer.close.code == 1001
        assert peer.state() is SessionState.CLOSED and not peer.session.reading
        peer.session.end()
    assert _logged(kit) == [
        ("join", "alpha", ""),
        ("join", "beta", ""),
        ("leave", "alpha", "shutdown"),
        ("leave", "beta", "shutdown"),
        ("stop", "-", "tracker stopped"),
    ]


# --- refused for now: guesses, joins, `who` -------------------------------------------------


def _paused(right: bool) -> Checked:
    """The gate's answer while the shared guessing budget is spent: refused, the real answer hidden."""
    return Checked(ok=False, wait=Wait(3.0, own=False), hidden=right)


@DIALECTS
def test_a_guess_refused_for_its_address_closes_4013_with_a_retry_time(kit: RoomKit, dialect: Dialect) -> None:
    """The gate refused the guess unchecked: error too_many_guesses (retry_after in JSON), close 4013."""
    peer = Peer(kit, dialect)
    peer.session.start(b"", None)
    peer.got()
    assert isinstance(peer.password(), CheckPassword)
    peer.session.password_checked(Checked(ok=False, wait=Wait(2.5, own=True)))
    frames = peer.got()
    assert peer.close is not None and peer.close.code == 4013 and peer.state() is SessionState.CLOSED
    if dialect is JSON:
        error = decode_server(frames[0])
        assert isinstance(error, Error) and error.code == "too_many_guesses" and error.retry_after == 3
    else:
        assert frames == ["! too many wrong passwords from your address; retry in 3 s"]


def test_paused_checks_let_only_a_resume_with_the_right_password_in(kit: RoomKit) -> None:
    """Checks paused for everyone: `authenticated` either way; a join is closed 4013, right password or not;
    a resume with a wrong password is closed 4013 the same way (the resume that gets in: test_throttle.py)."""
    for right, request in ((True, {"type": "join", "name": "newcomer"}), (False, {"type": "join", "name": "x"})):
        peer = Peer(kit, JSON)
        peer.session.start(b"", None)
        peer.got()
        peer.password()
        peer.session.password_checked(_paused(right))
        assert peer.got_json() == [Authenticated()] and peer.state() is SessionState.AWAIT_RESUME
        assert peer.send_json(request) is None
        assert _close_code(peer) == 4013
    wrong = Peer(kit, JSON)
    wrong.session.start(b"", None)
    wrong.password("nope")
    wrong.session.password_checked(_paused(False))
    assert wrong.send_json({"type": "resume", "token": "t", "epoch": "e", "after": 0}) is None
    assert _close_code(wrong) == 4013
    assert _logged(kit) == []  # nobody joined


def test_a_join_over_the_address_allowance_is_closed_4014(kit: RoomKit) -> None:
    """Joins spend the address's allowance: the one over it gets too_many_joins and close 4014."""
    entries = KeyedBuckets(rate=0.001, burst=1)
    first = Peer(kit, JSON)
    first.session.entries = entries
    first.join("first")
    second = Peer(kit, JSON)
    second.session.entries = entries
    second.authenticate()
    second.name("second")
    error = decode_server(second.got()[0])
    assert isinstance(error, Error) and error.code == "too_many_joins" and error.retry_after is not None
    assert second.close is not None and second.close.code == 4014


def test_who_is_answered_three_times_then_refused(kit: RoomKit) -> None:
    """`who` spends its own allowance: three answers at once, then rate_limited, the connection kept."""
    peer = Peer(kit, JSON)
    peer.join("asker")
    for _ in range(4):
        assert peer.send_json({"type": "who"}) is None
    answers = peer.got_json()
    assert [type(answer) for answer in answers] == [Members, Members, Members, Error]
    assert isinstance(answers[3], Error) and answers[3].code == "rate_limited"
    assert peer.state() is SessionState.CHATTING
