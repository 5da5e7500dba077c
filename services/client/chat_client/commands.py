"""What a typed line means in the interactive client: a message, or one of a few commands.

The room commands (``/join``, ``/part``, ``/rooms``, ``/invite``, ``/remove``, ``/msg``) are
recognised in both modes (``parse_room_command``); which room a bare ``/part``,
``/invite`` or ``/remove`` means is the caller's to decide, from the room it writes in.
``exit`` (the seed's word) and ``/quit`` leave; a line that merely *contains*
"exit" is an ordinary message. ``//text`` sends ``/text``, so a message may start
with a slash. With ``--admin`` the moderation commands (``/kick``, ``/mute``,
``/ban``, ``/unban``, ``/bans``, ``/announce``) are recognised too, in both modes;
without it they are unknown commands (interactive) or ordinary messages (scripted).
"""

from __future__ import annotations

import enum
import ipaddress
import math
from dataclasses import dataclass

from chat_protocol import (
    INVITE_COMMAND,
    JOIN_COMMAND,
    MSG_COMMAND,
    PART_COMMAND,
    REMOVE_COMMAND,
    ROOMS_COMMAND,
    ProtocolError,
    room_name,
)

from .errors import BadArguments


class Action(enum.Enum):
    SEND = "send"
    QUIT = "quit"
    PART = "part"  # ``room``: leave that room; none: the room written in (the default room: leave for good)
    JOIN = "join"  # enter ``room`` (``private``: create it private) and write there
    ROOMS = "rooms"  # list the rooms
    INVITE = "invite"  # let ``name`` into ``room`` (none: the room written in)
    REMOVE = "remove"  # take ``name`` out of ``room`` (none: the room written in), as its owner
    MSG = "msg"  # a direct message: ``text`` to ``name`` alone
    WHO = "who"
    REGISTER = "register"
    DEVICES = "devices"  # list the devices signed in to her account
    SIGN_OUT = "sign_out"  # sign one of them out; ``text`` is its id
    HELP = "help"
    MODERATE = "moderate"
    USAGE = "usage"  # a moderation command with missing or bad arguments; ``text`` says how to use it
    NOTHING = "nothing"
    UNKNOWN = "unknown"


class Verb(enum.Enum):
    """The moderation commands, each one ``/admin`` REST call."""

    KICK = "kick"
    MUTE = "mute"
    BAN = "ban"
    UNBAN = "unban"
    BANS = "bans"
    ANNOUNCE = "announce"


@dataclass(frozen=True)
class Moderate:
    """A moderation command's arguments: ``target`` is a name (or, for ``/ban``, an address
    or network; for ``/unban``, a ban id); ``seconds`` None means for ever (``/ban``)."""

    verb: Verb
    target: str = ""
    seconds: float | None = None
    reason: str = ""
    text: str = ""  # what ``/announce`` says

    @property
    def is_address(self) -> bool:
        """A ``/ban`` of an address or network (``10.0.0.5``, ``10.0.0.0/8``, ``::1``) rather than a name."""
        return self.verb is Verb.BAN and _is_network(self.target)


@dataclass(frozen=True)
class Command:
    """A parsed input line; ``text`` is the message for SEND and MSG, the command for UNKNOWN, the usage for USAGE.

    ``room`` (a room's name, ``#`` and lower case) and ``name`` are the room commands' arguments.
    """

    action: Action
    text: str = ""
    request: Moderate | None = None
    room: str = ""
    name: str = ""
    private: bool = False


_COMMANDS = {
    "/quit": Action.QUIT,
    "/exit": Action.QUIT,
    "/who": Action.WHO,
    "/help": Action.HELP,
    "/register": Action.REGISTER,
    "/devices": Action.DEVICES,
    "/signout": Action.SIGN_OUT,
}

ROOM_USAGE = {
    JOIN_COMMAND: "/join #room [private]",
    PART_COMMAND: "/part [#room]",
    ROOMS_COMMAND: "/rooms",
    INVITE_COMMAND: "/invite NAME [#room]",
    REMOVE_COMMAND: "/remove NAME [#room]",
    MSG_COMMAND: "/msg NAME text",
}

