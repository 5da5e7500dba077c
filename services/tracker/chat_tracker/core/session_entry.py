"""The way in for one connection: the password, then a name or a resume.

The entering stages of ``session.Session``: each method takes what the peer sent (or
the gate's answer), answers on the connection's outbox, and says what came of it: the
state the session goes to, a ``CheckPassword`` or a ``Replay`` to carry out, or a
member ``Joined``. Which of those a state may lead to is ``session_states.TRANSITIONS``'
business; the session looks it up.

Password checks paused for everyone (the shared guessing budget is spent, ``ratelimit``)
must not lock out members coming back: a JSON connection is then told ``authenticated``
whatever its password, and only a ``resume`` with a valid token *and* the right password
gets in; anything else is closed with 4013, the same way whether the password was right
or not, so the pause reveals nothing to a guesser. Joins and resumes spend the address's
entry allowance (``entries``): over it, 4014.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from chat_protocol import (
    PASSPHRASE_PROMPT,
    PROTOCOL_VERSION,
    Auth,
    Authenticated,
    CloseCode,
    Hello,
    Join,
    NameRefused,
    ProtocolError,
    Resume,
    decode_client,
    encode,
)
from chat_tracker.core.addresses import address_key
from chat_tracker.core.auth import Checked, password_from_authorization
from chat_tracker.core.dialects import NAME_PROMPT, PASSWORD_OK, PASSWORD_PROMPT, PLAIN, WRONG_PASSWORD, Dialect
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.ratelimit import KeyedBuckets, Wait
from chat_tracker.core.room import Member, Room
from chat_tracker.core.session_states import CheckPassword, Replay, SessionState
from chat_tracker.core.signin import AccountChecked, CheckAccount, Verdict
from chat_tracker.errors import Recover, Refused

log = logging.getLogger("chat_tracker")


@dataclass(frozen=True)
class Joined:
    """Outcome: ``member`` is in the room, chatting on this connection."""

    member: Member
    rooms: tuple[tuple[str, int], ...] = ()  # a registered member's other rooms and read positions: back into them


class Entrance:
    """One connection's way in, and what it answers on the way."""

    __slots__ = ("_after_password", "_paused", "_pending_name", "accounts", "address", "dialect", "outbox", "room")

    def __init__(self, room: Room, dialect: Dialect, outbox: Outbox, address: str, accounts: bool = False) -> None:
        self.room = room
        self.accounts = accounts  # names are looked up among the accounts before a join
        self.dialect = dialect
        self.outbox = outbox
        self.address = address
        # What the waiting states carry: the frames a right password gets (they depend on how it
        # came), and, in AWAIT_RESUME, what the paused check would have said and the wait to announce.
        self._after_password: tuple[str, ...] = ()
        self._paused: tuple[bool, Wait] | None = None
        self._pending_name = ""  # AWAIT_PASSPHRASE: the account's name the passphrase is for

    # --- the password ------------------------------------------------------------------

    def start(self, query_string: bytes, authorization: str | None) -> SessionState | CheckPassword:
        """Prompt for the password, or check the one in the header; a password in the URL is refused."""
        if query_string:
            return self.refuse("password_in_url", "never put the password in the URL", CloseCode.PASSWORD_IN_URL)
        if self.dialect is PLAIN:
            self.outbox.push(PASSWORD_PROMPT)
            return SessionState.AWAIT_PASSWORD
        if authorization is not None:
            self._after_password = (encode(Hello(PROTOCOL_VERSION, True)),)
            return CheckPassword(password_from_authorization(authorization))
        self.outbox.push(encode(Hello(PROTOCOL_VERSION, False)))
        return SessionState.AWAIT_PASSWORD

    def password(self, frame: str) -> SessionState | CheckPassword:
        """The frame after the prompt: a candidate to check (plain: the line; JSON: ``auth``), or 4008."""
        if self.dialect is PLAIN:
            self._after_password = (PASSWORD_OK, NAME_PROMPT)
            return CheckPassword(frame.rstrip("\r\n"))
        try:
            request = decode_client(frame)
        except ProtocolError as error:
            return self.refuse(error.code, error.message, CloseCode.PROTOCOL_ERROR)
        if not isinstance(request, Auth):
            return self.refuse("not_authenticated", "send 'auth' with the password first", CloseCode.PROTOCOL_ERROR)
        self._after_password = (encode(Authenticated()),)
        return CheckPassword(request.password)

    def gate_answered(self, checked: Checked | bool) -> SessionState:
        """Right: on to the name. Wrong: 4001. Refused unchecked: 4013, or AWAIT_RESUME if only paused."""
        if isinstance(checked, bool):
            checked = Checked(ok=checked)
        if checked.ok:
            self.outbox.push_texts(self._after_password)
            self._after_password = ()  # said once: not kept for the connection's life
            return SessionState.AWAIT_NAME
        if checked.wait is None:
            frame = WRONG_PASSWORD if self.dialect is PLAIN else self.dialect.error("bad_password", "wrong password")
            return self.close(CloseCode.BAD_PASSWORD, "bad_password", (frame,))
        if checked.hidden is None or self.dialect is PLAIN:
            return self._too_many_guesses(checked.wait)
        self._paused = (checked.hidden, checked.wait)
        self.outbox.push_texts(self._after_password)
        self._after_password = ()
        return SessionState.AWAIT_RESUME

    def _too_many_guesses(self, wait: Wait) -> SessionState:
        who = "your address" if wait.own else "many addresses; password checks are paused"
        message = f"too many wrong passwords from {who}; retry in {wait.retry_after} s"
        frame = self.dialect.error("too_many_guesses", message, retry_after=wait.retry_after)
        return self.close(CloseCode.TOO_MANY_GUESSES, "too_many_guesses", (frame,))

    # --- the name, or a resume ------------------------------------------------------------

    def name(self, frame: str, entries: KeyedBuckets | None) -> SessionState | Replay | Joined | CheckAccount:
        """A ``join`` (or plain name line) or a ``resume``; a refused one is told why and may try again.

        With accounts kept, a join's name is looked up first (``CheckAccount``): an account's name
        takes its passphrase, whoever asks for it.
        """
        request = self._requested_name(frame)
        if isinstance(request, SessionState):
            return request
        if self._entry_refused(entries):
            return SessionState.CLOSED
        if isinstance(request, Resume):
            return self._resume(request)
        if self.accounts:
            label = (request.device or "unnamed device") if self.dialect is not PLAIN else None
            return CheckAccount(request.name, request.passphrase, request.device_token, label)
        return self._join(request.name)

    def passphrase(self, frame: str) -> SessionState | CheckAccount:
        """Plain dialect: the line after the passphrase prompt, for the name given before it."""
        line = frame.rstrip("\r\n")
        if line == "exit":
            return self.close(CloseCode.NORMAL, "left", ("Bye.",))
        return CheckAccount(self._pending_name, line)

    def account_checked(self, checked: AccountChecked) -> SessionState | Joined:
        """Join as a guest or as the account signed in to; else ask for the passphrase (again), or 4013."""
        verdict = checked.verdict
        if verdict is Verdict.GUEST or verdict is Verdict.SIGNED_IN:
            return self._join(checked.name, checked if verdict is Verdict.SIGNED_IN else None)
        if verdict is Verdict.THROTTLED:
            assert checked.wait is not None
            return self._too_many_passphrases(checked.wait)
        if verdict is Verdict.PASSPHRASE_REQUIRED and self.dialect is PLAIN:
            self._pending_name = checked.name
            self.outbox.push(PASSPHRASE_PROMPT)
            return SessionState.AWAIT_PASSPHRASE
        if verdict is Verdict.PASSPHRASE_REQUIRED:
            message = f"{checked.name!r} is registered: join with its passphrase"
            return self._name_refused("passphrase_required", message)
        if verdict is Verdict.BAD_DEVICE_TOKEN:
            return self._name_refused("bad_device_token", "this device is signed out: sign in with the passphrase")
        if self.dialect is PLAIN:  # an error line, not "Name refused": the name is fine, the passphrase was not
            self.outbox.push_texts([self.dialect.error("bad_passphrase", "wrong passphrase"), NAME_PROMPT])
            return SessionState.AWAIT_NAME
        return self._name_refused("bad_passphrase", "wrong passphrase")

    def _join(self, name: str, signed_in: AccountChecked | None = None) -> SessionState | Joined:
        try:
            member = self.room.join(name, self.dialect, self.outbox, self.address, signed_in=signed_in)
            return Joined(member, signed_in.rooms if signed_in is not None else ())
        except (NameRefused, Refused) as refusal:
            return self._name_refused(refusal.code, str(refusal))

    def _too_many_passphrases(self, wait: Wait) -> SessionState:
        message = f"too many wrong passphrases for this name or from your address; retry in {wait.retry_after} s"
        frame = self.dialect.error("too_many_guesses", message, retry_after=wait.retry_after)
        return self.close(CloseCode.TOO_MANY_GUESSES, "too_many_guesses", (frame,))

    def resume_only(self, frame: str, entries: KeyedBuckets | None) -> SessionState | Replay | Joined:
        """Checks are paused: a resume with the right password (and a valid token) gets in; nothing else does."""
        assert self._paused is not None
        right, wait = self._paused
        request = self._requested_name(frame)
        if request is SessionState.CLOSED:
            return request
        if not right or not isinstance(request, Resume):
            return self._too_many_guesses(wait)
        if self._entry_refused(entries):
            return SessionState.CLOSED
        outcome = self._resume(request)
        if outcome is SessionState.AWAIT_NAME:  # refused (bad token, expired...): told as everyone else is
            return self._too_many_guesses(wait)
        return outcome

    def _entry_refused(self, entries: KeyedBuckets | None) -> bool:
        """Spend one of the address's joins and resumes; True if it has none left (and the session is closed)."""
        if entries is None:
            return False
        key = address_key(self.address)
        if entries.take(key):
            return False
        seconds = max(1, math.ceil(entries.wait(key)))
        message = f"too many joins and resumes from your address; retry in {seconds} s"
        frame = self.dialect.error("too_many_joins", message, retry_after=seconds)
        self.close(CloseCode.TOO_MANY_JOINS, "too_many_joins", (frame,))
        return True

    def _resume(self, request: Resume) -> SessionState | Replay | Joined:
        """A Replay, Joined again after a lost epoch, or AWAIT_NAME if refused (and told why)."""
        try:
            resuming = self.room.resume(request.token, request.epoch, request.after, self.outbox, self.address)
        except Recover as recover:
            return self._join_again(recover)
        except Refused as refusal:
            log.info("Resume refused from %s: %s", self.address, refusal.message)
            self._error(refusal.code, refusal.message)  # the connection stays open: join instead
            return SessionState.AWAIT_NAME
        return Replay(resuming)

    def _join_again(self, recover: Recover) -> SessionState | Joined:
        """Back from a room the journal lost: joined afresh under its name, answered ``resumed`` (recovered: false)."""
        try:
            member = self.room.join(recover.name, self.dialect, self.outbox, self.address, recover.after)
        except (NameRefused, Refused) as refusal:
            return self._name_refused(refusal.code, str(refusal))
        log.info("%s came back from a lost epoch (after seq %d): joined again", recover.name, recover.after)
        return Joined(member)

    def _requested_name(self, frame: str) -> Join | Resume | SessionState:
        """The join or resume ``frame`` asks for; else where the session goes, having told the peer why."""
        if self.dialect is PLAIN:
            name = frame.rstrip("\r\n")
            if name == "exit":
                return self.close(CloseCode.NORMAL, "left", ("Bye.",))
            return Join(name)
        try:
            request = decode_client(frame)
        except ProtocolError as error:
            self._error(error.code, error.message)
            return SessionState.AWAIT_NAME
        if isinstance(request, (Join, Resume)):
            return request
        if isinstance(request, Auth):
            self._error("already_authenticated", "already authenticated; send 'join'")
        else:
            self._error("not_joined", "join the room first")
        return SessionState.AWAIT_NAME

    def _name_refused(self, code: str, reason: str) -> SessionState:
        if self.dialect is PLAIN:
            self.outbox.push_texts([f"Name refused: {reason}", NAME_PROMPT])
        else:
            self._error(code, reason)
        return SessionState.AWAIT_NAME

    # --- answers -----------------------------------------------------------------------

    def _error(self, code: str, message: str) -> None:
        self.outbox.push(self.dialect.error(code, message))

    def refuse(self, code: str, message: str, close_code: int) -> SessionState:
        """Send an error, then close with ``close_code``."""
        return self.close(close_code, code, (self.dialect.error(code, message),))

    def close(self, code: int, reason: str, final: tuple[str, ...]) -> SessionState:
        """Send ``final`` after what is queued, then close with ``code`` (the outbox keeps the first close)."""
        self.outbox.close(code, reason, final)
        return SessionState.CLOSED
