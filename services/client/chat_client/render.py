"""How events look on screen: one line per event, names in stable colours, text made safe.

Pure functions: a line is a list of ``(style, text)`` fragments, which is exactly
prompt_toolkit's formatted text, and ``plain`` flattens it for piped output. So the
interactive screen and the scripted lines cannot drift apart.

Everything a peer controls (names, message text) and everything the tracker says
goes through ``sanitize_for_terminal``: nobody can move our cursor, clear our
screen or reverse our text.
"""

from __future__ import annotations

import re
import zlib
from datetime import datetime, tzinfo

from chat_protocol import (
    Announcement,
    Bye,
    ChatMessage,
    DeviceInfo,
    Devices,
    Entered,
    Error,
    Invited,
    Joined,
    Left,
    MemberInfo,
    Members,
    Moderation,
    Parted,
    Presence,
    Registered,
    RoomInfo,
    RoomList,
    ServerMessage,
    SignedOut,
    Welcome,
    name_key,
    parse_ts,
    sanitize_for_terminal,
)
from chat_protocol.reasons import LeaveReason

from .room_view import RoomView, event_room

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
ANNOUNCEMENT_STYLE = "bold"
ERROR_STYLE = "bold ansired"
ROOM_STYLE = "ansibrightblack"

# Events that happen in a room: from a room other than the one written in, they start with ``[#name] ``.
ROOM_EVENTS = (ChatMessage, Joined, Left, Presence, Moderation, Announcement, Members)

# The tracker's UTC timestamps inside its own sentences (``muted ... until 2026-12-02T12:34:00.000Z``).
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
# Errors that come just before the tracker's ``bye`` for the same cause and say what it says.
FAREWELL_ERRORS = frozenset({"kicked", "banned"})

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


def moment(ts: str, *, seconds: bool, tz: tzinfo | None = None, now: datetime | None = None) -> str:
    """Local time of a future (or past) tracker timestamp, with its date unless it falls on ``now``'s day."""
    when = parse_ts(ts).astimezone(tz)
    today = (now or datetime.now()).astimezone(tz).date()
    time_of_day = when.strftime("%H:%M:%S" if seconds else "%H:%M")
    return time_of_day if when.date() == today else f"{when:%Y-%m-%d} {time_of_day}"


def local_times(text: str, *, seconds: bool, tz: tzinfo | None = None, now: datetime | None = None) -> str:
    """``text`` with every tracker timestamp in it written as local time."""
    return TIMESTAMP.sub(lambda match: moment(match.group(), seconds=seconds, tz=tz, now=now), text)


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


def body(
    message: ServerMessage, *, seconds: bool = False, tz: tzinfo | None = None, view: RoomView | None = None
) -> Fragments | None:
    """The line for one event, without time stamp; None for frames a person need not see.

    ``seconds`` and ``tz`` say how times inside the line (a mute's end) are written; ``view``
    which room is the current one (the default room when not given) and who we are.
    """
    rooms = view if view is not None else RoomView()
    fragments = rooms_body(message, rooms)
    if fragments is None:
        fragments = room_body(message, seconds=seconds, tz=tz)
    if fragments is None or not isinstance(message, ROOM_EVENTS) or rooms.is_current(event_room(message)):
        return fragments
    if isinstance(message, ChatMessage) and message.to is not None:
        return fragments  # a direct message is in no room
    return [(ROOM_STYLE, f"[{safe(event_room(message) or rooms.default)}] "), *fragments]


def rooms_body(message: ServerMessage, view: RoomView) -> Fragments | None:
    """The lines of the rooms' own frames and of direct messages; None for any other frame."""
    if isinstance(message, ChatMessage) and message.to is not None:
        return direct_line(message, view)
    if isinstance(message, Entered):
        return notice(entered_text(message, view))
    if isinstance(message, Parted):
        return notice(parted_text(message, view))
    if isinstance(message, Invited):
        return notice(invited_text(message, view))
    if isinstance(message, RoomList):
        return notice(room_list_text(message, view))
    return None


