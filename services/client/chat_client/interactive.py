"""Interactive mode (stdin is a terminal): prompts, a live chat screen, commands.

prompt_toolkit keeps the input line at the bottom; ``patch_stdout`` and
``print_formatted_text`` print incoming events above it without garbling what the
user is typing. Our own messages appear when the tracker's echo comes back, so the
screen shows the room's true order.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.utils import is_dumb_terminal

from chat_protocol import Leave, NameRefused, Say, Welcome, Who, check_name

from .commands import HELP, Action, parse
from .connection import Connection, SendFailed, connect
from .errors import EXIT_OK, NameRejected, TrackerGone
from .render import Fragments, error, event_line, name_list, name_style, notice, safe, uncolored

PASSWORD_PROMPT = "Enter server password: "

# How long to wait for the tracker's ``bye`` after ``leave`` before closing anyway.
LEAVE_TIMEOUT = 5.0


class Screen:
    """Prints lines above the prompt, in colour unless told not to."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def show(self, fragments: Fragments) -> None:
        print_formatted_text(FormattedText(fragments if self.color else uncolored(fragments)))

    def say(self, text: str) -> None:
        self.show([("", text)])


class Quit(Exception):
    """The user pressed Ctrl+C or Ctrl+D at a prompt before joining: stop quietly."""


async def ask(session: PromptSession[str], message: str, *, hidden: bool = False) -> str:
    """One answer from the user; Ctrl+C / Ctrl+D raise Quit."""
    try:
        return await session.prompt_async(message, is_password=hidden)
    except (KeyboardInterrupt, EOFError):
        raise Quit() from None


def ask_password_before_connecting() -> str | None:
    """On a dumb terminal (``TERM=dumb``), ask for the password with getpass, before connecting.

    prompt_toolkit's fallback for dumb terminals echoes what is typed, even with
    ``is_password``; getpass turns the terminal's echo off instead. It blocks, so it
    runs before the event loop starts. Elsewhere returns None: asked after connecting.
    """
    if not is_dumb_terminal():
        return None
    try:
        return getpass.getpass(PASSWORD_PROMPT) or ask_password_before_connecting()
    except (KeyboardInterrupt, EOFError):
        raise Quit() from None


async def ask_password() -> str:
    """The server password, typed without echo (a fresh session: no history to recall it from)."""
    while not (password := await ask(PromptSession(), PASSWORD_PROMPT, hidden=True)):
        pass
    return password


async def choose_name(connection: Connection, screen: Screen, first: str | None) -> Welcome:
    """Ask for a username until the tracker accepts one; every refusal says why."""
    session: PromptSession[str] = PromptSession()
    candidate = first
    while True:
        if candidate is None:
            candidate = (await ask(session, "Enter your username: ")).strip()
        if candidate and _acceptable(candidate, screen):
            try:
                welcome = (await connection.join(candidate)).message
                assert isinstance(welcome, Welcome)  # join returns only on a welcome
                return welcome
            except NameRejected as exc:
                screen.show(error(f"Name refused: {safe(exc.message)}"))
        candidate = None


def _acceptable(name: str, screen: Screen) -> bool:
    """Check the name locally first: the rules are shared, a round trip is not needed."""
    try:
        check_name(name)
    except NameRefused as exc:
        screen.show(error(f"Name refused: {exc}"))
        return False
    return True


def show_welcome(welcome: Welcome, screen: Screen) -> None:
    """The seed's greeting, who is online, and how to talk and leave."""
    if welcome.greeting:
        screen.show(notice(safe(welcome.greeting)))
    screen.show(notice(f"Hi {safe(welcome.name)}, you have been added to the server."))
    screen.show(notice(f"Online now {name_list(welcome.members)}"))
    screen.show(notice("Type a message and press Enter; /who, /help; exit or /quit to leave."))


async def show_events(connection: Connection, screen: Screen) -> None:
    """Print every event above the prompt until the tracker closes normally."""
    while (incoming := await connection.receive()) is not None:
        line = event_line(incoming.message, seconds=False)
        if line is not None:
            screen.show(line)


async def read_commands(connection: Connection, screen: Screen, name: str) -> None:
    """Read lines and act on them until the user leaves; the leave is sent before returning."""
    session: PromptSession[str] = PromptSession()
    prompt = FormattedText([(name_style(name) if screen.color else "", name), ("", "> ")])
    while True:
        try:
            line = await session.prompt_async(prompt)
        except (KeyboardInterrupt, EOFError):
            line = "/quit"
        command = parse(line)
        if command.action is Action.QUIT:
            screen.say("Exiting...")
            await connection.send(Leave())
            return
        if command.action is Action.SEND:
            if (reason := connection.unsendable(command.text)) is not None:
                screen.show(error(reason))
            else:
                await connection.send(Say(command.text))
        elif command.action is Action.WHO:
            await connection.send(Who())
        elif command.action is Action.HELP:
            screen.say(HELP)
        elif command.action is Action.UNKNOWN:
            screen.show(error(f"unknown command {safe(command.text)}; /help lists them"))


async def chat(connection: Connection, screen: Screen, name: str) -> None:
    """Run the screen and the prompt together until one side ends the session.

    Raises TrackerGone or Removed when the tracker ends it; returns after a normal leave.
    """
    receiver = asyncio.create_task(show_events(connection, screen))
    typist = asyncio.create_task(read_commands(connection, screen, name))
    try:
        await asyncio.wait({receiver, typist}, return_when=asyncio.FIRST_COMPLETED)
        if not receiver.done():
            # We sent ``leave`` (or could not send at all): either way the tracker's
            # close tells the end of the story; ``bye`` comes once all we sent is delivered.
            await asyncio.wait({receiver}, timeout=LEAVE_TIMEOUT)
    finally:
        typist.cancel()
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, SendFailed):
            await typist
    if receiver.cancelled():
        # No close in time. If we asked to leave, closing ourselves is a normal end.
        if typist.cancelled() or typist.exception() is not None:
            raise TrackerGone(None, "the tracker stopped answering")
        return
    receiver.result()


async def run(url: str, password: str | None, username: str | None, *, color: bool, timeout: float) -> int:
    """The whole interactive session; returns the exit status or raises a ClientError."""
    screen = Screen(color)
    with patch_stdout(raw=True):
        try:
            async with connect(url, password, timeout=timeout) as connection:
                # Connected first, asked second: an unreachable tracker is said before any typing.
                if not connection.authenticated:
                    await connection.authenticate(await ask_password())
                screen.show(notice("Password accepted."))
                welcome = await choose_name(connection, screen, username)
                show_welcome(welcome, screen)
                await chat(connection, screen, welcome.name)
        except Quit:
            pass
    return EXIT_OK
