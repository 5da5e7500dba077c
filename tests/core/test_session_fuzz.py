"""Fuzzing the dialogue state machine: any sequence of inputs, on several connections to one room, keeps its promises.

Hypothesis generates whole conversations. Each example opens connections (JSON and plain
text, with and without an Authorization header, sometimes with a password in the URL)
and feeds them, interleaved: protocol frames (``auth`` with the right or a wrong
password, ``join`` with names and their lookalikes, ``message``, ``who``, ``leave``),
plain lines (passwords, names, ``exit``, text), junk (random text, huge text, invalid
JSON, lone surrogates), binary frames, timeouts and disconnects with any close code.
The harness plays the WebSocket adapter (it feeds a session only when the adapter
would: while it reads, a timeout only when there is a deadline, ``end`` once it
stops) and the password gate (it answers each ``CheckPassword`` by comparing with the
real password, possibly after other connections' inputs). In between, the journal is
committed, peers read their frames, time passes, chat.log's disk fills up and
recovers, and some examples shut the tracker down.

After every input:

- nobody is past the password (name prompt, chatting, or a member) unless the harness
  checked the right password for that very connection, and no frame that admits (a
  ``hello`` authenticated, ``authenticated``, ``welcome``, the plain password OK) ever
  reaches a connection that was not;
- a password check is only asked for with exactly what the peer sent;
- no two members in the room share a name key (``chat_protocol.name_key``), and the
  room's members are exactly the sessions' members still in;
- every message the room accepted (a ``say`` that neither raised nor came from a
  member already out) is in chat.log exactly once, in order, and nothing else is;
  chat.log's seqs are 1..N;
- every frame can be sent (UTF-8), JSON frames decode, plain frames hold no control
  character, and every close code is one the protocol documents;
- nothing raises out of the session.

At the end, every event a JSON peer received is the chat.log line with its seq, every
join has exactly one leave, and the number of inputs fed is checked (and printed).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_protocol import (
    Authenticated,
    ChatMessage,
    CloseCode,
    Hello,
    Joined,
    Left,
    Limits,
    Say,
    Welcome,
    decode_server,
    encode,
    name_key,
)
from chat_tracker.core.dialects import JSON, PASSWORD_OK, PLAIN, Dialect
from chat_tracker.core.outbox import CloseRequest, Outbox
from chat_tracker.core.room import Member, Room
from chat_tracker.core.room.member import Goodbye
from chat_tracker.core.session import Action, CheckPassword, Errand, Session, SessionState, Timeouts
from chat_tracker.errors import LogWriteError
from chat_tracker.records import LogEntry
from support.badinput import BadInputs
from support.campaign import FULL
from support.fakes import FakeWire, drain
from support.roomkit import RoomKit
from support.timing import UNIT

PASSWORD = "alphonso"
TIMEOUTS = Timeouts(auth=30.0, join=300.0)
MAX_OPEN = 6  # connections open at once in one example

# The CI form: EXAMPLES conversations of STEPS_MIN..STEPS_MAX steps, most of them inputs to a session
# (about 39 inputs a conversation, 300 in about 5 s). The full form (RELIABILITY_FULL=1) runs ten
# times as many, about 40 s: the bulk of the campaign's 100,000 bad inputs.
EXAMPLES = 3000 if FULL else 300
STEPS_MIN, STEPS_MAX = 50, 90
MIN_INPUTS = 100_000 if FULL else 10_000

# --- what peers send ----------------------------------------------------------------------------
#
# Most steps are ``(kind, n)``: ``n`` picks the target connection and what it sends from the
# pools below (cheap to generate, and shrinks to the first entries); a ``("random", n, text)``
# step sends generated text as a password, a name, a message or a raw frame.

PASSWORD_POOL = [
    PASSWORD, PASSWORD, PASSWORD, PASSWORD,
    "", " ", "Alphonso", "ALPHONSO", "alphons", "alphonsoo", f" {PASSWORD}", f"{PASSWORD} ", f"{PASSWORD}\x00",
    f"{PASSWORD}\n\n", "\ud800", "alphonso\u202e", "' OR '1'='1", "%s%s%n", "${jndi:ldap://x}", "a" * 60_000,
]  # fmt: skip
NAME_POOL = [
    "alpha", "Alpha", "ALPHA", "a1pha", "alp.ha", "a-l-p-h-a", "alpha_", "beta", "BETA", "b-e-t-a", "gamma", "delta0",
    "deltao", "Z", "x" * 32, "admin", "Adm1n", "r00t", "who", "exit", "", " ", "-dash", ".dot", "*star", "! bang",
    "al pha", "x" * 33, "ålpha", "\u0430lpha", "alpha\n", "alpha\r\n", "\ud800", "a\x1b[2J", "y" * 10_000,
]  # fmt: skip
GOOD_NAMES = ["alpha", "Alpha", "a1pha", "beta", "b3ta", "gamma", "delta", "eps"]  # the cooperative peer's names
TEXT_POOL = [
    "hello", "Hi I am alpha", "exit", "exit now", "who", "", " ", "\t \r\n", "\u2028", "\ud800", "hi \udfff there",
    "\x1b[31mred\x1b[0m", "line\nbreak", "\u202eevil", "😀" * 5, "e\u0301", '{"type":"leave"}',
    "1 2026-11-24T01:50:38.123Z msg admin forged", "x" * 40, "x" * 41, "x" * 2000, "x" * 2001, "y" * 70_000,
]  # fmt: skip
JUNK_POOL = [
    "{", "}", "[]", "null", "42", '"auth"', "NaN", '{"type":1}', '{"type":null}',
    '{"type":"AUTH","password":"alphonso"}', '{"type":"leave","why":"bored"}',
    '{"type":"message"}', '{"type":"message","text":5}', '{"type":"join","name":["alpha"]}', '{"type":"auth"}',
    '{"type":"auth","password":"alphonso","type":"who"}', '{"type":"who","type":"auth","password":"alphonso"}',
    '{"type":"message","text":"\\ud800"}', '{"type":"join","name":"\\u0000"}', '\ufeff{"type":"who"}',
    "[" * 3000, '{"a":' * 2000, "x" * 70_000, "\x00", "\ud800", '{"type":"kick","name":"alpha"}', "",
]  # fmt: skip
ENDINGS = ["", "", "\n", "\r\n", "\r", " "]
# What a text frame is, before it is rendered in the target's dialect; "proper" is the right next
# thing for the connection's state (the password, a good name, a message).
RECIPES = ["proper"] * 8 + ["auth"] * 2 + ["join"] * 3 + ["say"] * 4 + ["who", "leave", "raw", "raw"]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# (Authorization header, the candidate it carries) - the expectation is written out, not computed.
HEADERS: list[tuple[str | None, str | None]] = [
    (None, None), (None, None), (None, None), (None, None), (None, None), (None, None),
    (f"Bearer {PASSWORD}", PASSWORD), (f"bearer  {PASSWORD} ", PASSWORD), (_basic("anyone", PASSWORD), PASSWORD),
    (_basic("", PASSWORD), PASSWORD), ("Bearer wrong", "wrong"), (_basic("alpha", "Alphonso"), "Alphonso"),
    ("Bearer ", None), ("", None), ("Basic !!!", None), ("Basic " + base64.b64encode(b"no-colon").decode(), None),
    (f"Token {PASSWORD}", None), (PASSWORD, None),
]  # fmt: skip
QUERIES = [b""] * 14 + [b"password=alphonso", b"x"]
OUTBOX_LIMITS = [1024, 1024, 32, 6]
WIRINGS = ["asgi", "asgi", "wire-ready", "wire-busy"]
CLOSE_CODES = [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1009, 1011, 1012, 4000, 4999, 0, 65535]
TICKS = [0.05, 0.5, 2.0, 30.0]

KINDS = ["text"] * 20 + ["commit"] * 5 + ["drain"] * 4 + ["open"] * 2 + ["tick"] * 2
KINDS += ["disk", "answer", "binary", "timeout", "disconnect"]

ANY_CHAR = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates
    st.sampled_from('\n\r\t\x00\x1b\x7f\x85\u2028\u202e\ufeff{}[]":\\ '),
)
N = st.integers(0, 2**30)


def _cheap_step() -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(st.sampled_from(KINDS), N)


STEPS = st.one_of(*[_cheap_step() for _ in range(7)], st.tuples(st.just("random"), N, st.text(ANY_CHAR, max_size=24)))
LIMITS = st.sampled_from([Limits(), Limits(max_message_chars=40, rate_per_second=2, rate_burst=3)])


def pick(pool: list[Any], n: int) -> tuple[Any, int]:
    """An entry of ``pool`` chosen by ``n``, and what is left of ``n`` for the next choice."""
    n, index = divmod(n, len(pool))
    return pool[index], n


# --- oracles ------------------------------------------------------------------------------------------

NO_CHECK = object()  # the frame must not lead to a password check
_UNSAFE_FOR_TERMINAL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_DOCUMENTED_CLOSES = frozenset(int(code) for code in CloseCode)
_SEQ_EVENTS = (Welcome, Joined, ChatMessage, Left)


def expected_candidate(dialect: Dialect, frame: str) -> object:
    """What a password frame carries, worked out independently of the session: the candidate, or NO_CHECK."""
    if dialect is PLAIN:
        return frame.rstrip("\r\n")
    try:
        body = json.loads(frame)
    except (ValueError, RecursionError):
        return NO_CHECK
    if isinstance(body, dict) and body.get("type") == "auth" and isinstance(body.get("password"), str):
        return body["password"]
    return NO_CHECK


def expected_message(dialect: Dialect, frame: str) -> str | None:
    """The chat message a frame sent while chatting asks for, worked out independently; None for none."""
    if dialect is PLAIN:
        text = frame.rstrip("\r\n")
        if text.startswith("//"):
            return text[1:]  # a literal slash
        return None if text == "exit" or text.startswith("/") else text  # a line starting with / is a command
    try:
        body = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or body.get("type") != "message" or not isinstance(body.get("text"), str):
        return None
    if body.get("to") is not None or str(body.get("room") or "#general").lower().lstrip("#") != "general":
        return None  # a direct message, or one to another room (or to a room that is no room's name)
    return str(body["text"])


def asks_to_leave(dialect: Dialect, frame: str) -> bool:
    """Whether a frame sent while chatting is ``exit`` (plain) or ``leave`` (JSON)."""
    if dialect is PLAIN:
        return frame.rstrip("\r\n") == "exit"
    try:
        body = json.loads(frame)
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and body.get("type") == "leave"


def sendable(text: str, limits: Limits) -> bool:
    """Whether the documented text rules let ``text`` through (the rate limit aside)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False  # a lone surrogate: invalid_text
    return bool(text.strip()) and len(text) <= limits.max_message_chars


