"""The dialogue of one connection as a sans-I/O state machine: frames in, frames and actions out.

Password, then name, then chat, then goodbye, for both dialects, with no awaits and
no socket: the adapter (``websocket.py``) feeds it what the peer sent (a text
frame, a binary frame, a timeout, a disconnect) and carries out what it asks for.
Frames for the peer go to the connection's outbox; the two things the session
cannot do itself are check a password (the gate answers at once: right, wrong or refused) and read
the journal's history for a resume, so it returns a ``CheckPassword`` or a
``Replay`` action and is told when it is done (``password_checked``, ``replayed``).

States (``SessionState``) and what moves them:

    AWAIT_PASSWORD --frame/header--> CHECKING_PASSWORD --ok--> AWAIT_NAME --joined--> CHATTING
                                                 AWAIT_NAME --resume--> REPLAYING --replayed--> CHATTING
    CHECKING_PASSWORD --checks paused for everyone--> AWAIT_RESUME --resume, right password--> REPLAYING
    any state --refusal, exit, leave, removal, disconnect--> CLOSED

Password checks paused for everyone (the shared guessing budget is spent, ``ratelimit``)
must not lock out members coming back: a JSON connection is then told ``authenticated``
whatever its password, and only a ``resume`` with a valid token *and* the right password
gets in; anything else is closed with 4013, the same way whether the password was right
or not, so the pause reveals nothing to a guesser. Joins and resumes spend the address's
entry allowance (``entries``): over it, 4014.

``deadline`` says how long the adapter may wait for the next frame in each state.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass

from chat_protocol import (
    PROTOCOL_VERSION,
    Auth,
    Authenticated,
    CloseCode,
    Hello,
    Join,
    Leave,
    Members,
    NameRefused,
    ProtocolError,
    Resume,
    Say,
    Who,
    decode_client,
    encode,
)
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.addresses import address_key
from chat_tracker.core.auth import Checked, password_from_authorization
from chat_tracker.core.dialects import NAME_PROMPT, PASSWORD_OK, PASSWORD_PROMPT, PLAIN, WRONG_PASSWORD, Dialect
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.ratelimit import KeyedBuckets, Wait
from chat_tracker.core.room import Member, Resuming, Room
from chat_tracker.errors import Kicked, Recover, Refused

log = logging.getLogger("chat_tracker")

# Close codes the WebSocket layer uses when the peer broke the rules: the member
# was removed for cause, the connection was not "lost".
_PROTOCOL_VIOLATIONS = frozenset((1002, 1003, 1007, 1009))
# 1005 is not here: uvicorn reports a TCP connection that ended without a close
# frame (killed client, reset, ping timeout) as 1005.
_NORMAL_CLOSES = frozenset((1000, 1001))


def leave_reason(code: int) -> LeaveReason:
    """chat.log's leave reason for a connection that closed with ``code``."""
    if code in _NORMAL_CLOSES or code in _PROTOCOL_VIOLATIONS:
        return LeaveReason.CLOSED
    return LeaveReason.LOST


class SessionState(enum.Enum):
    AWAIT_PASSWORD = "await_password"
    CHECKING_PASSWORD = "checking_password"
    AWAIT_NAME = "await_name"
    AWAIT_RESUME = "await_resume"  # checks are paused for everyone: only a resume may get in (see above)
    REPLAYING = "replaying"  # resumed: the adapter is replaying what it missed
    CHATTING = "chatting"
    CLOSED = "closed"  # nothing more is read; the goodbye (if any) is queued


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


