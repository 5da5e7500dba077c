"""What a line typed in the interactive client means: a message, or one of a few commands.

``exit`` (the seed's word) and ``/quit`` leave; a line that merely *contains*
"exit" is an ordinary message. ``//text`` sends ``/text``, so a message may start
with a slash.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    SEND = "send"
    QUIT = "quit"
    WHO = "who"
    HELP = "help"
    NOTHING = "nothing"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Command:
    """A parsed input line; ``text`` is the message for SEND, the command for UNKNOWN."""

    action: Action
    text: str = ""


_COMMANDS = {"/quit": Action.QUIT, "/exit": Action.QUIT, "/who": Action.WHO, "/help": Action.HELP}

HELP = """\
Commands:
  /who          who is online
  exit, /quit   leave the chat (Ctrl+D and Ctrl+C leave too)
  /help         this help
  //text        send a message that starts with '/'
Any other line is sent to everyone."""


def parse(line: str) -> Command:
    """Turn one typed line into a Command."""
    stripped = line.strip()
    if not stripped:
        return Command(Action.NOTHING)
    if stripped == "exit":
        return Command(Action.QUIT)
    if stripped.startswith("//"):
        return Command(Action.SEND, line.lstrip()[1:])
    if stripped.startswith("/"):
        word = stripped.split()[0].lower()
        action = _COMMANDS.get(word, Action.UNKNOWN)
        return Command(action, word if action is Action.UNKNOWN else "")
    return Command(Action.SEND, line)
