"""The dialogue of one connection as a sans-I/O state machine: frames in, frames and actions out.

Password, then name, then chat, then goodbye, for both dialects, with no awaits and
no socket: the ``/ws`` adapter (``transport/native.py``, through its ``driver.py``) feeds it what the peer sent (a text
frame, a binary frame, a disconnect), its timer's timeouts, and carries out what it
asks for. Frames for the peer go to the connection's outbox; the two things the session
cannot do itself are check a password (the gate answers at once: right, wrong or refused) and read
the journal's history for a resume, so it returns a ``CheckPassword`` or a
``Replay`` action and is told when it is done (``password_checked``, ``replayed``).

Its states and what moves them are one table, ``session_states.TRANSITIONS``: every
input is looked up there first, and a call the adapter makes at a time the table has
no place for raises ``IllegalTransition``; what the peer sends never does.

The way in (password, then a name or a resume) is ``session_entry.py``; what a member's
frames do once it chats is ``session_chat.py``.

``deadline`` says how long the adapter may wait for the next frame in each state.
"""

from __future__ import annotations

from typing import TypeVar

from chat_protocol import CloseCode
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.auth import Checked
from chat_tracker.core.dialects import PLAIN, Dialect
from chat_tracker.core.errands import Errand, ListDevices, MarkRead, ReadHistory, SignOutDevice
from chat_tracker.core.outbox import Outbox
from chat_tracker.core.ratelimit import KeyedBuckets
from chat_tracker.core.room import Member, Room
from chat_tracker.core.rooms import Rooms, single_room
from chat_tracker.core.session_chat import Chat
from chat_tracker.core.session_entry import Entrance, Joined
from chat_tracker.core.session_states import (
    READING,
    Action,
    CheckPassword,
    Input,
    Replay,
    SessionState,
    Timeouts,
    check_move,
    deadline_of,
    expect,
    waiting_for,
)
from chat_tracker.core.signin import AccountChecked, CheckAccount, CreateAccount, RegistrationDone

__all__ = [
    "Action",
    "CheckAccount",
    "CheckPassword",
    "CreateAccount",
    "Errand",
    "ListDevices",
    "MarkRead",
    "ReadHistory",
    "Replay",
    "Session",
    "SessionState",
    "SignOutDevice",
    "Timeouts",
    "leave_reason",
]

# What a session waiting for the peer's next frame asked for, as its timeout's error says.
_AWAITED = {SessionState.AWAIT_PASSWORD: "password", SessionState.AWAIT_PASSPHRASE: "passphrase"}

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


# What an input's handler says: the state it leads to, or an action (which leads to the state that waits for it).
_Action = TypeVar("_Action", bound=Action)
_MEMBER_HELD = frozenset((SessionState.CHATTING, SessionState.REGISTERING))  # states a member's removal ends


