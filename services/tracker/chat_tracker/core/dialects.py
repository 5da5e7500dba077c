"""The two ways a member can speak: structured JSON frames, or plain text lines.

A dialect turns what the room says to one member (a welcome, an error, a goodbye)
into frames. Events shared by everyone are rendered once, on the event itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chat_protocol import Bye, Error, Limits, RoomInfo, Welcome, encode
from chat_protocol.reasons import LeaveReason
from chat_tracker.core.catchup import CatchUp, plain_lines
from chat_tracker.core.events import Event

GREETING = "Welcome to our server... Just type your message and press Enter."

PASSWORD_PROMPT = "Enter server password..."
NAME_PROMPT = "Enter your username..."
PASSWORD_OK = "Welcome to our server..."
WRONG_PASSWORD = "Wrong password. Bye."
RESTART = "restart"  # the ``bye`` reason when the tracker restarts (SIGTERM): reconnect and resume


@dataclass(frozen=True)
class SignedIn:
    """What the welcome of a member signed in to her account says besides the rest: what she missed, her device."""

    missed: CatchUp | None = None  # None: a new membership (nothing to catch up on)
    device: str | None = None
    device_token: str | None = None
    rooms: tuple[RoomInfo, ...] = ()  # her other rooms (core/rooms.py), each with its unread count


@dataclass(frozen=True)
class ResumeOffer:
    """What a JSON welcome carries for a later resume: chat.log's epoch, the member's token, the grace."""

    epoch: str
    token: str
    grace: float


class Dialect(Protocol):
    """Rendering for one kind of client."""

    name: str
    echo_own_messages: bool

    def shared(self, event: Event) -> str: ...

    def shared_wire(self, event: Event) -> bytes: ...

    def own_message(self, event: Event) -> str: ...

    def welcome(
        self, event: Event, limits: Limits, offer: ResumeOffer | None, signed_in: SignedIn | None = None
    ) -> list[str]: ...

    def error(self, code: str, message: str, msg_id: str | None = None, retry_after: float | None = None) -> str: ...

    def bye(self, reason: str, message: str) -> str: ...


class JsonDialect:
    """``groupchat.v1``: every frame is a protocol message."""

    name = "json"
    echo_own_messages = True  # the echo is the sender's acknowledgement

    def shared(self, event: Event) -> str:
        return event.json_frame()

    def shared_wire(self, event: Event) -> bytes:
        return event.json_wire()

    def own_message(self, event: Event) -> str:
        return event.own_json_frame()

    def welcome(
        self, event: Event, limits: Limits, offer: ResumeOffer | None, signed_in: SignedIn | None = None
    ) -> list[str]:
        missed = signed_in.missed if signed_in is not None else None
        welcome = Welcome(
            seq=event.seq,
            ts=event.ts,
            name=event.name,
            greeting=GREETING,
            members=list(event.members),
            limits=limits,
            epoch=offer.epoch if offer else "",
            token=offer.token if offer else "",
            resume_grace=offer.grace if offer else 0.0,
            registered=signed_in is not None,
            read=None if missed is None else missed.read,
            unread=None if missed is None else missed.unread,
            device=signed_in.device if signed_in is not None else None,
            device_token=signed_in.device_token if signed_in is not None else None,
            rooms=list(signed_in.rooms) if signed_in is not None and signed_in.rooms else None,
        )
        return [encode(welcome)]

    def error(self, code: str, message: str, msg_id: str | None = None, retry_after: float | None = None) -> str:
        return encode(Error(code=code, message=message, id=msg_id, retry_after=retry_after))

    def bye(self, reason: str, message: str) -> str:
        return encode(Bye(reason=reason, message=message))


class PlainDialect:
    """No subprotocol: lines a person reads in any WebSocket client, as in the seed."""

    name = "plain"
    echo_own_messages = False  # as in the seed: you see what you typed already

    def shared(self, event: Event) -> str:
        return event.plain_frame()

    def shared_wire(self, event: Event) -> bytes:
        return event.plain_wire()

    def own_message(self, event: Event) -> str:
        return event.plain_frame()

    def welcome(
        self, event: Event, limits: Limits, offer: ResumeOffer | None, signed_in: SignedIn | None = None
    ) -> list[str]:
        registered, missed = signed_in is not None, signed_in.missed if signed_in is not None else None
        online = ", ".join(event.members)
        signed_in_line = [f"Signed in: {event.name} is your registered name."] if registered else []
        return [
            f"Hi {event.name}, You have been added to the server.",
            *signed_in_line,
            f"Online now ({len(event.members)}): {online}",
            (
                f"Limits: {limits.max_message_chars} characters per message, "
                f"{limits.rate_per_second:g} messages/s (bursts of {limits.rate_burst})."
            ),
            (
                "Just type your message and press Enter; exit goes offline (you stay a member), /part leaves for good."
                if registered
                else "Just type your message and press Enter; send exit to leave."
            ),
            *(plain_lines(missed) if missed is not None else ()),
        ]

    def error(self, code: str, message: str, msg_id: str | None = None, retry_after: float | None = None) -> str:
        return f"! {message}"

    def bye(self, reason: str, message: str) -> str:
        return f"* {message}" if reason in (LeaveReason.SHUTDOWN, RESTART) else message


JSON = JsonDialect()
PLAIN = PlainDialect()