def admits(dialect: Dialect, frame: str) -> bool:
    """Whether ``frame`` tells its peer it got past the password."""
    if dialect is PLAIN:
        return frame == PASSWORD_OK or frame.startswith("Hi ")
    message = decode_server(frame)
    return isinstance(message, (Authenticated, Welcome)) or (isinstance(message, Hello) and message.authenticated)


# --- what is counted ------------------------------------------------------------------------------
#
# The violations the bad-input figures count have exceptions of their own, so that the
# conversation that raised one is counted under its figure (every other failed invariant is a
# "violation"; anything else raised out of a session is a crash), before Hypothesis sees it.


class Admitted(AssertionError):
    """A connection got past the password without the harness having checked the right one for it."""


class Forged(AssertionError):
    """chat.log holds a message line no accepted ``say`` explains."""


class ServerError(AssertionError):
    """A session closed its connection with 1011 (internal error), which only a tracker bug sends."""


INTERNAL_ERROR = int(CloseCode.INTERNAL_ERROR)
FOUND: Counter[str] = Counter()  # this run's counts: checks run, and conversations that broke each promise


def unexplained(said: list[tuple[str, str]], accepted: list[tuple[str, str]]) -> int:
    """How many of the logged messages ``said`` no accepted message explains (each explains one)."""
    return sum((Counter(said) - Counter(accepted)).values())


