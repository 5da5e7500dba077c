"""What a typed line means in the interactive client."""

from __future__ import annotations

import pytest

from chat_client.commands import Action, Command, parse


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("exit", Command(Action.QUIT)),
        ("  exit  ", Command(Action.QUIT)),
        ("/quit", Command(Action.QUIT)),
        ("/who", Command(Action.WHO)),
        ("/WHO", Command(Action.WHO)),
        ("/help", Command(Action.HELP)),
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