def room_body(message: ServerMessage, *, seconds: bool = False, tz: tzinfo | None = None) -> Fragments | None:
    """The line of an event as the single room showed it, without any room prefix."""
    if isinstance(message, ChatMessage):
        return [(name_style(message.name), safe(message.name)), ("", ": " + safe(message.text))]
    if isinstance(message, Joined):
        return notice(f"{safe(message.name)} joined")
    if isinstance(message, Left):
        if message.reason == LeaveReason.PART:
            return notice(f"{safe(message.name)} left for good")
        return notice(f"{safe(message.name)} left" + _reason(message.reason))
    if isinstance(message, Presence):
        return notice(f"{safe(message.name)} is {'online' if message.online else 'offline'}")
    if isinstance(message, Welcome):
        return notice(f"welcome {safe(message.name)}; online now {name_list(message.members)}")
    if isinstance(message, Members):
        return notice(members_text(message, seconds=seconds, tz=tz))
    if isinstance(message, Moderation):
        return notice(moderation_text(message, seconds=seconds, tz=tz))
    if isinstance(message, Announcement):
        return [(ANNOUNCEMENT_STYLE, f"* Announcement: {safe(message.text)}")]
    if isinstance(message, Error):
        if message.code in FAREWELL_ERRORS:
            return None  # the ``bye`` right after it says the same; so does the exit line
        words = local_times(safe(message.message), seconds=seconds, tz=tz, now=_day_of(message, tz))
        return error(f"{words} ({safe(message.code)})")
    if isinstance(message, Registered):
        return notice(
            f"{safe(message.name)} is registered: nobody else can use it, and joining under it takes your passphrase"
        )
    if isinstance(message, Bye):
        return notice(safe(message.message) or f"bye ({safe(message.reason)})")
    if isinstance(message, Devices):
        return notice(devices_text(message, seconds=seconds, tz=tz))
    if isinstance(message, SignedOut):
        return notice(f"device {safe(message.device)} is signed out: its token no longer works")
    return None


def event_line(
    message: ServerMessage, *, seconds: bool, tz: tzinfo | None = None, view: RoomView | None = None
) -> Fragments | None:
    """The time-stamped line for one event (local time of the tracker's ``ts`` when it has one)."""
    fragments = body(message, seconds=seconds, tz=tz, view=view)
    if fragments is None:
        return None
    return stamped(fragments, clock(getattr(message, "ts", None), seconds=seconds, tz=tz))


def plain(fragments: Fragments) -> str:
    """The text of a line without its styles."""
    return "".join(text for _, text in fragments)


def uncolored(fragments: Fragments) -> Fragments:
    """The same line with every style dropped (``NO_COLOR``, ``TERM=dumb``)."""
    return [("", text) for _, text in fragments]


def direct_line(message: ChatMessage, view: RoomView) -> Fragments:
    """A direct message: ``[alpha] text`` from someone, ``[alpha -> bob] text`` as the echo of ours."""
    sender = [(name_style(message.name), safe(message.name))]
    if view.me and name_key(message.name) == name_key(view.me):
        sender += [("", " -> "), (name_style(message.to or ""), safe(message.to or ""))]
    return [("", "["), *sender, ("", "] " + safe(message.text))]


def entered_text(entered: Entered, view: RoomView) -> str:
    """``You are in #dev now (2): alpha, bob; your lines go there (/join #general goes back)``."""
    kind = "the private room " if entered.private else ""
    text = f"You are in {kind}{safe(entered.room)} now {name_list(entered.members)}"
    if view.is_current(entered.room) and not view.is_default(entered.room):
        text += f"; your lines go there (/join {safe(view.default)} goes back)"
    return text


def parted_text(parted: Parted, view: RoomView) -> str:
    """``You left #dev; your lines go to #general`` (or why you are out of it)."""
    room = safe(parted.room)
    if parted.reason == "part":
        why = f"You left {room}"
    elif parted.reason == "removed":
        why = f"You were removed from {room} by its owner"
    else:
        why = f"You are out of {room} ({safe(parted.reason)})"
    return f"{why}; your lines go to {safe(view.current_name)}"


def invited_text(invited: Invited, view: RoomView) -> str:
    """Who may enter which room now, and who let her in."""
    room, name, by = safe(invited.room), safe(invited.name), safe(invited.by)
    if view.me and name_key(invited.name) == name_key(view.me):
        return f"{by} invited you to {room}: /join {room} enters it"
    if view.me and name_key(invited.by) == name_key(view.me):
        return f"{name} may enter {room} now"
    return f"{by} invited {name} to {room}"