class Session:
    """One connection's dialogue, joined or not."""

    def __init__(
        self,
        room: Room,
        dialect: Dialect,
        outbox: Outbox,
        address: str,
        timeouts: Timeouts,
        entries: KeyedBuckets | None = None,
    ) -> None:
        self.room = room
        self.dialect = dialect
        self.outbox = outbox
        self.address = address
        self.timeouts = timeouts
        self.entries = entries  # joins and resumes per address key; None: unlimited
        self._paused: tuple[bool, Wait] | None = None  # AWAIT_RESUME: the hidden answer, and the wait
        self.member: Member | None = None
        self._state = SessionState.AWAIT_PASSWORD
        self._after_password: tuple[str, ...] = ()

    # --- where it stands -------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        member = self.member
        resumed_elsewhere_or_left = member is not None and (member.left or member.outbox is not self.outbox)
        if self._state is SessionState.CHATTING and resumed_elsewhere_or_left:
            self._state = SessionState.CLOSED  # removed (flooding, too slow), left, or resumed elsewhere
        return self._state

    @property
    def reading(self) -> bool:
        """Whether the adapter should read another frame."""
        return self.state not in (SessionState.CLOSED, SessionState.CHECKING_PASSWORD, SessionState.REPLAYING)

    @property
    def deadline(self) -> float | None:
        """Seconds to wait for the next frame before ``timed_out``; None for no limit."""
        state = self.state
        if state is SessionState.AWAIT_PASSWORD or state is SessionState.AWAIT_RESUME:
            return self.timeouts.auth
        if state is SessionState.AWAIT_NAME:
            return self.timeouts.join
        return None

    # --- input -----------------------------------------------------------------------

    def start(self, query_string: bytes, authorization: str | None) -> CheckPassword | None:
        """The connection is accepted: prompt for the password, or check the one in the header."""
        if query_string:
            self._refuse("password_in_url", "never put the password in the URL", CloseCode.PASSWORD_IN_URL)
            return None
        if self.dialect is PLAIN:
            self.outbox.push(PASSWORD_PROMPT)
            return None
        if authorization is not None:
            self._after_password = (encode(Hello(PROTOCOL_VERSION, True)),)
            return self._check(password_from_authorization(authorization))
        self.outbox.push(encode(Hello(PROTOCOL_VERSION, False)))
        return None

    def refuse_full(self) -> None:
        """The tracker has no room for another connection."""
        self._refuse("server_full", "the tracker is full; try again later", CloseCode.TOO_MANY_CONNECTIONS)

    def refuse_banned(self, reason: str) -> None:
        """This address is banned by a moderator: refused before anything else."""
        because = f": {reason}" if reason else ""
        self._refuse("banned", f"your address is banned by a moderator{because}", CloseCode.BANNED)

    def refuse_busy_address(self) -> None:
        """This address already holds its share of connections that have not given the password."""
        message = "too many connections from your address are waiting to give the password; try again later"
        self._refuse("address_busy", message, CloseCode.ADDRESS_BUSY)

    def receive_text(self, frame: str) -> CheckPassword | Replay | None:
        """The peer sent a text frame."""
        member = self.member
        if self._state is SessionState.CHATTING and member is not None and not member.left:
            if member.outbox is not self.outbox:
                self._state = SessionState.CLOSED  # resumed on another connection: this one says nothing more
                return None
            if self.dialect is PLAIN:  # the hot path: one check, then the message
                self._chat_plain(member, frame)
            else:
                self._chat_json(member, frame)
            return None
        state = self.state
        if state is SessionState.AWAIT_PASSWORD:
            return self._receive_password(frame)
        if state is SessionState.AWAIT_NAME:
            return self._receive_name(frame)
        if state is SessionState.AWAIT_RESUME:
            return self._receive_resume_only(frame)
        if state is SessionState.CHATTING:
            assert self.member is not None
            if self.dialect is PLAIN:
                self._chat_plain(self.member, frame)
            else:
                self._chat_json(self.member, frame)
        return None

    def receive_binary(self) -> None:
        self._refuse("binary_not_accepted", "binary frames are not accepted", CloseCode.UNSUPPORTED_DATA)

    def timed_out(self) -> None:
        """No frame within ``deadline``."""
        what = "password" if self.state is SessionState.AWAIT_PASSWORD else "accepted name"
        seconds = self.deadline or 0.0
        self._refuse("handshake_timeout", f"no {what} within {seconds:g} s", CloseCode.HANDSHAKE_TIMEOUT)

    def password_checked(self, checked: Checked | bool) -> None:
        """The gate's answer to the last ``CheckPassword`` (the gate logs wrong ones, rate-limited)."""
        if self._state is not SessionState.CHECKING_PASSWORD:
            return
        if isinstance(checked, bool):
            checked = Checked(ok=checked)
        if checked.ok:
            self.outbox.push_texts(self._after_password)
            self._state = SessionState.AWAIT_NAME
        elif checked.wait is None:
            frame = WRONG_PASSWORD if self.dialect is PLAIN else self.dialect.error("bad_password", "wrong password")
            self._close(CloseCode.BAD_PASSWORD, "bad_password", (frame,))
        elif checked.hidden is None or self.dialect is PLAIN:
            self._too_many_guesses(checked.wait)
        else:
            self._paused = (checked.hidden, checked.wait)
            self.outbox.push_texts(self._after_password)
            self._state = SessionState.AWAIT_RESUME

    def replayed(self) -> None:
        """The adapter has replayed what the resumed member missed: it chats again."""
        if self._state is SessionState.REPLAYING:
            self._state = SessionState.CHATTING

    def disconnected(self, code: int) -> None:
        """The peer is gone (``code`` as the WebSocket layer reported it).

        A JSON member whose connection was lost (no close frame, a ping timeout) may
        come back: the room keeps it as away for the resume grace.
        """
        reason = leave_reason(code)
        self._connection_ended(reason, resumable=self.dialect is not PLAIN and reason is LeaveReason.LOST)
        self._state = SessionState.CLOSED

    def end(self) -> None:
        """The connection is over, however it ended: the member (if any) is out of the room."""
        self._connection_ended(LeaveReason.CLOSED, resumable=False)
        self._state = SessionState.CLOSED

    def say_goodbye(self, code: int, message: str, reason: str = LeaveReason.SHUTDOWN) -> None:
        """The tracker is shutting down (``reason`` ``shutdown``) or restarting (``restart``)."""
        self.outbox.close(code, reason, (self.dialect.bye(reason, message),))
        self._state = SessionState.CLOSED

    # --- stage 1: password -------------------------------------------------------------

    def _receive_password(self, frame: str) -> CheckPassword | None:
        if self.dialect is PLAIN:
            self._after_password = (PASSWORD_OK, NAME_PROMPT)
            return self._check(frame.rstrip("\r\n"))
        try:
            request = decode_client(frame)
        except ProtocolError as error:
            self._refuse(error.code, error.message, CloseCode.PROTOCOL_ERROR)
            return None
        if not isinstance(request, Auth):
            self._refuse("not_authenticated", "send 'auth' with the password first", CloseCode.PROTOCOL_ERROR)
            return None
        self._after_password = (encode(Authenticated()),)
        return self._check(request.password)

    def _check(self, candidate: str | None) -> CheckPassword:
        self._state = SessionState.CHECKING_PASSWORD
        return CheckPassword(candidate)

    def _too_many_guesses(self, wait: Wait) -> None:
        who = "your address" if wait.own else "many addresses; password checks are paused"
        message = f"too many wrong passwords from {who}; retry in {wait.retry_after} s"
        frame = self.dialect.error("too_many_guesses", message, retry_after=wait.retry_after)
        self._close(CloseCode.TOO_MANY_GUESSES, "too_many_guesses", (frame,))

    def _receive_resume_only(self, frame: str) -> Replay | None:
        """Checks are paused: a resume with the right password (and a valid token) gets in; nothing else does."""
        assert self._paused is not None
        right, wait = self._paused
        request = self._requested_name(frame)
        if not right or not isinstance(request, Resume):
            if self.state is SessionState.AWAIT_RESUME:
                self._too_many_guesses(wait)
            return None
        if self._entry_refused():
            return None
        self._state = SessionState.AWAIT_NAME
        replay = self._resume(request)
        if self._state is SessionState.AWAIT_NAME:  # refused (bad token, expired...): told as everyone else is
            self._too_many_guesses(wait)
        return replay

    def _entry_refused(self) -> bool:
        """Spend one of the address's joins and resumes; False if it has none left (and the session is closed)."""
        entries = self.entries
        if entries is None:
            return False
        key = address_key(self.address)
        if entries.take(key):
            return False
        seconds = max(1, math.ceil(entries.wait(key)))
        message = f"too many joins and resumes from your address; retry in {seconds} s"
        frame = self.dialect.error("too_many_joins", message, retry_after=seconds)
        self._close(CloseCode.TOO_MANY_JOINS, "too_many_joins", (frame,))
        return True

    # --- stage 2: name -----------------------------------------------------------------

    def _receive_name(self, frame: str) -> Replay | None:
        request = self._requested_name(frame)
        if isinstance(request, Resume):
            return None if self._entry_refused() else self._resume(request)
        if request is None or self._entry_refused():
            return None
        try:
            self.member = self.room.join(request, self.dialect, self.outbox, self.address)
        except (NameRefused, Refused) as refusal:
            self._name_refused(refusal.code, str(refusal))
            return None
        self._state = SessionState.CHATTING
        return None

    def _resume(self, request: Resume) -> Replay | None:
        try:
            resuming = self.room.resume(request.token, request.epoch, request.after, self.outbox, self.address)
        except Recover as recover:
            self._join_again(recover)
            return None
        except Refused as refusal:
            log.info("Resume refused from %s: %s", self.address, refusal.message)
            self._error(refusal.code, refusal.message)  # the connection stays open: join instead
            return None
        self.member = resuming.member
        self._state = SessionState.REPLAYING
        return Replay(resuming)

    def _join_again(self, recover: Recover) -> None:
        """Back from a room the journal lost: joined afresh under its name, answered ``resumed`` (recovered: false)."""
        try:
            self.member = self.room.join(recover.name, self.dialect, self.outbox, self.address, recover.after)
        except (NameRefused, Refused) as refusal:
            self._name_refused(refusal.code, str(refusal))
            return
        log.info("%s came back from a lost epoch (after seq %d): joined again", recover.name, recover.after)
        self._state = SessionState.CHATTING

    def _requested_name(self, frame: str) -> str | Resume | None:
        if self.dialect is PLAIN:
            name = frame.rstrip("\r\n")
            if name == "exit":
                self._close(CloseCode.NORMAL, "left", ("Bye.",))
                return None
            return name
        try:
            request = decode_client(frame)
        except ProtocolError as error:
            self._error(error.code, error.message)
            return None
        if isinstance(request, Join):
            return request.name
        if isinstance(request, Resume):
            return request
        if isinstance(request, Auth):
            self._error("already_authenticated", "already authenticated; send 'join'")
        else:
            self._error("not_joined", "join the room first")
        return None

    def _name_refused(self, code: str, reason: str) -> None:
        if self.dialect is PLAIN:
            self.outbox.push_texts([f"Name refused: {reason}", NAME_PROMPT])
        else:
            self._error(code, reason)

    # --- stage 3: chat -----------------------------------------------------------------

    def _chat_plain(self, member: Member, frame: str) -> None:
        text = frame.rstrip("\r\n")
        if text == "exit":
            self._leave(member)
        else:
            self._say(member, text)

    def _chat_json(self, member: Member, frame: str) -> None:
        try:
            request = decode_client(frame)
        except ProtocolError as error:
            self._error(error.code, error.message)
            return
        if isinstance(request, Say):
            self._say(member, request.text, request.id)
        elif isinstance(request, Who):
            self._who(member)
        elif isinstance(request, Leave):
            self._leave(member)
        elif isinstance(request, (Join, Resume)):
            self._error("already_joined", f"already joined as {member.name}")
        else:
            self._error("already_authenticated", "already authenticated")

    def _say(self, member: Member, text: str, msg_id: str | None = None) -> None:
        try:
            self.room.say(member, text, msg_id)
        except Kicked:
            log.warning("%s removed for flooding", member.name)
        except Refused as refusal:
            self.outbox.push(self.dialect.error(refusal.code, refusal.message, msg_id))

    def _who(self, member: Member) -> None:
        """Answer ``who``, within the member's allowance for it: one answer can be a megabyte."""
        if member.allowance.who.take():
            self.outbox.push(encode(Members(self.room.who())))
        else:
            refusal = self.room.policy.who_refusal()
            self.outbox.push(self.dialect.error(refusal.code, refusal.message))

    def _leave(self, member: Member) -> None:
        goodbye = self.dialect.bye("left", f"Bye, {member.name}.")
        self.room.leave(member, LeaveReason.EXIT, close=(CloseCode.NORMAL, "left", (goodbye,)))

    def _connection_ended(self, reason: LeaveReason, resumable: bool) -> None:
        if self.member is not None:  # a no-op if it already left, went away, or resumed elsewhere
            self.room.connection_lost(self.member, self.outbox, reason, resumable)

    # --- output ------------------------------------------------------------------------

    def _error(self, code: str, message: str) -> None:
        self.outbox.push(self.dialect.error(code, message))

    def _refuse(self, code: str, message: str, close_code: int) -> None:
        """Send an error, then close with ``close_code``."""
        self._close(close_code, code, (self.dialect.error(code, message),))

    def _close(self, code: int, reason: str, final: tuple[str, ...]) -> None:
        self.outbox.close(code, reason, final)
        self._state = SessionState.CLOSED
