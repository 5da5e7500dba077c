"""How events look on screen: one line per event, names in stable colours, text made safe.

Pure functions: a line is a list of ``(style, text)`` fragments, which is exactly
prompt_toolkit's formatted text, and ``plain`` flattens it for piped output. So the
interactive screen and the scripted lines cannot drift apart.

Everything a peer controls (names, message text) and everything the tracker says
goes through ``sanitize_for_terminal``: nobody can move our cursor, clear our
screen or reverse our text.
"""

from __future__ import annotations

import zlib
from datetime import datetime, tzinfo

from chat_protocol import (
    Bye,
    ChatMessage,
    Error,
    Joined,
    Left,
    Members,
    ServerMessage,
    Welcome,
    name_key,
    parse_ts,
    sanitize_for_terminal,
)
from chat_protocol.reasons import LeaveReason

Fragments = list[tuple[str, str]]

# Readable on dark and light backgrounds; no black/white/grey, which vanish on one of them.
PALETTE = (
    "ansired",
    "ansigreen",
    "ansiyellow",
    "ansiblue",
    "ansimagenta",
    "ansicyan",
    "ansibrightred",
    "ansibrightgreen",
    "ansibrightblue",
    "ansibrightmagenta",
    "ansibrightcyan",
)
TIME_STYLE = "ansibrightblack"
NOTICE_STYLE = "italic ansibrightblack"
ERROR_STYLE = "bold ansired"

# Why someone left, in words (the protocol's table); an unknown reason is shown as is.
LEAVE_REASONS = {reason.value: reason.info.description for reason in LeaveReason}


def safe(text: str) -> str:
    """``text`` with every control, separator and bidi character shown as an escape."""
    return sanitize_for_terminal(text)


def name_style(name: str) -> str:
    """The colour of ``name``: the same for every run, every client and every lookalike spelling.

    crc32 rather than ``hash()``, which Python salts differently in every process.
    """
    return "bold " + PALETTE[zlib.crc32(name_key(name).encode()) % len(PALETTE)]


def clock(ts: str | None, *, seconds: bool, tz: tzinfo | None = None, now: datetime | None = None) -> str:
    """Local wall-clock time of a tracker timestamp (or of ``now`` for untimed events)."""
    moment = parse_ts(ts).astimezone(tz) if ts else (now or datetime.now()).astimezone(tz)
    return moment.strftime("%H:%M:%S" if seconds else "%H:%M")


def stamped(fragments: Fragments, when: str) -> Fragments:
    """``fragments`` behind a ``[12:01:02] `` time stamp."""
    return [(TIME_STYLE, f"[{when}] "), *fragments]


def notice(text: str) -> Fragments:
    """A line from the tracker or the client itself, not from a person."""
    return [(NOTICE_STYLE, f"* {text}")]


def error(text: str) -> Fragments:
    """A refusal or failure meant for this user alone."""
    return [(ERROR_STYLE, f"! {text}")]


def name_list(names: list[str]) -> str:
    """``(2): alpha, beta`` - safe even if a name is not."""
    return f"({len(names)}): " + ", ".join(safe(name) for name in names)


def body(message: ServerMessage) -> Fragments | None:
    """The line for one event, without time stamp; None for frames a person need not see."""
    if isinstance(message, ChatMessage):
        return [(name_style(message.name), safe(message.name)), ("", ": " + safe(message.text))]
    if isinstance(message, Joined):
        return notice(f"{safe(message.name)} joined")
    if isinstance(message, Left):
        return notice(f"{safe(message.name)} left" + _reason(message.reason))
    if isinstance(message, Welcome):
        return notice(f"welcome {safe(message.name)}; online now {name_list(message.members)}")
    if isinstance(message, Members):
        return notice("online now " + _members(message))
    if isinstance(message, Error):
        return error(f"{safe(message.message)} ({safe(message.code)})")
    if isinstance(message, Bye):
        return notice(safe(message.message) or f"bye ({safe(message.reason)})")
    return None


def event_line(message: ServerMessage, *, seconds: bool, tz: tzinfo | None = None) -> Fragments | None:
    """The time-stamped line for one event (local time of the tracker's ``ts`` when it has one)."""
    fragments = body(message)
    if fragments is None:
        return None
    return stamped(fragments, clock(getattr(message, "ts", None), seconds=seconds, tz=tz))


def plain(fragments: Fragments) -> str:
    """The text of a line without its styles."""
    return "".join(text for _, text in fragments)


def uncolored(fragments: Fragments) -> Fragments:
    """The same line with every style dropped (``NO_COLOR``, ``TERM=dumb``)."""
    return [("", text) for _, text in fragments]


def _reason(reason: str) -> str:
    words = LEAVE_REASONS.get(reason, safe(reason))
    return f" ({words})" if words else ""


def _members(message: Members) -> str:
    names = [safe(member.name) + _idle(member.idle_seconds) + _away(member.away) for member in message.members]
    return f"({len(names)}): " + ", ".join(names)


def _away(away: bool) -> str:
    """`` (away)`` for a member whose connection dropped and who may still resume."""
    return " (away)" if away else ""


def _idle(seconds: float) -> str:
    """`` (idle 5m)`` for members quiet for a minute or more; nothing otherwise."""
    if seconds < 60:
        return ""
    if seconds < 3600:
        return f" (idle {int(seconds // 60)}m)"
    return f" (idle {int(seconds // 3600)}h)"
