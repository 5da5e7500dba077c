"""The room commands as typed: /join, /part, /rooms, /invite, /msg, and what their mistakes say."""

from __future__ import annotations

import pytest

from chat_client.commands import Action, Command, parse, parse_room_command


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/join #dev", Command(Action.JOIN, room="#dev")),
        ("/join dev", Command(Action.JOIN, room="#dev")),  # the '#' may be left out
        ("/JOIN #Dev", Command(Action.JOIN, room="#dev")),  # names are lower case
        ("/join #dev private", Command(Action.JOIN, room="#dev", private=True)),
        ("/join #dev PRIVATE", Command(Action.JOIN, room="#dev", private=True)),
        ("/part", Command(Action.PART)),
        ("/part #dev", Command(Action.PART, room="#dev")),
        ("/rooms", Command(Action.ROOMS)),
        ("/invite bob", Command(Action.INVITE, name="bob")),
        ("/invite bob #ops", Command(Action.INVITE, name="bob", room="#ops")),
        ("/remove carol", Command(Action.REMOVE, name="carol")),
        ("/REMOVE carol #Ops", Command(Action.REMOVE, name="carol", room="#ops")),
        ("/msg bob hi there", Command(Action.MSG, "hi there", name="bob")),
        ("/msg bob  two  spaces ", Command(Action.MSG, "two  spaces", name="bob")),
    ],
)
def test_room_commands(line: str, expected: Command) -> None:
    """Each room command with its arguments, in both modes' parser."""
    assert parse(line) == expected
    assert parse_room_command(line) == expected


@pytest.mark.parametrize(
    ("line", "usage"),
    [
        ("/join", "usage: /join #room [private]"),
        ("/join #dev public", "usage: /join #room [private]"),
        ("/join #a #b", "usage: /join #room [private]"),
        ("/part #a #b", "usage: /part [#room]"),
        ("/rooms all", "no arguments; usage: /rooms"),
        ("/invite", "usage: /invite NAME [#room]"),
        ("/invite bob #a #b", "usage: /invite NAME [#room]"),
        ("/remove", "usage: /remove NAME [#room]"),
        ("/msg bob", "usage: /msg NAME text"),
        ("/msg", "usage: /msg NAME text"),
    ],
)
def test_room_commands_with_wrong_arguments_say_how_to_use_them(line: str, usage: str) -> None:
    assert parse(line) == Command(Action.USAGE, usage)


@pytest.mark.parametrize("line", ["/join #has.dot", "/part #" + "x" * 33, "/invite bob #a.b", "/join #"])
def test_a_bad_room_name_says_what_a_name_is(line: str) -> None:
    command = parse(line)
    assert command.action is Action.USAGE
    assert command.text.startswith("a room's name is '#' and 1-32 characters")


def test_bad_room_name_reason_is_the_protocols() -> None:
    command = parse("/join #has.dot")
    assert command == Command(
        Action.USAGE,
        "a room's name is '#' and 1-32 characters: letters a-z, digits, '_' or '-'; usage: /join #room [private]",
    )


@pytest.mark.parametrize("line", ["hello", "//join #dev", "/joined the team", "/who", "exit"])
def test_other_lines_are_no_room_commands(line: str) -> None:
    """A message, a literal slash, a word that merely starts like a command, the other commands."""
    assert parse_room_command(line) is None


def test_a_literal_slash_is_still_a_message() -> None:
    assert parse("//join #dev") == Command(Action.SEND, "/join #dev")