# --- the harness ----------------------------------------------------------------------------------------


@dataclass(eq=False)
class Conn:
    """One connection as the adapter sees it."""

    session: Session
    outbox: Outbox
    dialect: Dialect
    verified: bool = False  # the harness answered a check of the right password for this connection
    pending: CheckPassword | None = None  # a password check the gate has not answered yet
    ended: bool = False  # the adapter has called ``end``
    frames: list[str] = field(default_factory=list)
    close: CloseRequest | None = None
    last_seq: int = 0  # the seq of the last logged event a JSON peer received


class SpiedRoom(Room):
    """The room, noting what it accepted and whom it took out (the room keeps no such list itself)."""

    conversation: Conversation

    def say(self, member: Member, text: str, msg_id: str | None = None) -> None:
        already_out = member.left
        super().say(member, text, msg_id)  # Refused and Kicked go back to the session, which must handle them
        if not already_out:
            self.conversation.accepted.append((member.name, text))

    def leave(self, member: Member, reason: str, close: Goodbye | None = None) -> None:
        if not member.left and not self.conversation.shut:
            self.conversation.left.append((member.name, reason))
        super().leave(member, reason, close)


class Conversation:
    """One example: a room on a real chat.log, several connections, and what the harness expects."""

    def __init__(self, data_dir: Path, limits: Limits, flood_tolerance: int) -> None:
        self.kit = RoomKit.create(
            data_dir, limits, flood_tolerance=flood_tolerance, history_size=8, room_class=SpiedRoom
        )
        self.limits = limits
        self.room = self.kit.room
        assert isinstance(self.room, SpiedRoom)
        self.room.conversation = self
        self.conns: list[Conn] = []
        self.accepted: list[tuple[str, str]] = []  # (name, text) of every message the room accepted, in order
        self.left: list[tuple[str, str]] = []  # (name, reason) of every member taken out, in order, before shutdown
        self.disk_full = False
        self.shut = False
        self.inputs = 0  # inputs fed to sessions
        write = self.kit.log.append

        def append(data: bytes) -> None:
            if self.disk_full:
                raise LogWriteError(28, "No space left on device")
            write(data)

        self.kit.log.append = append  # type: ignore[method-assign]

    def close(self) -> None:
        self.kit.log.close()

    # --- steps ---------------------------------------------------------------------------------------

    def step(self, step: tuple[Any, ...]) -> None:
        kind, n = step[0], step[1]
        if kind == "commit":
            self.kit.flush()
            self.check_log()
        elif kind == "tick":
            seconds, _ = pick(TICKS, n)
            self.kit.mono.advance(seconds)
            self.kit.wall.advance(seconds)
        elif kind == "disk":
            self.disk_full = n % 3 == 0  # chat.log's disk fills up, or has room again
        elif kind == "open":
            self.open(n)
        else:
            alive = [conn for conn in self.conns if not conn.ended]
            if not alive:
                self.open(n)
            else:
                target, n = pick(alive, n)
                if kind == "drain":
                    self.drain(target)
                else:
                    self.feed(target, kind, n, step[2] if kind == "random" else None)
        self.check()

    def open(self, n: int) -> None:
        """A new connection, its kind chosen by ``n``."""
        if self.shut or sum(not conn.ended for conn in self.conns) >= MAX_OPEN:
            return
        dialect, n = pick([JSON, PLAIN], n)
        query, n = pick(QUERIES, n)
        (authorization, candidate), n = pick(HEADERS, n)
        limit, n = pick(OUTBOX_LIMITS, n)
        wiring, n = pick(WIRINGS, n)
        wire = None if wiring == "asgi" else FakeWire(ready=wiring == "wire-ready")
        outbox = Outbox(limit, wire=wire)
        conn = Conn(Session(self.room, dialect, outbox, f"127.0.0.{len(self.conns) + 1}", TIMEOUTS), outbox, dialect)
        outbox.on_overflow = lambda: self.overflowed(conn)
        self.conns.append(conn)
        action = conn.session.start(query, authorization)
        self.inputs += 1
        if query or dialect is PLAIN or authorization is None:
            assert action is None
        else:
            assert action == CheckPassword(candidate)
        self.after_input(conn, action)

    def overflowed(self, conn: Conn) -> None:
        """What the adapter does when a peer falls too far behind."""
        member = conn.session.member
        if member is not None:
            self.room.drop_slow(member)

    def feed(self, conn: Conn, kind: str, n: int, text: str | None) -> None:
        session = conn.session
        if conn.pending is not None:  # the adapter is waiting for the gate: the gate answers now
            self.answer(conn)
            return
        state = session.state
        action: Action | Errand | None = None
        if kind in ("text", "random"):
            frame = self.render(conn, n, text)
            accepted, refused = len(self.accepted), self.room.stats.refused_messages
            writable = self.kit.journal.writable
            action = session.receive_text(frame)
            new = self.accepted[accepted:]
            if state is SessionState.CHATTING and asks_to_leave(conn.dialect, frame):
                assert session.member is not None and session.member.left
                assert self.shut or self.left[-1] == (session.member.name, "exit")
            message = expected_message(conn.dialect, frame) if state is SessionState.CHATTING else None
            if message is None:
                assert new == [], new  # only a message, from a member, makes a message
            else:
                assert session.member is not None
                if sendable(message, self.limits) and writable:
                    # accepted exactly once, or refused for the rate (rate_limited, or removed for flooding)
                    assert new == [(session.member.name, message)] or (
                        new == [] and self.room.stats.refused_messages == refused + 1
                    ), new
                else:
                    assert new == [], new
            if state is SessionState.AWAIT_PASSWORD:
                expected = expected_candidate(conn.dialect, frame)
                if expected is NO_CHECK:
                    assert action is None and session.state is SessionState.CLOSED
                else:
                    assert action == CheckPassword(expected)  # type: ignore[arg-type]
            else:
                assert action is None
        elif kind == "binary":
            session.receive_binary()
            assert session.state is SessionState.CLOSED
        elif kind == "timeout":
            if session.deadline is None:
                return  # the adapter sets no timer without a deadline
            session.timed_out()
            assert session.state is SessionState.CLOSED
        elif kind == "disconnect":
            code = pick(CLOSE_CODES, n)[0]
            member = session.member if state is SessionState.CHATTING else None
            session.disconnected(code)
            assert session.state is SessionState.CLOSED
            if member is not None and not self.shut:
                reason = "closed" if code in (1000, 1001, 1002, 1003, 1007, 1009) else "lost"  # as documented
                assert member.left and self.left[-1] == (member.name, reason), (code, self.left[-1:])
        else:  # "answer": a gate answer nobody asked for, which must change nothing
            before = session.state
            session.password_checked(n % 2 == 0)
            assert session.state is before
        self.inputs += 1
        self.after_input(conn, action)

    def after_input(self, conn: Conn, action: Action | Errand | None) -> None:
        if action is not None:
            # No frame this fuzzer sends is a resume (that needs a token): every action is a password check.
            assert isinstance(action, CheckPassword)
            assert conn.session.state is SessionState.CHECKING_PASSWORD and not conn.session.reading
            conn.pending = action
        elif conn.session.state is SessionState.CLOSED:
            conn.session.end()  # the adapter stops reading and ends the session
            conn.ended = True

    def answer(self, conn: Conn) -> None:
        """The gate's answer to ``conn``'s pending check."""
        assert conn.pending is not None
        ok = conn.pending.candidate == PASSWORD
        if ok and conn.session.state is SessionState.CHECKING_PASSWORD:
            conn.verified = True
        conn.pending = None
        conn.session.password_checked(ok)
        self.inputs += 1
        self.after_input(conn, None)

    def render(self, conn: Conn, n: int, text: str | None) -> str:
        """The text frame ``n`` (or the generated ``text``) stands for, in ``conn``'s dialect."""
        recipe, n = pick(RECIPES, n)
        ending, n = pick(ENDINGS, n)
        if recipe == "proper":
            state = conn.session.state
            if state is SessionState.AWAIT_PASSWORD:
                recipe, payload, ending = "auth", PASSWORD, "\n"
            elif state is SessionState.AWAIT_NAME:
                recipe, payload = "join", pick(GOOD_NAMES, n)[0]
            else:
                recipe, payload, ending = "say", f"message {n % 1000}", "\r\n"
        else:
            pool = {"auth": PASSWORD_POOL, "join": NAME_POOL, "say": TEXT_POOL}.get(recipe, JUNK_POOL)
            payload = pick(pool, n)[0] if text is None else text
        plain = conn.dialect is PLAIN
        if recipe == "auth":
            return payload + ending if plain else json.dumps({"type": "auth", "password": payload})
        if recipe == "join":
            return payload + ending if plain else json.dumps({"type": "join", "name": payload})
        if recipe == "say":
            return payload + ending if plain else encode(Say(payload))
        if recipe == "who":
            return "who" if plain else '{"type":"who"}'
        if recipe == "leave":
            return "exit" + ending if plain else '{"type":"leave"}'
        return str(payload)

    def drain(self, conn: Conn) -> None:
        """The peer reads what was sent to it; a JSON peer's events must already be chat.log's lines."""
        frames, close = drain(conn.outbox)
        logged: dict[int, LogEntry] | None = None
        for frame in frames:
            frame.encode("utf-8")  # raises on a lone surrogate: a frame the socket could not send
            if conn.dialect is PLAIN:
                assert _UNSAFE_FOR_TERMINAL.search(frame) is None, frame
            FOUND["checks"] += 1
            if admits(conn.dialect, frame) and not conn.verified:
                raise Admitted(f"admitted without the password: {frame!r}")
            if conn.dialect is not JSON:
                continue
            message = decode_server(frame)
            if not isinstance(message, _SEQ_EVENTS):
                continue
            if logged is None:
                logged = {entry.seq: entry for entry in self.kit.entries()}
            entry = logged.get(message.seq)
            assert entry is not None, f"delivered before it was logged: {message}"
            assert (entry.ts, entry.name) == (message.ts, message.name), (entry, message)
            if isinstance(message, ChatMessage):
                assert (entry.kind, entry.text) == ("msg", message.text)
            elif isinstance(message, Left):
                assert (entry.kind, entry.text) == ("leave", message.reason)
            else:
                assert entry.kind == "join"
            assert message.seq > conn.last_seq, (message, conn.last_seq)  # in chat.log's order, none twice
            conn.last_seq = message.seq
        conn.frames.extend(frames)
        if close is not None:
            if int(close.code) == INTERNAL_ERROR:
                raise ServerError(f"closed with 1011: {close}")
            assert int(close.code) in _DOCUMENTED_CLOSES, close
            conn.close = close

    def shutdown(self) -> None:
        """The tracker's shutdown: deliver what is pending, log the leaves and the stop, say goodbye to everyone."""
        self.kit.flush()
        self.room.shutdown(
            "tracker stopped", bye=lambda m: (m.dialect.bye("shutdown", "The tracker is shutting down. Bye."),)
        )
        self.kit.flush()
        self.shut = True
        for conn in self.conns:
            if not conn.ended:
                conn.session.say_goodbye(1001, "The tracker is shutting down. Bye.")
                self.inputs += 1
                assert conn.session.state is SessionState.CLOSED
                if conn.pending is None:
                    self.after_input(conn, None)
        self.check()

    # --- invariants ------------------------------------------------------------------------------------

    def check(self) -> None:
        FOUND["checks"] += 1
        in_room: list[Member] = []
        for conn in self.conns:
            if conn.ended:
                assert conn.session.state is SessionState.CLOSED and conn.pending is None
                continue
            session = conn.session
            state = session.state
            past_the_password = state in (SessionState.AWAIT_NAME, SessionState.CHATTING) or session.member is not None
            if past_the_password and not conn.verified:
                raise Admitted(f"{state} without the password checked")
            if state is SessionState.CHECKING_PASSWORD:
                assert conn.pending is not None  # it waits only for a check it asked for
            if conn.pending is not None:  # closed while waiting only by the goodbye at shutdown
                assert state is SessionState.CHECKING_PASSWORD or (state is SessionState.CLOSED and self.shut)
            assert session.reading == (state not in (SessionState.CLOSED, SessionState.CHECKING_PASSWORD))
            expected_deadline = {SessionState.AWAIT_PASSWORD: TIMEOUTS.auth, SessionState.AWAIT_NAME: TIMEOUTS.join}
            assert session.deadline == expected_deadline.get(state)
            if state is SessionState.CHATTING:
                assert session.member is not None and not session.member.left
            if session.member is not None and not session.member.left:
                in_room.append(session.member)
        names = self.room.names()
        keys = [name_key(name) for name in names]
        assert len(keys) == len(set(keys)), names
        assert sorted(names) == sorted(member.name for member in in_room)
        assert self.room.stats.messages == len(self.accepted)

    def check_log(self) -> list[LogEntry]:
        entries = self.kit.entries()
        assert [entry.seq for entry in entries] == list(range(1, len(entries) + 1))
        FOUND["checks"] += 1
        said = [(entry.name, entry.text) for entry in entries if entry.kind == "msg"]
        if unexplained(said, self.accepted):
            raise Forged(f"{unexplained(said, self.accepted)} logged messages were never accepted")
        if self.disk_full:
            assert said == self.accepted[: len(said)]
        else:
            assert said == self.accepted
        return entries

    def finish(self) -> None:
        """Every connection ends; chat.log gets everything; then the whole record is checked."""
        self.disk_full = False
        for conn in self.conns:
            if conn.pending is not None:
                self.answer(conn)
            if not conn.ended:
                conn.session.end()
                conn.ended = True
        while True:
            before = self.kit.journal.last_seq
            self.kit.flush()  # a slow drop during delivery logs a leave: flush until nothing is left
            if self.kit.journal.last_seq == before:
                break
        self.check()
        entries = self.check_log()
        assert self.room.names() == [] and self.room.member_count == 0
        online: dict[str, str] = {}
        for entry in entries:
            if entry.kind == "join":
                assert name_key(entry.name) not in online, entry
                online[name_key(entry.name)] = entry.name
            elif entry.kind == "leave":
                assert online.pop(name_key(entry.name)) == entry.name, entry
        assert online == {}, "a join without its leave"
        leaves = [(entry.name, entry.text) for entry in entries if entry.kind == "leave"]
        assert leaves[: len(self.left)] == self.left  # every leave logged once, with the reason it was asked for
        if self.shut:  # then the members still in, all with reason shutdown, and the stop line last
            assert {reason for _, reason in leaves[len(self.left) :]} <= {"shutdown"}
            assert entries[-1].kind == "stop"
        else:
            assert len(leaves) == len(self.left)
        for conn in self.conns:
            self.drain(conn)


