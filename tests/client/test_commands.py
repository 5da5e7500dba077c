"""What a typed line means in the interactive client, moderation commands included."""

from __future__ import annotations

from typing import Any

import pytest

from chat_client.commands import Action, Command, Moderate, Verb, help_text, parse, parse_moderation


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("exit", Command(Action.QUIT)),
        ("  exit  ", Command(Action.QUIT)),
        ("/quit", Command(Action.QUIT)),
        ("/who", Command(Action.WHO)),
        ("/WHO", Command(Action.WHO)),
        ("/help", Command(Action.HELP)),
        ("/part", Command(Action.PART)),
        ("", Command(Action.NOTHING)),
        ("   ", Command(Action.NOTHING)),
        ("/frobnicate now", Command(Action.UNKNOWN, "/frobnicate")),
        ("//shrug", Command(Action.SEND, "/shrug")),
        ("hello", Command(Action.SEND, "hello")),
    ],
)
def test_parse(line: str, expected: Command) -> None:
    """Commands are recognised; everything else is a message."""
    assert parse(line) == expected


@pytest.mark.parametrize("line", ["I will exit soon", "exit now", "Exit", "exit."])
def test_exit_inside_a_line_is_a_message(line: str) -> None:
    """A line that merely contains "exit" is an ordinary message."""
    assert parse(line) == Command(Action.SEND, line)


def moderate(verb: Verb, target: str = "", **fields: Any) -> Command:
    return Command(Action.MODERATE, request=Moderate(verb, target, **fields))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/kick beta", moderate(Verb.KICK, "beta")),
        ("/kick beta spamming  the room ", moderate(Verb.KICK, "beta", reason="spamming  the room")),
        ("/KICK beta", moderate(Verb.KICK, "beta")),
        ("/mute beta 60", moderate(Verb.MUTE, "beta", seconds=60.0)),
        ("/mute beta 1.5 cool off", moderate(Verb.MUTE, "beta", seconds=1.5, reason="cool off")),
        ("/mute beta 0", moderate(Verb.MUTE, "beta", seconds=0.0)),
        ("/ban beta", moderate(Verb.BAN, "beta")),
        ("/ban beta trolling again", moderate(Verb.BAN, "beta", reason="trolling again")),
        ("/ban beta 3600 trolling", moderate(Verb.BAN, "beta", seconds=3600.0, reason="trolling")),
        ("/ban beta 3 strikes", moderate(Verb.BAN, "beta", seconds=3.0, reason="strikes")),  # a number is SECONDS
        ("/ban beta nan", moderate(Verb.BAN, "beta", reason="nan")),  # not a finite number: a reason
        ("/ban 10.0.0.0/8 60", moderate(Verb.BAN, "10.0.0.0/8", seconds=60.0)),
        ("/unban b1a2b3c4", moderate(Verb.UNBAN, "b1a2b3c4")),
        ("/bans", moderate(Verb.BANS)),
        (
            "/announce  maintenance at  noon ",
            Command(Action.MODERATE, request=Moderate(Verb.ANNOUNCE, text="maintenance at  noon")),
        ),
    ],
)
def test_moderation_commands(line: str, expected: Command) -> None:
    """With --admin, the moderation commands and their arguments are recognised."""
    assert parse(line, admin=True) == expected
    assert parse_moderation(line) == expected


@pytest.mark.parametrize(
    ("line", "usage"),
    [
        ("/kick", "usage: /kick NAME [reason]"),
        ("/mute beta", "usage: /mute NAME SECONDS [reason]"),
        ("/mute beta soon", "SECONDS must be a number, 0 or more; usage: /mute NAME SECONDS [reason]"),
        ("/mute beta -5", "SECONDS must be a number, 0 or more; usage: /mute NAME SECONDS [reason]"),
        ("/ban", "usage: /ban NAME|ADDRESS [SECONDS] [reason]"),
        (
            "/ban beta 0",
            "SECONDS must be more than 0 (leave it out to ban for good); usage: /ban NAME|ADDRESS [SECONDS] [reason]",
        ),
        ("/unban", "usage: /unban ID"),
        ("/unban b1 b2", "one ban id only; usage: /unban ID"),
        ("/bans all", "no arguments; usage: /bans"),
        ("/announce   ", "usage: /announce TEXT"),
    ],
)
def test_moderation_usage(line: str, usage: str) -> None:
    """A moderation command with missing or bad arguments says how to use it, and is not sent."""
    assert parse(line, admin=True) == Command(Action.USAGE, usage)


@pytest.mark.parametrize("line", ["/kick beta", "/bans", "/announce hi"])
def test_moderation_commands_need_admin(line: str) -> None:
    """Without --admin the moderation commands are unknown commands, as before."""
    assert parse(line).action is Action.UNKNOWN


@pytest.mark.parametrize("line", ["hello", "/who", "//kick beta", "/kickstart", " exit"])
def test_other_lines_are_not_moderation(line: str) -> None:
    """Scripted --admin runs only the moderation commands; every other line is what it was."""
    assert parse_moderation(line) is None
    assert parse(line, admin=True) == parse(line)


def test_address_or_name() -> None:
    """``/ban`` takes an address or network where a name would be."""
    assert Moderate(Verb.BAN, "10.0.0.5").is_address and Moderate(Verb.BAN, "2001:db8::/32").is_address
    assert not Moderate(Verb.BAN, "beta").is_address and not Moderate(Verb.KICK, "10.0.0.5").is_address


def test_help_lists_moderation_only_for_admins() -> None:
    """/help lists the moderator commands only in admin mode."""
    assert "/kick" not in help_text(admin=False)
    assert all(f"/{verb.value} " in help_text(admin=True) for verb in Verb)


def test_help_says_how_exit_and_part_differ_for_a_registered_name() -> None:
    """exit only takes a registered member offline; /part ends the membership."""
    text = help_text(admin=False)
    assert "/part" in text and "leave for good" in text
    assert "you stay a member" in text