def room_list_text(room_list: RoomList, view: RoomView) -> str:
    """``/rooms``' answer: one line per room, the default room first; /join NAME enters one."""
    if not room_list.rooms:
        return "no rooms"
    lines = [f"rooms ({len(room_list.rooms)}); /join #name enters one:"]
    lines += [f"  {_room_line(info, view)}" for info in room_list.rooms]
    return "\n".join(lines)


def _room_line(info: RoomInfo, view: RoomView) -> str:
    kind = "private, " if info.private else ""
    notes = [word for word in ("yours" if info.joined else "", "writing here" if _writing(info, view) else "") if word]
    if info.unread:
        notes.append(f"{info.unread} unread")
    about = f"  ({', '.join(notes)})" if notes else ""
    members = f"{info.members} member{'' if info.members == 1 else 's'}"
    return f"{safe(info.room)}  {kind}{members}, {info.online} online{about}"


def _writing(info: RoomInfo, view: RoomView) -> bool:
    return info.joined and view.is_current(info.room)


def moderation_text(message: Moderation, *, seconds: bool, tz: tzinfo | None = None) -> str:
    """What a moderator did, in words: ``alpha was removed by a moderator: spamming``."""
    target = safe(message.name) if message.name else "an address"  # an address ban's frame names no one
    because = f": {safe(message.reason)}" if message.reason else ""
    if message.action == "kick":
        return f"{target} was removed by a moderator{because}"
    if message.action == "mute":
        if not message.seconds:
            return f"{target} may speak again"
        day = _day_of(message, tz)
        until = f" (until {moment(message.until, seconds=seconds, tz=tz, now=day)})" if message.until else ""
        return f"{target} is muted for {_duration(message.seconds)}{until}{because}"
    if message.action == "ban":
        how_long = "for good" if message.seconds is None else f"for {_duration(message.seconds)}"
        which = f" (ban {safe(message.id)})" if message.id else ""
        return f"{target} is banned {how_long}{which}{because}"
    if message.action == "unban":
        return f"ban {safe(message.id or '?')} was lifted"
    return f"a moderator acted ({safe(message.action)}) on {target}{because}"


def _duration(seconds: float) -> str:
    return f"{seconds:g} s"


def _day_of(message: ServerMessage, tz: tzinfo | None) -> datetime | None:
    """The event's own moment (a replayed mute is dated from when it was made), else now."""
    ts = getattr(message, "ts", None)
    return parse_ts(ts).astimezone(tz) if ts else None


def _reason(reason: str) -> str:
    words = LEAVE_REASONS.get(reason, safe(reason))
    return f" ({words})" if words else ""


def members_text(message: Members, *, seconds: bool = False, tz: tzinfo | None = None) -> str:
    """``who``'s answer: who is online, then the registered members who are offline and when they were last seen."""
    online = [member for member in message.members if member.online]
    text = "online now " + _names([safe(m.name) + _idle(m.idle_seconds) + _away(m.away) for m in online])
    offline = [member for member in message.members if not member.online]
    if offline:
        text += "; offline members " + _names([safe(m.name) + _last_seen(m, seconds, tz) for m in offline])
    return text


def devices_text(message: Devices, *, seconds: bool = False, tz: tzinfo | None = None) -> str:
    """``/devices``' answer: one line per device, id first (what ``/signout`` takes), this one marked."""
    if not message.devices:
        return "no device is signed in to your account"
    lines = [f"devices signed in to your account ({len(message.devices)}); /signout ID signs one out:"]
    lines += [f"  {_device_line(device, seconds, tz)}" for device in message.devices]
    return "\n".join(lines)


def _device_line(device: DeviceInfo, seconds: bool, tz: tzinfo | None) -> str:
    this = "  (this device)" if device.current else ""
    seen = moment(device.last_seen, seconds=seconds, tz=tz)
    return f"{safe(device.id)}  {safe(device.label)}  last seen {seen}{this}"


def _names(names: list[str]) -> str:
    return f"({len(names)}): " + ", ".join(names)


def _last_seen(member: MemberInfo, seconds: bool, tz: tzinfo | None) -> str:
    """`` (last seen 12:03)``, with the date when it was not today."""
    return f" (last seen {moment(member.last_seen, seconds=seconds, tz=tz)})" if member.last_seen else ""


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