# --- the test ---------------------------------------------------------------------------------------------

FED: list[int] = []  # inputs fed per example, in this run


def _count_violation(error: BaseException) -> None:
    """Count the conversation that raised ``error`` under the promise it broke."""
    kinds = {Admitted: "admitted", Forged: "forged_lines", ServerError: "server_errors", AssertionError: "violations"}
    FOUND[next((name for kind, name in kinds.items() if isinstance(error, kind)), "crashes")] += 1


# Derandomized, without an example database: the same conversations every run, so the figures
# recorded (inputs fed, checks run) are the same every run and docs/reliability.md can print them,
# compared exactly; a failure replays as it is. deadline=None: a conversation's time varies with the
# machine, and a timing failure is no finding here.
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(
    steps=st.lists(STEPS, min_size=STEPS_MIN, max_size=STEPS_MAX),
    limits=LIMITS,
    flood_tolerance=st.sampled_from([1, 3, 20]),
    shutdown_at=st.none() | st.integers(0, STEPS_MAX),  # the tracker stops before that step, if it comes
)
def fuzz_conversation(
    steps: list[tuple[Any, ...]], limits: Limits, flood_tolerance: int, shutdown_at: int | None
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="session-fuzz-"))
    conversation = Conversation(data_dir, limits, flood_tolerance)
    try:
        for index, step in enumerate(steps):
            if index == shutdown_at:
                conversation.shutdown()
            conversation.step(step)
        conversation.finish()
    except Exception as error:
        _count_violation(error)
        raise
    finally:
        FED.append(conversation.inputs)
        conversation.close()
        shutil.rmtree(data_dir, ignore_errors=True)


run_fuzz: Callable[[], None] = fuzz_conversation


@pytest.mark.timeout((60 if FULL else 24) * UNIT)  # the full form: about 40 s alone, more on a busy machine
def test_any_sequence_of_inputs_keeps_the_session_invariants() -> None:
    """At least 10,000 generated inputs over many conversations (100,000 in the full form), every invariant checked
    after each one; recorded as the session_fuzz row of the bad-input figures."""
    FED.clear()
    FOUND.clear()
    with BadInputs("session_fuzz") as tally:
        try:
            run_fuzz()
        finally:
            tally.sent(sum(FED))
            tally.crashes, tally.server_errors = FOUND["crashes"], FOUND["server_errors"]
            tally.forged_lines, tally.admitted = FOUND["forged_lines"], FOUND["admitted"]
            tally.extra.update(conversations=len(FED), checks=FOUND["checks"], violations=FOUND["violations"])
    print(f"session fuzz: {sum(FED)} inputs fed in {len(FED)} conversations, {FOUND['checks']} checks")
    assert FOUND["violations"] == 0
    assert sum(FED) >= MIN_INPUTS, f"only {sum(FED)} inputs were fed; raise EXAMPLES"