class Session:
    """One connection's dialogue, joined or not."""

    # One per connection: no __dict__ (as Outbox, Chat and the transport's objects)
    __slots__ = (
        "_chat",
        "_entrance",
        "_state",
        "address",
        "dialect",
        "entries",
        "member",
        "outbox",
        "room",
        "rooms",
        "timeouts",
    )

    def __init__(
        self,
        room: Room,
        dialect: Dialect,
        outbox: Outbox,
        address: str,
        timeouts: Timeouts,
        entries: KeyedBuckets | None = None,
        accounts: bool = False,
        rooms: Rooms | None = None,
    ) -> None:
        self.room = room
        self.rooms = rooms if rooms is not None else single_room(room)
        self.dialect = dialect
        self.outbox = outbox
        self.address = address
        self.timeouts = timeouts
        self.entries = entries  # joins and resumes per address key; None: unlimited
        self.member: Member | None = None
        self._state = SessionState.OPENING
        self._entrance = Entrance(room, dialect, outbox, address, accounts)
        self._chat = Chat(self.rooms, dialect, outbox)

    # --- where it stands -------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """Where the dialogue stands; reading it changes nothing.

        CHATTING lasts while the member holds this connection: the room may take it out on its
        own (too slow, resumed on another connection, a moderator, shutdown), and the session,
        which is not told, reads that here as CLOSED. Its next input records it.
        """
        state = self._state
        if state in _MEMBER_HELD and self._member_gone():
            return SessionState.CLOSED
        return state

    @property
    def reading(self) -> bool:
        """Whether the adapter should read another frame."""
        return self.state in READING

    @property
    def deadline(self) -> float | None:
        """Seconds to wait for the next frame before ``timed_out``; None for no limit."""
        return deadline_of(self.state, self.timeouts)

    # --- the adapter's calls -----------------------------------------------------------

    def start(self, query_string: bytes, authorization: str | None) -> CheckPassword | None:
        """The connection is accepted: prompt for the password, or check the one in the header."""
        before = self._expect(Input.START)
        return self._settle(before, Input.START, self._entrance.start(query_string, authorization))

    def refuse_full(self) -> None:
        """The tracker has no room for another connection (or drops this stranger to make room)."""
        before = self._expect(Input.NO_ROOM)
        closed = self._entrance.refuse(
            "server_full", "the tracker is full; try again later", CloseCode.TOO_MANY_CONNECTIONS
        )
        self._settle(before, Input.NO_ROOM, closed)

    def refuse_banned(self, reason: str) -> None:
        """This address is banned by a moderator: refused before anything else."""
        before = self._expect(Input.TURNED_AWAY)
        because = f": {reason}" if reason else ""
        message = f"your address is banned by a moderator{because}"
        self._settle(before, Input.TURNED_AWAY, self._entrance.refuse("banned", message, CloseCode.BANNED))

    def refuse_busy_address(self) -> None:
        """This address already holds its share of connections that have not given the password."""
        before = self._expect(Input.TURNED_AWAY)
        message = "too many connections from your address are waiting to give the password; try again later"
        self._settle(before, Input.TURNED_AWAY, self._entrance.refuse("address_busy", message, CloseCode.ADDRESS_BUSY))

    def timed_out(self) -> None:
        """No frame within ``deadline``."""
        before = self._expect(Input.TIMEOUT)
        if before is not SessionState.CLOSED:  # once closed, a timer that fired meanwhile changes nothing
            what = _AWAITED.get(before, "accepted name")
            seconds = self.deadline or 0.0
            self._entrance.refuse("handshake_timeout", f"no {what} within {seconds:g} s", CloseCode.HANDSHAKE_TIMEOUT)
        self._settle(before, Input.TIMEOUT, SessionState.CLOSED)

    def password_checked(self, checked: Checked | bool) -> None:
        """The gate's answer to the last ``CheckPassword`` (the gate logs wrong ones, rate-limited).

        An answer when no check is pending (late, or to no question) changes nothing: only a
        checked password moves the dialogue on.
        """
        before = self._expect(Input.PASSWORD_CHECKED)
        after = self._entrance.gate_answered(checked) if before is SessionState.CHECKING_PASSWORD else before
        self._settle(before, Input.PASSWORD_CHECKED, after)

    def account_checked(self, checked: AccountChecked) -> None:
        """The answer to the last ``CheckAccount``: join, ask for the passphrase (again), or refuse."""
        before = self._expect(Input.ACCOUNT_CHECKED)
        if before is not SessionState.CHECKING_ACCOUNT:  # closed meanwhile: nobody to let in
            self._settle(before, Input.ACCOUNT_CHECKED, before)
            return
        self._settle(before, Input.ACCOUNT_CHECKED, self._entered(self._entrance.account_checked(checked)))

    def registration_done(self, done: RegistrationDone) -> None:
        """The answer to the last ``CreateAccount``: the member is told, and chats on."""
        before = self._expect(Input.REGISTERED)
        if before is SessionState.REGISTERING and self.member is not None:
            self._chat.registration_done(self.member, done)
            self._settle(before, Input.REGISTERED, SessionState.CHATTING)
        else:
            self._settle(before, Input.REGISTERED, before)

    def replayed(self) -> None:
        """The adapter has replayed what the resumed member missed: it chats again."""
        before = self._expect(Input.REPLAYED)
        after = SessionState.CHATTING if before is SessionState.REPLAYING else before
        self._settle(before, Input.REPLAYED, after)

    def say_goodbye(self, code: int, message: str, reason: str = LeaveReason.SHUTDOWN) -> None:
        """The tracker is shutting down (``reason`` ``shutdown``) or restarting (``restart``)."""
        before = self._expect(Input.GOODBYE)
        self.outbox.close(code, reason, (self.dialect.bye(reason, message),))
        self._settle(before, Input.GOODBYE, SessionState.CLOSED)

    def end(self) -> None:
        """The connection is over, however it ended: the member (if any) is out of the room."""
        before = self._expect(Input.END)
        self._connection_ended(LeaveReason.CLOSED, resumable=False)
        self._settle(before, Input.END, SessionState.CLOSED)

    # --- what the peer does --------------------------------------------------------------

    def receive_text(self, frame: str) -> Action | Errand | None:
        """The peer sent a text frame."""
        member = self.member
        # The hot path: a member chatting on this connection; nothing to look up, nothing to return.
        if (
            self._state is SessionState.CHATTING
            and member is not None
            and not member.left
            and member.outbox is self.outbox
        ):
            asked = self._chat.take(member, frame)
            if member.left or member.outbox is not self.outbox:  # it left, or was removed for flooding
                self._settle(SessionState.CHATTING, Input.TEXT, SessionState.CLOSED)
                return None
            if isinstance(asked, (ReadHistory, MarkRead, ListDevices, SignOutDevice)):
                return asked  # carried out while it chats on: no state of the session waits for it
            return self._settle(SessionState.CHATTING, Input.TEXT, asked) if asked else None
        before = self._expect(Input.TEXT)
        return self._settle(before, Input.TEXT, self._text_in(before, frame))

    def receive_binary(self) -> None:
        before = self._expect(Input.BINARY)
        closed = self._entrance.refuse(
            "binary_not_accepted", "binary frames are not accepted", CloseCode.UNSUPPORTED_DATA
        )
        self._settle(before, Input.BINARY, closed)

    def disconnected(self, code: int) -> None:
        """The peer is gone (``code`` as the WebSocket layer reported it).

        A JSON member whose connection was lost (no close frame, a ping timeout) may
        come back: the room keeps it as away for the resume grace.
        """
        before = self._expect(Input.DISCONNECT)
        reason = leave_reason(code)
        self._connection_ended(reason, resumable=self.dialect is not PLAIN and reason is LeaveReason.LOST)
        self._settle(before, Input.DISCONNECT, SessionState.CLOSED)

    # --- the table ---------------------------------------------------------------------

    def _expect(self, happening: Input) -> SessionState:
        """The state ``happening`` finds; ``IllegalTransition`` if that state's row has no place for it."""
        state = self.state
        expect(state, happening)
        return state

    def _settle(self, before: SessionState, happening: Input, outcome: SessionState | _Action) -> _Action | None:
        """Record where ``happening`` led (checked against the table) and return its action, if any."""
        if isinstance(outcome, SessionState):
            check_move(before, happening, outcome)
            self._state = outcome
            return None
        after = waiting_for(outcome)
        check_move(before, happening, after)
        self._state = after
        return outcome

    def _member_gone(self) -> bool:
        """Whether the member (if any) has left the room or been resumed on another connection."""
        member = self.member
        return member is not None and (member.left or member.outbox is not self.outbox)

    def _text_in(self, before: SessionState, frame: str) -> SessionState | Action:
        entrance = self._entrance
        if before is SessionState.AWAIT_PASSWORD:
            return entrance.password(frame)
        if before is SessionState.AWAIT_PASSPHRASE:
            return entrance.passphrase(frame)
        if before is SessionState.AWAIT_NAME:
            return self._entered(entrance.name(frame, self.entries))
        if before is SessionState.AWAIT_RESUME:
            return self._entered(entrance.resume_only(frame, self.entries))
        return before  # not reading (opening, checking, replaying) or closed: the frame is dropped

    def _entered(self, outcome: SessionState | Replay | Joined | CheckAccount) -> SessionState | Replay | CheckAccount:
        """The member a join or a resume brought in is this session's from now on."""
        if isinstance(outcome, Joined):
            self.member = outcome.member
            self.rooms.connected(outcome.member)
            if outcome.rooms:
                self.rooms.come_back(outcome.member, outcome.rooms)
            return SessionState.CHATTING
        if isinstance(outcome, Replay):
            self.member = outcome.resuming.member
            self.rooms.connected(outcome.resuming.member)
        return outcome

    def _connection_ended(self, reason: LeaveReason, resumable: bool) -> None:
        member = self.member
        if member is not None:  # a no-op if it already left, went away, or resumed elsewhere
            self.rooms.connection_ended(member, self.outbox, reason)  # its other rooms end with this connection
            self.room.connection_lost(member, self.outbox, reason, resumable)