USAGE = {
    Verb.KICK: "/kick NAME [reason]",
    Verb.MUTE: "/mute NAME SECONDS [reason]",
    Verb.BAN: "/ban NAME|ADDRESS [SECONDS] [reason]",
    Verb.UNBAN: "/unban ID",
    Verb.BANS: "/bans",
    Verb.ANNOUNCE: "/announce TEXT",
}

HELP = """\
Commands:
  /who          who is in the room you write in: online, then the registered
                members who are offline
  /register     make your name yours: asks for a passphrase (twice, hidden) that
                joining under it will take from then on
  exit, /quit   leave the chat (Ctrl+D and Ctrl+C leave too); with a registered name you
                only go offline: you stay a member, and what is said meanwhile is
                shown when you come back
  /devices      the devices signed in to your registered name (this one marked), with
                their ids and when each was last seen
  /signout ID   sign the device ID out: its token stops working and its client is
                closed; it signs in again only with the passphrase
  /join #room   enter #room (made, public, if there is none; /join #room private makes
                a private one) and write there; /join of a room you are in switches to it
  /part [#room] leave #room, or the room you write in; in the default room /part
                is to leave for good: a registered name stops being a member (its
                unread events are not kept for you); for a guest the same as exit
  /rooms        the public rooms and yours, with their members and your unread counts
  /invite NAME [#room]  let NAME into #room (or the room you write in)
  /remove NAME [#room]  take NAME out of a room you made (#room, or the room you write in)
  /msg NAME text  say text to NAME alone (a direct message)
  /help         this help
  //text        send a message that starts with '/'
Any other line is sent to the room you write in (the prompt names it)."""

ADMIN_HELP = """\
Moderator commands (--admin):
  /kick NAME [reason]              remove NAME from the room (its client does not come back)
  /mute NAME SECONDS [reason]      refuse NAME's messages for SECONDS (0: unmute)
  /ban NAME [SECONDS] [reason]     remove NAME and refuse it (lookalikes too) for SECONDS, or for good
  /ban ADDRESS [SECONDS] [reason]  the same for an address or network (10.0.0.5, 10.0.0.0/8)
  /unban ID                        lift a ban
  /bans                            the bans in force, with their expiry
  /announce TEXT                   a notice from the moderators to everyone"""


def help_text(admin: bool) -> str:
    """``/help``'s answer; the moderator commands only in admin mode."""
    return f"{HELP}\n{ADMIN_HELP}" if admin else HELP


def parse(line: str, *, admin: bool = False) -> Command:
    """Turn one typed line into a Command (moderation commands only when ``admin``)."""
    stripped = line.strip()
    if not stripped:
        return Command(Action.NOTHING)
    if stripped == "exit":
        return Command(Action.QUIT)
    if stripped.startswith("//"):
        return Command(Action.SEND, line.lstrip()[1:])
    if admin and (moderation := parse_moderation(line)) is not None:
        return moderation
    if (room_command := parse_room_command(line)) is not None:
        return room_command
    if stripped.startswith("/"):
        word, rest = _split(stripped)
        action = _COMMANDS.get(word.lower(), Action.UNKNOWN)
        if action is Action.SIGN_OUT:
            return _sign_out(rest)
        return Command(action, word.lower() if action is Action.UNKNOWN else "")
    return Command(Action.SEND, line)


def _sign_out(rest: str) -> Command:
    """``/signout ID``: exactly one device id."""
    words = rest.split()
    if len(words) != 1:
        return Command(Action.USAGE, "usage: /signout ID (/devices lists the ids)")
    return Command(Action.SIGN_OUT, words[0])


def parse_room_command(line: str) -> Command | None:
    """The room command ``line`` is (USAGE when its arguments are wrong), or None for any other line."""
    word, rest = _split(line)
    word = word.lower()
    if word not in ROOM_USAGE:
        return None
    try:
        return _ROOM_ARGUMENTS[word](rest)
    except BadArguments as bad:
        why = f"{bad}; " if str(bad) else ""
        return Command(Action.USAGE, f"{why}usage: {ROOM_USAGE[word]}")


def _room(word: str) -> str:
    """``word`` as a room's name (``#`` added when missing), or BadArguments saying what a name is."""
    try:
        return room_name(word)
    except ProtocolError as refused:
        raise BadArguments(refused.message) from None


def _join(rest: str) -> Command:
    words = rest.split()
    if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() != "private"):
        raise BadArguments("")
    return Command(Action.JOIN, room=_room(words[0]), private=len(words) == 2)


