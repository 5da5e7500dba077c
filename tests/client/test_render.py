"""How events are rendered: stable colours, local times, sanitised peer text."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

from chat_client.render import PALETTE, clock, event_line, name_style, plain, uncolored
from chat_protocol import (
    Announcement,
    Authenticated,
    Bye,
    ChatMessage,
    Error,
    Hello,
    Joined,
    Left,
    Limits,
    MemberInfo,
    Members,
    Moderation,
    Presence,
    Welcome,
)

TS = "2026-11-24T01:50:38.123Z"


def line(message: object) -> str:
    fragments = event_line(message, seconds=True, tz=UTC)  # type: ignore[arg-type]
    assert fragments is not None
    return plain(fragments)


def test_message_line() -> None:
    """A message is ``[HH:MM:SS] name: text``."""
    assert line(ChatMessage(seq=3, ts=TS, name="beta", text="And I am beta")) == "[01:50:38] beta: And I am beta"


def test_notice_lines() -> None:
    """Joins, leaves, welcomes, member lists and byes are ``*`` notices."""
    assert line(Joined(seq=4, ts=TS, name="gamma")) == "[01:50:38] * gamma joined"
    assert line(Left(seq=5, ts=TS, name="gamma", reason="exit")) == "[01:50:38] * gamma left"
    assert line(Left(seq=5, ts=TS, name="gamma", reason="lost")) == "[01:50:38] * gamma left (connection lost)"
    welcome = Welcome(seq=2, ts=TS, name="alpha", greeting="Hi", members=["alpha", "beta"], limits=Limits())
    assert line(welcome) == "[01:50:38] * welcome alpha; online now (2): alpha, beta"
    assert line(Bye(reason="left", message="Bye, alpha.")).endswith("] * Bye, alpha.")
    assert line(Bye(reason="shutdown")).endswith("] * bye (shutdown)")


def test_members_line_shows_long_idle_times() -> None:
    """The member list shows who is online, with idle times past a minute."""
    members = Members(members=[MemberInfo("alpha", TS, 1.0), MemberInfo("beta", TS, 300.0)])
    assert line(members).endswith("] * online now (2): alpha, beta (idle 5m)")


def test_members_line_shows_who_is_away() -> None:
    """A member whose connection dropped (it may still resume) is marked away."""
    members = Members(members=[MemberInfo("alpha", TS, 1.0), MemberInfo("beta", TS, 1.0, away=True)])
    assert line(members).endswith("] * online now (2): alpha, beta (away)")


def test_error_line() -> None:
    """A refusal is a ``!`` line with its message and code."""
    error = Error(code="too_long", message="message too long")
    assert line(error).endswith("] ! message too long (too_long)")


def test_handshake_frames_are_not_shown() -> None:
    """hello and authenticated are plumbing, not events a person reads."""
    assert event_line(Hello(version=1, authenticated=True), seconds=True) is None
    assert event_line(Authenticated(), seconds=True) is None


def test_peer_text_cannot_drive_the_terminal() -> None:
    """Control, line-breaking and bidi characters from peers are shown as escapes."""
    text = "\x1b[2J\x1b]0;pwned\x07line\nbreak\u202eevil\r"
    shown = line(ChatMessage(seq=1, ts=TS, name="mallory", text=text))
    assert shown == "[01:50:38] mallory: \\x1b[2J\\x1b]0;pwned\\x07line\\nbreak\\u202eevil\\r"
    assert all(char.isprintable() for char in shown)


def test_tracker_text_is_sanitised_too() -> None:
    """Even the tracker's own messages (bye, errors) are sanitised."""
    assert "\x1b" not in line(Bye(reason="shutdown", message="\x1b[31mred"))
    assert "\x1b" not in line(Error(code="x\x1b", message="\x1b[31mred"))


def test_local_time() -> None:
    """Times are the tracker's UTC timestamps converted to local time."""
    plus_two = timezone(timedelta(hours=2))
    assert clock(TS, seconds=True, tz=plus_two) == "03:50:38"
    assert clock(TS, seconds=False, tz=plus_two) == "03:50"
    assert clock(None, seconds=True, tz=UTC, now=datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)) == "12:00:05"


def test_name_colour_is_stable() -> None:
    """The same name always gets the same colour; lookalike spellings share it."""
    assert name_style("alpha") == name_style("alpha")
    assert name_style("alpha") == name_style("ALPHA") == name_style("a1pha")
    assert name_style("alpha").removeprefix("bold ") in PALETTE


def test_name_colour_is_stable_across_processes() -> None:
    """Colours do not depend on Python's per-process hash salt."""
    code = "from chat_client.render import name_style; print(name_style('beta'))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert outputs == {name_style("beta") + "\n"}


def test_names_spread_over_the_palette() -> None:
    """Different names mostly get different colours."""
    styles = {name_style(f"user{index}") for index in range(100)}
    assert len(styles) >= len(PALETTE) - 2


def test_uncolored_drops_styles() -> None:
    """Without colour a line keeps its text and loses every style."""
    fragments = event_line(ChatMessage(seq=1, ts=TS, name="beta", text="hi"), seconds=False, tz=UTC)
    assert fragments is not None
    assert all(style == "" for style, _ in uncolored(fragments))
    assert plain(uncolored(fragments)) == plain(fragments) == "[01:50] beta: hi"


