"""What both ways of keeping the room share (``standalone.py``, ``replicated.py``): rules, goodbyes, the old key.

A stop (Ctrl+C) tells each member goodbye and logs its leave; a restart (SIGTERM,
or in a replica a Redis that lost the room) tells each to come back: the goodbye
says which. After ``rotate-key``, tokens under the previous resume key still resume
for one grace, then that key resumes no one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from chat_protocol.reasons import LeaveReason
from chat_tracker.core.dialects import RESTART
from chat_tracker.core.policy import MemberPolicy
from chat_tracker.core.room import Member, Room
from chat_tracker.service.settings import Settings

log = logging.getLogger("chat_tracker")

SHUTDOWN_MESSAGE = "The tracker is shutting down. Bye."
RESTART_MESSAGE = "The tracker is restarting; you will be reconnected."


def member_policy(settings: Settings) -> MemberPolicy:
    """The limits every member is held to (message size and rate, flooding), from the flags."""
    return MemberPolicy(settings.limits, settings.flood_tolerance, settings.flood_forgiveness, monotonic=time.monotonic)


def goodbye(member: Member) -> tuple[str, ...]:
    """The last frame of a member at a stop: the chat is over."""
    return (member.dialect.bye(LeaveReason.SHUTDOWN, SHUTDOWN_MESSAGE),)


def restart_goodbye(member: Member) -> tuple[str, ...]:
    """The last frame of a member at a restart: it resumes (or joins again) once the tracker is back."""
    return (member.dialect.bye(RESTART, RESTART_MESSAGE),)


def retire_previous_key(room: Room, forget: Callable[[], None] = lambda: None) -> None:
    """After one grace, no token under the previous key can still resume anyone: stop accepting it.

    ``forget`` then drops it wherever it is kept besides memory (``resume.key.previous``).
    """
    tokens = room.tokens
    if tokens is None or not tokens.has_previous:
        return
    log.info("Tokens under the previous resume key are accepted for %g s (resume.key.previous)", room.grace)

    def retire() -> None:
        if room.tokens is not tokens:
            return  # rotated again meanwhile: that rotation retires its own previous key
        tokens.forget_previous()
        forget()
        log.info("The previous resume key's grace is over: it resumes no one any more")

    asyncio.get_running_loop().call_later(room.grace, retire)
