"""Why a member left: one vocabulary for chat.log, the JSON ``left`` frame, plain lines and the client.

Each reason is written to chat.log as its value, sent in ``left`` frames, and
rendered by the plain dialect and the terminal client from this one table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class ReasonInfo:
    """How a leave reason reads: after a plain-text notice, and in the terminal client."""

    plain_suffix: str  # appended to "* NAME left the chat"
    description: str  # the terminal client's words in brackets; empty for none


class LeaveReason(enum.StrEnum):
    """Every reason a member leaves the room, as logged."""

    EXIT = "exit"  # the member asked to leave (`exit`, `leave`)
    CLOSED = "closed"  # the connection was closed normally, or for breaking the protocol
    LOST = "lost"  # the connection ended without a close (killed client, reset, ping timeout)
    FLOODING = "flooding"  # removed for staying over the rate limit
    SLOW = "slow"  # removed for not reading: its outgoing queue overflowed
    SHUTDOWN = "shutdown"  # the tracker stopped
    KICKED = "kicked"  # removed by a moderator
    BANNED = "banned"  # removed by a moderator's ban
    OFFLINE = "offline"  # a registered member's connection ended: she is offline, still a member (membership.py)
    PART = "part"  # a registered member left for good (``part``, ``/part``)
    REMOVED = "removed"  # removed from a room by its owner (rooms.py); her membership of it ends

    @property
    def info(self) -> ReasonInfo:
        return REASON_INFO[self]


REASON_INFO: dict[LeaveReason, ReasonInfo] = {
    LeaveReason.EXIT: ReasonInfo("", ""),
    LeaveReason.CLOSED: ReasonInfo("", "connection closed"),
    LeaveReason.LOST: ReasonInfo(" (connection lost)", "connection lost"),
    LeaveReason.FLOODING: ReasonInfo(" (removed for flooding)", "removed for flooding"),
    LeaveReason.SLOW: ReasonInfo(" (removed: too slow to keep up)", "removed: too slow to keep up"),
    LeaveReason.SHUTDOWN: ReasonInfo("", "tracker shutting down"),
    LeaveReason.KICKED: ReasonInfo(" (removed by a moderator)", "removed by a moderator"),
    LeaveReason.BANNED: ReasonInfo(" (banned)", "banned"),
    LeaveReason.OFFLINE: ReasonInfo(" (offline)", "offline"),
    LeaveReason.PART: ReasonInfo(" (for good)", "left for good"),
    LeaveReason.REMOVED: ReasonInfo(" (removed by the room's owner)", "removed by the room's owner"),
}

LEAVE_REASONS = tuple(reason.value for reason in LeaveReason)
