"""The two ways a member can speak: structured JSON frames, or plain text lines.

A dialect turns what the room says to one member (a welcome, an error, a goodbye)
into frames. Events shared by everyone are rendered once, on the event itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from chat_protocol import Bye, Error, Limits, Welcome, encode

from .events import MESSAGE, Event

if TYPE_CHECKING:
    from .room import Member

GREETING = "Welcome to our server... Just type your message and press Enter."

PASSWORD_PROMPT = "Enter server password..."
NAME_PROMPT = "Enter your username..."
PASSWORD_OK = "Welcome to our server..."
WRONG_PASSWORD = "Wrong password. Bye."


class Dialect(Protocol):
    """Rendering for one kind of client."""

    name: str
    echo_own_messages: bool

    def shared(self, event: Event) -> str: ...

    def welcome(self, event: Event, limits: Limits) -> list[str]: ...

    def error(self, code: str, message: str) -> str: ...

    def bye(self, reason: str, message: str) -> str: ...


class JsonDialect:
    """``groupchat.v1``: every frame is a protocol message."""

    name = "json"
    echo_own_messages = True  # the echo is the sender's acknowledgement

    def shared(self, event: Event) -> str:
        return event.json_frame()

    def welcome(self, event: Event, limits: Limits) -> list[str]:
        welcome = Welcome(
            seq=event.seq, ts=event.ts, name=event.name, greeting=GREETING,
            members=list(event.members_at_join), limits=limits,
        )
        return [encode(welcome)]

    def error(self, code: str, message: str) -> str:
        return encode(Error(code=code, message=message))

    def bye(self, reason: str, message: str) -> str:
        return encode(Bye(reason=reason, message=message))


class PlainDialect:
    """No subprotocol: lines a person reads in any WebSocket client, as in the seed."""

    name = "plain"
    echo_own_messages = False  # as in the seed: you see what you typed already

    def shared(self, event: Event) -> str:
        return event.plain_frame()

    def welcome(self, event: Event, limits: Limits) -> list[str]:
        online = ", ".join(event.members_at_join)
        return [
            f"Hi {event.name}, You have been added to the server.",
            f"Online now ({len(event.members_at_join)}): {online}",
            f"Limits: {limits.max_message_chars} characters per message, "
            f"{limits.rate_per_second:g} messages/s (bursts of {limits.rate_burst}).",
            "Just type your message and press Enter; send exit to leave.",
        ]

    def error(self, code: str, message: str) -> str:
        return f"! {message}"

    def bye(self, reason: str, message: str) -> str:
        return f"* {message}" if reason == "shutdown" else message


JSON = JsonDialect()
PLAIN = PlainDialect()


def frames_for(member: Member, event: Event, limits: Limits) -> list[str] | str | None:
    """What ``member`` receives for ``event``: one frame, several, or nothing."""
    dialect = member.dialect
    if event.origin is member:
        if event.kind == MESSAGE:
            return dialect.shared(event) if dialect.echo_own_messages else None
        if event.kind == "join":
            return dialect.welcome(event, limits)
        return None  # your own leave: you get a bye instead
    return dialect.shared(event)