UNTIL = "2026-11-24T02:50:38.123Z"


def test_moderation_lines() -> None:
    """Each moderation event is a ``*`` notice: who, what, for how long, why."""
    kick = Moderation(seq=6, ts=TS, action="kick", name="alpha", reason="spamming")
    assert line(kick) == "[01:50:38] * alpha was removed by a moderator: spamming"
    assert (
        line(Moderation(seq=6, ts=TS, action="kick", name="alpha")) == "[01:50:38] * alpha was removed by a moderator"
    )
    mute = Moderation(seq=7, ts=TS, action="mute", name="alpha", reason="cool off", seconds=60.0, until=UNTIL)
    assert line(mute) == "[01:50:38] * alpha is muted for 60 s (until 02:50:38): cool off"
    unmute = Moderation(seq=8, ts=TS, action="mute", name="alpha", seconds=0.0)
    assert line(unmute) == "[01:50:38] * alpha may speak again"
    ban = Moderation(seq=9, ts=TS, action="ban", name="alpha", reason="trolling", id="b1a2b3c4")
    assert line(ban) == "[01:50:38] * alpha is banned for good (ban b1a2b3c4): trolling"
    address = Moderation(seq=10, ts=TS, action="ban", seconds=3600.0, until=UNTIL, id="b5e6f7a8")
    assert line(address) == "[01:50:38] * an address is banned for 3600 s (ban b5e6f7a8)"
    assert line(Moderation(seq=11, ts=TS, action="unban", id="b1a2b3c4")) == "[01:50:38] * ban b1a2b3c4 was lifted"
    assert line(Moderation(seq=12, ts=TS, action="frobnicate", name="alpha")).endswith(
        "* a moderator acted (frobnicate) on alpha"
    )


def test_mute_end_on_another_day_has_its_date() -> None:
    """A mute that ends on another day than it was made says which day."""
    mute = Moderation(seq=7, ts=TS, action="mute", name="alpha", seconds=86400.0, until="2026-11-25T01:50:38.123Z")
    fragments = event_line(mute, seconds=False, tz=UTC)
    assert fragments is not None
    assert plain(fragments) == "[01:50] * alpha is muted for 86400 s (until 2026-11-25 01:50)"


def test_announcement_line() -> None:
    """An announcement stands out from the other notices."""
    fragments = event_line(Announcement(seq=13, ts=TS, text="maintenance at noon"), seconds=True, tz=UTC)
    assert fragments is not None
    assert plain(fragments) == "[01:50:38] * Announcement: maintenance at noon"
    assert fragments[-1][0] == "bold"


def test_moderator_text_is_sanitised() -> None:
    """Names, reasons, ids and announcements under a moderator's control cannot drive the terminal."""
    evil = "\x1b[2J\u202e"
    shown = [
        line(Moderation(seq=1, ts=TS, action="kick", name=evil, reason=evil)),
        line(Moderation(seq=1, ts=TS, action="ban", name="a", id=evil, reason=evil)),
        line(Moderation(seq=1, ts=TS, action=evil, name="a")),
        line(Announcement(seq=1, ts=TS, text=evil)),
    ]
    assert all("\x1b" not in text and "\u202e" not in text and text.isprintable() for text in shown)


def test_muted_error_in_local_time() -> None:
    """A refused message of a muted member says until when, in local time."""
    refused = Error(
        code="muted", message=f"you are muted by a moderator until {UNTIL}; your message was not sent", id="m1"
    )
    fragments = event_line(refused, seconds=False, tz=timezone(timedelta(hours=2)))
    assert fragments is not None
    # An error has no ts of its own: the date shows unless the mute ends today.
    shown = re.sub(r"until \d{4}-\d\d-\d\d ", "until ", plain(fragments))
    assert shown.endswith("] ! you are muted by a moderator until 04:50; your message was not sent (muted)")


def test_farewell_errors_are_left_to_the_bye() -> None:
    """The error before a kick's or ban's bye is not shown: the bye and the exit line say the same."""
    assert event_line(Error(code="kicked", message="you were removed by a moderator"), seconds=True) is None
    assert event_line(Error(code="banned", message="you are banned by a moderator"), seconds=True) is None


def test_presence_and_part_lines() -> None:
    """A registered member going offline or coming back, and leaving for good, are notices like joins."""
    assert line(Presence(seq=6, ts=TS, name="alpha", online=False)) == "[01:50:38] * alpha is offline"
    assert line(Presence(seq=7, ts=TS, name="alpha", online=True)) == "[01:50:38] * alpha is online"
    assert line(Left(seq=8, ts=TS, name="alpha", reason="part")) == "[01:50:38] * alpha left for good"


def test_members_line_lists_offline_members_with_when_they_were_last_seen() -> None:
    """``who`` shows who is online, then the registered members who are offline and when they were last here."""
    online = MemberInfo("beta", TS, 1.0)
    today = datetime.now(UTC).strftime("%Y-%m-%dT09:15:00.000Z")
    offline = MemberInfo("alpha", today, 0.0, online=False, last_seen=today, registered=True)
    long_ago = MemberInfo("gamma", TS, 0.0, online=False, last_seen=TS, registered=True)
    assert line(Members(members=[online, offline, long_ago])).endswith(
        "] * online now (1): beta; offline members (2): alpha (last seen 09:15:00), "
        "gamma (last seen 2026-11-24 01:50:38)"
    )
