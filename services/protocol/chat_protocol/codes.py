"""WebSocket close codes used by the tracker, shared by tracker and client.

1000-1015 are the standard codes (RFC 6455); 4000-4999 are the application's own.
Each code says whether a client should retry the connection on its own: a client
must never retry automatically after a code whose ``retry`` is False.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class CodeInfo:
    """What a close code means and whether reconnecting can help."""

    reason: str
    retry: bool


class CloseCode(enum.IntEnum):
    """Every close code the tracker sends."""

    NORMAL = 1000  # the member left (`exit`, `leave`, or a normal close)
    GOING_AWAY = 1001  # the tracker is shutting down
    UNSUPPORTED_DATA = 1003  # a binary frame where text is expected
    INVALID_TEXT = 1007  # a text frame that is not valid UTF-8 (sent by the WebSocket layer)
    TOO_BIG = 1009  # a frame over the size limit (sent by the WebSocket layer)
    INTERNAL_ERROR = 1011  # a tracker bug, or a keepalive ping timeout (sent by the WebSocket layer)
    SERVICE_RESTART = 1012  # the tracker is restarting (SIGTERM): reconnect and resume
    BAD_PASSWORD = 4001
    HANDSHAKE_TIMEOUT = 4002
    PASSWORD_IN_URL = 4003
    TOO_MANY_CONNECTIONS = 4005
    FLOODING = 4006
    SLOW_CONSUMER = 4007
    PROTOCOL_ERROR = 4008
    ADDRESS_BUSY = 4009  # too many unauthenticated connections from one address
    REPLACED = 4010  # this member resumed on another connection; this one is closed
    KICKED = 4011  # removed by a moderator: do not reconnect
    BANNED = 4012  # banned by a moderator (name or address): do not reconnect
    TOO_MANY_GUESSES = (
        4013  # too many wrong passwords (this address, or everyone's): retry after the error's retry_after
    )
    TOO_MANY_JOINS = 4014  # too many joins and resumes from this address: retry after the error's retry_after
    SIGNED_OUT = 4015  # this device was signed out (by its owner or an operator): sign in again with the passphrase

    @property
    def info(self) -> CodeInfo:
        return CODE_INFO[self]


CODE_INFO: dict[CloseCode, CodeInfo] = {
    CloseCode.NORMAL: CodeInfo("left the chat", retry=False),
    CloseCode.GOING_AWAY: CodeInfo("tracker is shutting down", retry=False),
    CloseCode.UNSUPPORTED_DATA: CodeInfo("binary frames are not accepted", retry=False),
    CloseCode.INVALID_TEXT: CodeInfo("text frame is not valid UTF-8", retry=False),
    CloseCode.TOO_BIG: CodeInfo("frame over the size limit", retry=False),
    CloseCode.INTERNAL_ERROR: CodeInfo("internal error or keepalive timeout", retry=True),
    CloseCode.SERVICE_RESTART: CodeInfo("tracker is restarting", retry=True),
    CloseCode.BAD_PASSWORD: CodeInfo("wrong or missing password", retry=False),
    CloseCode.HANDSHAKE_TIMEOUT: CodeInfo("password or name not given in time", retry=True),
    CloseCode.PASSWORD_IN_URL: CodeInfo("password must not be sent in the URL", retry=False),
    CloseCode.TOO_MANY_CONNECTIONS: CodeInfo("tracker is full", retry=True),
    CloseCode.FLOODING: CodeInfo("too many messages, kept over the rate limit", retry=True),
    CloseCode.SLOW_CONSUMER: CodeInfo("did not read fast enough; outgoing queue overflowed", retry=True),
    CloseCode.PROTOCOL_ERROR: CodeInfo("message not allowed in this state", retry=False),
    CloseCode.ADDRESS_BUSY: CodeInfo("too many connections from your address", retry=True),
    CloseCode.REPLACED: CodeInfo("this session was resumed on another connection", retry=False),
    CloseCode.KICKED: CodeInfo("removed by a moderator", retry=False),
    CloseCode.BANNED: CodeInfo("banned by a moderator", retry=False),
    CloseCode.TOO_MANY_GUESSES: CodeInfo("too many wrong passwords, retry later", retry=True),
    CloseCode.TOO_MANY_JOINS: CodeInfo("too many joins from your address, retry later", retry=True),
    CloseCode.SIGNED_OUT: CodeInfo("this device was signed out; sign in again with the passphrase", retry=False),
}


def describe(code: int | None) -> str:
    """A one-line human description of any close code, ours or not."""
    if code is None:
        return "connection lost"
    try:
        return CloseCode(code).info.reason
    except ValueError:
        return f"closed with code {code}"


def should_retry(code: int | None) -> bool:
    """Whether a client may reconnect on its own after this code."""
    if code is None:
        return True
    try:
        return CloseCode(code).info.retry
    except ValueError:
        return code in (1006, 1012, 1013, 1014)
