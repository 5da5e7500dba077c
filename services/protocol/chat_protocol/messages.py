"""The structured (JSON) protocol spoken on ``/ws`` with subprotocol ``groupchat.v1``.

Every frame is one JSON object with a ``type``. Both sides import this module, so
a field renamed here is renamed everywhere. Events that are recorded in chat.log
(``welcome``, ``joined``, ``message``, ``left``) carry the log's sequence number
``seq`` and the UTC timestamp ``ts``; every member receives them in ``seq`` order.

Fields added after version 1 was first published (``epoch``, ``token``, ``id``,
``away``...) have defaults, and a field whose value is None is left out of the
frame, so an older peer reads a newer one's frames and the other way round.
See docs/protocol.md for the dialogue; ``codec.py`` turns these messages into frames and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from .accounts import Devices, ListDevices, Register, Registered, SignedOut, SignOut
from .error_codes import ERROR_CODES
from .membership import History, HistoryPage, Part, Presence, Read
from .reasons import LEAVE_REASONS as _LEAVE_REASONS
from .rooms import Entered, Invite, Invited, ListRooms, Parted, Remove, RoomInfo, RoomList

SUBPROTOCOL = "groupchat.v1"
WEBSOCKET_PATH = "/ws"  # where the tracker serves the chat socket; the client implies it
PROTOCOL_VERSION = 1


# --- limits announced in the welcome --------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """The limits in force, sent to every member in the welcome."""

    max_message_chars: int = 2000
    max_frame_bytes: int = 65536
    rate_per_second: float = 10.0
    rate_burst: int = 20
    queue_size: int = 1024


# --- client -> tracker ---------------------------------------------------------------


@dataclass(frozen=True)
class Auth:
    """The server password, when it was not given in the Authorization header."""

    TYPE: ClassVar[str] = "auth"
    password: str


@dataclass(frozen=True)
class Join:
    """Claim a username and enter the room; a registered name needs its ``passphrase`` (accounts.py)."""

    TYPE: ClassVar[str] = "join"
    name: str
    passphrase: str | None = None
    device_token: str | None = None  # instead of the passphrase: the token this device's last welcome gave it
    device: str | None = None  # with the passphrase: a label for this device (``/devices`` lists it)
    room: str | None = None  # once joined: enter this room (rooms.py), answered with ``entered``
    private: bool | None = None  # with ``room``, true: a new room is private (entered by invitation only)


# A client-chosen message id: short, so that remembering the last few per member costs little.
MAX_MESSAGE_ID_CHARS = 64


@dataclass(frozen=True)
class Say:
    """Send one chat message to everyone (the tracker attaches the sender's name).

    ``id``, chosen by the client, makes a resend harmless: a message whose id the
    tracker already logged for this member is not logged again, only acknowledged.
    """

    TYPE: ClassVar[str] = "message"
    text: str
    id: str | None = None
    room: str | None = None  # to this room (rooms.py); None: the default room
    to: str | None = None  # a direct message to this member alone (rooms.py)


@dataclass(frozen=True)
class Resume:
    """Come back as the member a ``welcome`` (or ``resumed``) gave ``token`` to, after seq ``after``.

    Sent instead of ``join``, once authenticated. ``epoch`` is the one the welcome
    carried; ``after`` the last seq the client received.
    """

    TYPE: ClassVar[str] = "resume"
    token: str
    epoch: str
    after: int


@dataclass(frozen=True)
class Who:
    """Ask for the member list (of ``room``; None: the default room); answered with ``members``."""

    TYPE: ClassVar[str] = "who"
    room: str | None = None


@dataclass(frozen=True)
class Leave:
    """Leave the room; answered with ``bye`` once everything sent before it is logged."""

    TYPE: ClassVar[str] = "leave"


ClientMessage: TypeAlias = (
    Auth
    | Join
    | Resume
    | Say
    | Who
    | Leave
    | Register
    | History
    | Read
    | Part
    | ListDevices
    | SignOut
    | ListRooms
    | Invite
    | Remove
)

# --- tracker -> client ---------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """First frame after the handshake. ``authenticated`` is True when the header's password was right."""

    TYPE: ClassVar[str] = "hello"
    version: int
    authenticated: bool


@dataclass(frozen=True)
class Authenticated:
    """The ``auth`` frame's password was right; send ``join`` next."""

    TYPE: ClassVar[str] = "authenticated"


@dataclass(frozen=True)
class MemberInfo:
    """One online member as ``/who`` and ``GET /members`` show it."""

    name: str
    joined_at: str
    idle_seconds: float
    away: bool = False  # its connection dropped; it may resume within the tracker's resume grace
    online: bool = True  # False: a registered member with no connection (membership.py); still a member
    last_seen: str | None = None  # when an offline member was last online
    registered: bool = False  # signed in to the account of its name


@dataclass(frozen=True)
class Welcome:
    """You are in: your own join event, who is online (you included) and the limits.

    ``epoch`` (chat.log's identity) and ``token`` are what a later ``resume`` needs;
    ``resume_grace`` how many seconds the tracker keeps a lost member as ``away``
    (0: it does not, and a lost member leaves at once).
    """

    TYPE: ClassVar[str] = "welcome"
    seq: int
    ts: str
    name: str
    greeting: str
    members: list[str]
    limits: Limits
    epoch: str = ""
    token: str = ""
    resume_grace: float = 0.0
    registered: bool = False  # signed in to an account under this name
    read: int | None = None  # a registered member: her read position (the last seq she has seen)
    unread: int | None = None  # a registered member: events after ``read`` and before this welcome
    device: str | None = None  # the id of the device this connection signed in as
    device_token: str | None = None  # its next sign-in's token (the one it used is spent): keep it, secretly
    rooms: list[RoomInfo] | None = None  # the rooms you are in besides this one, with their unread counts (rooms.py)


@dataclass(frozen=True)
class Resumed:
    """The answer to ``resume``: you are back under ``name``; ``replayed`` missed events follow, then live ones.

    ``seq`` is the seq of the last replayed event (the last seq covered when
    ``replayed`` is 0): where the client's cursor stands once the replay is in.
    ``recovered`` is False when some
    events after ``after`` are no longer kept: ``gone`` is then ``[first, last]``,
    the seqs that cannot be replayed. ``messages`` counts the chat messages among
    the replayed events.
    """

    TYPE: ClassVar[str] = "resumed"
    seq: int
    name: str
    epoch: str
    token: str
    recovered: bool
    replayed: int
    messages: int
    members: list[str]
    limits: Limits
    resume_grace: float = 0.0
    gone: list[int] | None = None


@dataclass(frozen=True)
class Joined:
    """Someone else joined."""

    TYPE: ClassVar[str] = "joined"
    seq: int
    ts: str
    name: str
    room: str | None = None  # the room's name; None (absent): the default room


@dataclass(frozen=True)
class ChatMessage:
    """A message, sent to every member including its sender (which is how a sender sees it was accepted)."""

    TYPE: ClassVar[str] = "message"
    seq: int
    ts: str
    name: str
    text: str
    id: str | None = None  # the sender's own id, only on the frames that go back to the sender
    room: str | None = None  # the room's name; None (absent): the default room
    to: str | None = None  # a direct message: to whom (``name`` is who sent it; ``seq`` is the conversation's)


@dataclass(frozen=True)
class Left:
    """Someone left; ``reason`` is one of LEAVE_REASONS."""

    TYPE: ClassVar[str] = "left"
    seq: int
    ts: str
    name: str
    reason: str
    room: str | None = None


@dataclass(frozen=True)
class Moderation:
    """A moderator acted: ``action`` is ``kick``, ``mute``, ``ban`` or ``unban``.

    ``name`` is the member (or banned name) it concerns, empty for an address ban or
    an unban; ``seconds`` how long a mute or ban lasts (None: for ever; a mute of 0
    lifts it), ``until`` when it ends (UTC ISO-8601), ``id`` a ban's id.
    """

    TYPE: ClassVar[str] = "moderation"
    seq: int
    ts: str
    action: str
    name: str = ""
    reason: str = ""
    seconds: float | None = None
    until: str | None = None
    id: str | None = None
    room: str | None = None


@dataclass(frozen=True)
class Announcement:
    """A notice from the tracker's operators to everyone."""

    TYPE: ClassVar[str] = "announcement"
    seq: int
    ts: str
    text: str
    room: str | None = None


@dataclass(frozen=True)
class Members:
    """Answer to ``who``."""

    TYPE: ClassVar[str] = "members"
    members: list[MemberInfo]
    room: str | None = None


@dataclass(frozen=True)
class Error:
    """A refused request. The connection stays open unless a close frame follows.

    ``id`` is the refused message's own id, when it had one: the sender knows which
    of its messages will never be echoed (and must not be sent again).
    """

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    id: str | None = None
    retry_after: float | None = None  # too_many_guesses, too_many_joins: seconds before trying again


@dataclass(frozen=True)
class Bye:
    """The tracker is about to close this connection; ``reason`` says why (see docs/protocol.md)."""

    TYPE: ClassVar[str] = "bye"
    reason: str
    message: str = ""


ServerMessage: TypeAlias = (
    Hello
    | Authenticated
    | Welcome
    | Resumed
    | Joined
    | ChatMessage
    | Left
    | Moderation
    | Announcement
    | Members
    | Error
    | Bye
    | Registered
    | Presence
    | HistoryPage
    | Devices
    | SignedOut
    | RoomList
    | Entered
    | Parted
    | Invited
)

# Why a member left, as carried by ``left`` events and chat.log: the table is reasons.py's.
LEAVE_REASONS = _LEAVE_REASONS


__all__ = [
    "ERROR_CODES",
    "LEAVE_REASONS",
    "MAX_MESSAGE_ID_CHARS",
    "PROTOCOL_VERSION",
    "SUBPROTOCOL",
    "WEBSOCKET_PATH",
    "Announcement",
    "Auth",
    "Authenticated",
    "Bye",
    "ChatMessage",
    "ClientMessage",
    "Error",
    "Hello",
    "Join",
    "Joined",
    "Leave",
    "Left",
    "Limits",
    "MemberInfo",
    "Members",
    "Moderation",
    "Register",
    "Registered",
    "Resume",
    "Resumed",
    "Say",
    "ServerMessage",
    "Welcome",
    "Who",
]
