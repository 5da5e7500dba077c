"""How events are rendered: stable colours, local times, sanitised peer text."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

from chat_client.render import PALETTE, clock, event_line, name_style, plain, uncolored
from chat_protocol import (
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