def _part(rest: str) -> Command:
    words = rest.split()
    if len(words) > 1:
        raise BadArguments("")
    return Command(Action.PART, room=_room(words[0]) if words else "")


def _rooms(rest: str) -> Command:
    if rest:
        raise BadArguments("no arguments")
    return Command(Action.ROOMS)


def _invite(rest: str) -> Command:
    return _name_and_room(Action.INVITE, rest)


def _remove(rest: str) -> Command:
    return _name_and_room(Action.REMOVE, rest)


def _name_and_room(action: Action, rest: str) -> Command:
    """``NAME [#room]``: ``/invite``'s and ``/remove``'s arguments."""
    words = rest.split()
    if not 1 <= len(words) <= 2:
        raise BadArguments("")
    return Command(action, name=words[0], room=_room(words[1]) if len(words) == 2 else "")


def _msg(rest: str) -> Command:
    name, text = _split(rest)
    if not text:
        raise BadArguments("")
    return Command(Action.MSG, text, name=name)


_ROOM_ARGUMENTS = {
    JOIN_COMMAND: _join,
    PART_COMMAND: _part,
    ROOMS_COMMAND: _rooms,
    INVITE_COMMAND: _invite,
    REMOVE_COMMAND: _remove,
    MSG_COMMAND: _msg,
}


def parse_moderation(line: str) -> Command | None:
    """The moderation command ``line`` is (MODERATE, or USAGE when its arguments are wrong), or None."""
    words = line.strip().split(maxsplit=1)
    if not words or not words[0].startswith("/"):
        return None
    try:
        verb = Verb(words[0][1:].lower())
    except ValueError:
        return None
    rest = words[1] if len(words) > 1 else ""
    try:
        return Command(Action.MODERATE, request=_ARGUMENTS[verb](rest))
    except BadArguments as bad:
        why = f"{bad}; " if str(bad) else ""
        return Command(Action.USAGE, f"{why}usage: {USAGE[verb]}")


def _kick(rest: str) -> Moderate:
    name, reason = _target(rest)
    return Moderate(Verb.KICK, name, reason=reason)


def _mute(rest: str) -> Moderate:
    name, after = _target(rest)
    word, reason = _split(after)
    seconds = _number(word)
    if seconds is None or seconds < 0:
        raise BadArguments("SECONDS must be a number, 0 or more" if word else "")
    return Moderate(Verb.MUTE, name, seconds=seconds, reason=reason)


def _ban(rest: str) -> Moderate:
    target, after = _target(rest)
    word, reason = _split(after)
    seconds = _number(word)
    if seconds is None:  # no duration: for good, and the whole remainder is the reason
        return Moderate(Verb.BAN, target, reason=after)
    if seconds <= 0:
        raise BadArguments("SECONDS must be more than 0 (leave it out to ban for good)")
    return Moderate(Verb.BAN, target, seconds=seconds, reason=reason)


def _unban(rest: str) -> Moderate:
    ban_id, after = _target(rest)
    if after:
        raise BadArguments("one ban id only")
    return Moderate(Verb.UNBAN, ban_id)


def _bans(rest: str) -> Moderate:
    if rest.strip():
        raise BadArguments("no arguments")
    return Moderate(Verb.BANS)


def _announce(rest: str) -> Moderate:
    if not rest.strip():
        raise BadArguments("")
    return Moderate(Verb.ANNOUNCE, text=rest.strip())


_ARGUMENTS = {
    Verb.KICK: _kick,
    Verb.MUTE: _mute,
    Verb.BAN: _ban,
    Verb.UNBAN: _unban,
    Verb.BANS: _bans,
    Verb.ANNOUNCE: _announce,
}


def _split(text: str) -> tuple[str, str]:
    """The first word of ``text`` and the rest (stripped; inner spacing kept)."""
    words = text.strip().split(maxsplit=1)
    return (words[0] if words else "", words[1].strip() if len(words) > 1 else "")


def _target(text: str) -> tuple[str, str]:
    target, rest = _split(text)
    if not target:
        raise BadArguments("")
    return target, rest


def _number(word: str) -> float | None:
    """``word`` as a finite number of seconds, or None if it is not one."""
    try:
        value = float(word)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True
