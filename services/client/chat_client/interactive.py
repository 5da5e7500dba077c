"""Interactive mode (stdin is a terminal): prompts, a live chat screen, commands.

prompt_toolkit keeps the input line at the bottom; ``patch_stdout`` and
``print_formatted_text`` print incoming events above it without garbling what the
user is typing. Our own messages appear when the tracker's echo comes back, so the
screen shows the room's true order.

When the connection is lost, ``link`` gets it back underneath: the prompt keeps
running (the line being typed is kept), the notices print above it, and lines
entered meanwhile are kept (up to ``resume.MAX_WAITING``) and sent once back.

With ``--admin`` the moderation commands go to the tracker's ``/admin`` API
(``moderator``), which does not depend on the WebSocket being up.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
from collections.abc import Awaitable, Callable

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.utils import is_dumb_terminal

from chat_protocol import ListDevices, NameRefused, Register, SignOut, Welcome, Who, check_name, passphrase_problem

from .commands import Action, Command, help_text, parse
from .config import header_safe
from .connection import Connection, Incoming
from .errors import EXIT_OK, NameRejected, Quit, TrackerGone
from .items import Notice
from .link import Enter, Link, Rejoin
from .moderator import Moderator
from .render import Fragments, error, event_line, name_list, name_style, notice, safe, uncolored
from .room_actions import ROOM_ACTIONS, carry_out
from .signin import AskPassphrase, Keyring, sign_in

PASSWORD_PROMPT = "Enter server password: "
PASSPHRASE_PROMPT = "Passphrase: "
NEW_PASSPHRASE_PROMPT = "New passphrase: "
AGAIN_PROMPT = "The same passphrase again: "
ADMIN_PASSWORD_PROMPT = "Enter admin password: "

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


def ask_admin_password_before_connecting() -> str | None:
    """``--admin`` on a dumb terminal: the admin password with getpass (see above); elsewhere None."""
    if not is_dumb_terminal():
        return None
    try:
        password = getpass.getpass(ADMIN_PASSWORD_PROMPT)
    except (KeyboardInterrupt, EOFError):
        raise Quit() from None
    return password if password and header_safe(password) else ask_admin_password_before_connecting()


async def ask_admin_password(screen: Screen) -> str:
    """The admin password, typed without echo; it must be able to travel in an HTTP header."""
    while True:
        password = await ask(PromptSession(), ADMIN_PASSWORD_PROMPT, hidden=True)
        if password and header_safe(password):
            return password
        if password:
            screen.show(error("the admin password must be printable ASCII (it travels in an HTTP header)"))


async def ask_password() -> str:
    """The server password, typed without echo (a fresh session: no history to recall it from)."""
    while not (password := await ask(PromptSession(), PASSWORD_PROMPT, hidden=True)):
        pass
    return password


async def choose_name(connection: Connection, screen: Screen, first: str | None, keyring: Keyring) -> Incoming:
    """Ask for a username until the tracker accepts one; every refusal says why. Returns the welcome."""
    session: PromptSession[str] = PromptSession()
    answer = lambda: ask(session, "Enter your username: ")  # noqa: E731
    return await pick_name(connection, screen, first, answer, keyring, passphrase_asker(screen))


def passphrase_asker(screen: Screen) -> AskPassphrase:
    """Asks for a registered name's passphrase, hidden, having said why; empty: choose another name."""

    async def ask_passphrase(refusal: NameRejected) -> str:
        if refusal.code == "bad_passphrase":
            screen.show(error("Wrong passphrase."))
        elif refusal.code == "bad_device_token":
            screen.show(notice("This device was signed out: enter the passphrase (nothing: choose another name)."))
        else:
            screen.show(notice("This name is registered: enter its passphrase (nothing: choose another name)."))
        return await ask(PromptSession(), PASSPHRASE_PROMPT, hidden=True)

    return ask_passphrase


async def pick_name(
    connection: Connection,
    screen: Screen,
    first: str | None,
    answer: Callable[[], Awaitable[str]],
    keyring: Keyring,
    ask_passphrase: AskPassphrase | None = None,
) -> Incoming:
    """Try ``first``, then each ``answer()``, until the tracker accepts one (signed in, if it is registered)."""
    candidate = first
    while True:
        if candidate is None:
            candidate = (await answer()).strip()
        if candidate and _acceptable(candidate, screen):
            try:
                return await sign_in(connection, candidate, keyring, ask_passphrase)
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


def show_welcome(welcome: Welcome, screen: Screen, admin: bool = False) -> None:
    """The seed's greeting, who is online, and how to talk and leave."""
    if welcome.greeting:
        screen.show(notice(safe(welcome.greeting)))
    screen.show(notice(f"Hi {safe(welcome.name)}, you have been added to the server."))
    screen.show(notice(f"Online now {name_list(welcome.members)}"))
    leaving = (
        "exit goes offline (you stay a member), /part leaves for good"
        if welcome.registered
        else "exit or /quit to leave"
    )
    screen.show(notice(f"Type a message and press Enter; /who, /help; {leaving}."))
    if admin:
        screen.show(notice("Moderator mode: /help lists /kick, /mute, /ban, /unban, /bans, /announce."))


def entrance(screen: Screen, first: str | None, keyring: Keyring, moderator: Moderator | None = None) -> Enter:
    """The first join: the password if the header did not do, the admin password
    (``--admin``) if not given, then a name, then the greeting."""

    async def enter(connection: Connection) -> Incoming:
        # Connected first, asked second: an unreachable tracker is said before any typing.
        if not connection.authenticated:
            await connection.authenticate(await ask_password())
        screen.show(notice("Password accepted."))
        if moderator is not None and moderator.password is None:
            moderator.password = await ask_admin_password(screen)
        incoming = await choose_name(connection, screen, first, keyring)
        assert isinstance(incoming.message, Welcome)  # join returns only on a welcome
        show_welcome(incoming.message, screen, admin=moderator is not None)
        return incoming

    return enter


async def show_events(link: Link, screen: Screen, redraw: Callable[[], None] = lambda: None) -> None:
    """Print every event and notice above the prompt until the tracker closes normally; the room view
    follows each event before it is shown (the prefix depends on it), the prompt is redrawn after it."""
    while (item := await link.receive()) is not None:
        if isinstance(item, Notice):
            screen.show(notice(item.text))
            continue
        link.view.take(item.message)
        line = event_line(item.message, seconds=False, view=link.view)
        if line is not None:
            screen.show(line)
            link.seen(item.message)
        redraw()


class Typist:
    """The chat prompt; mid-chat it may be asked for a new username (a fresh join was refused).

    One prompt for both, so the line being typed survives a reconnection and no second
    prompt fights the first for the terminal: while a name is wanted, the prompt says so
    and the next line entered is the answer.
    """

    def __init__(self, screen: Screen, keyring: Keyring, moderator: Moderator | None = None) -> None:
        self._screen = screen
        self._keyring = keyring
        self._moderator = moderator
        self._session: PromptSession[str] = PromptSession()
        self._wanted: asyncio.Future[str] | None = None
        self._link: Link | None = None

    async def ask_name(self) -> str:
        """The next line typed, as a username; raises Quit if the user leaves instead."""
        self._wanted = asyncio.get_running_loop().create_future()
        self._session.app.invalidate()
        try:
            return await self._wanted
        finally:
            self._wanted = None
            self._session.app.invalidate()

    def _prompt(self) -> FormattedText:
        if self._wanted is not None or self._link is None:
            return FormattedText([("", "Enter your username: ")])
        name = self._link.name
        status = self._link.view.status()  # the room written in, the others' unread counts
        return FormattedText([(name_style(name) if self._screen.color else "", name), ("", f"{status}> ")])

    def redraw(self) -> None:
        """The prompt again: the room or the unread counts may have changed."""
        self._session.app.invalidate()

    async def run(self, link: Link) -> None:
        """Read lines and act on them until the user leaves; the leave is sent before returning."""
        self._link = link
        while True:
            try:
                line = await self._session.prompt_async(self._prompt)
            except (KeyboardInterrupt, EOFError):
                line = "/quit"
            command = parse(line, admin=self._moderator is not None)
            if self._wanted is not None and not self._wanted.done():
                if command.action is Action.QUIT:
                    self._wanted.set_exception(Quit())
                    return
                self._wanted.set_result(line)
            elif command.action is Action.REGISTER:
                await register(link, self._screen, self._keyring)
            elif not await act(link, self._screen, command, self._moderator):
                return


async def register(link: Link, screen: Screen, keyring: Keyring) -> None:
    """``/register``: a passphrase, typed twice without echo, sent to make our name ours."""
    try:
        passphrase = await ask(PromptSession(), NEW_PASSPHRASE_PROMPT, hidden=True)
        problem = passphrase_problem(passphrase)
        if problem is not None:
            screen.show(error(f"{problem[1]}; nothing registered"))
            return
        if await ask(PromptSession(), AGAIN_PROMPT, hidden=True) != passphrase:
            screen.show(error("the two passphrases differ; nothing registered"))
            return
    except Quit:  # Ctrl+C or Ctrl+D at the passphrase: registering is called off, not the chat
        screen.show(error("nothing registered"))
        return
    if not await link.request(Register(passphrase, keyring.label)):
        screen.show(error("not connected: /register not sent"))
        return
    keyring.passphrase = passphrase  # a reconnection that has to join afresh signs in with it


# Commands answered by the tracker with an event: the word that names them, and the frame they send.
_REQUESTS: dict[Action, tuple[str, Callable[[Link, Command], Who | ListDevices | SignOut]]] = {
    Action.WHO: ("/who", lambda link, _: Who(link.view.current)),  # who is in the room written in
    Action.DEVICES: ("/devices", lambda *_: ListDevices()),
    Action.SIGN_OUT: ("/signout", lambda _, command: SignOut(command.text)),
}


async def act(link: Link, screen: Screen, command: Command, moderator: Moderator | None = None) -> bool:
    """Do what one typed line says; False once the user has left."""
    # A bare /part in the default room is what it always was: leaving for good.
    parting = command.action is Action.PART and not command.room and link.view.current is None
    if command.action is Action.QUIT or parting:
        screen.say("Leaving for good..." if parting else "Exiting...")
        await link.leave(part=parting)
        return False
    if command.action in (Action.SEND, Action.MSG):
        to = command.name if command.action is Action.MSG else None
        room = None if to is not None else link.view.current
        refusal = link.unsendable(command.text) or await link.offer(command.text, room, to)
        if refusal is not None:
            screen.show(error(refusal))
    elif command.action in ROOM_ACTIONS:
        if (refusal := await carry_out(link, command, wait=False)) is not None:
            screen.show(error(refusal))
    elif command.action in _REQUESTS:
        word, request = _REQUESTS[command.action]
        if not await link.request(request(link, command)):
            screen.show(error(f"not connected: {word} not sent"))
    elif command.action is Action.HELP:
        screen.say(help_text(admin=moderator is not None))
    elif command.action is Action.MODERATE and moderator is not None and command.request is not None:
        for line in await moderator.perform(command.request):
            screen.show(line)
    elif command.action is Action.USAGE:
        screen.show(error(command.text))
    elif command.action is Action.UNKNOWN:
        screen.show(error(f"unknown command {safe(command.text)}; /help lists them"))
    return True


async def chat(link: Link, screen: Screen, typist: Typist) -> None:
    """Run the screen and the prompt together until one side ends the session.

    Raises TrackerGone or Removed when the tracker ends it; returns after a normal leave.
    """
    receiver = asyncio.create_task(show_events(link, screen, typist.redraw))
    typing = asyncio.create_task(typist.run(link))
    try:
        await asyncio.wait({receiver, typing}, return_when=asyncio.FIRST_COMPLETED)
        if not receiver.done():
            # We sent ``leave`` (or could not send at all): either way the tracker's
            # close tells the end of the story; ``bye`` comes once all we sent is delivered.
            await asyncio.wait({receiver}, timeout=LEAVE_TIMEOUT)
    finally:
        typing.cancel()
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await typing
    if receiver.cancelled():
        # No close in time. If we asked to leave, closing ourselves is a normal end.
        if typing.cancelled() or typing.exception() is not None:
            raise TrackerGone(None, "the tracker stopped answering")
        return
    receiver.result()


def rejoiner(screen: Screen, typist: Typist, keyring: Keyring) -> Rejoin:
    """A fresh join after a refused resume: the old name first (with the passphrase known), then
    whatever the user types."""

    async def rejoin(connection: Connection, name: str) -> Incoming:
        return await pick_name(connection, screen, name, typist.ask_name, keyring)

    return rejoin


async def run(
    url: str,
    password: str | None,
    username: str | None,
    *,
    color: bool,
    timeout: float,
    reconnect_for: float,
    admin: bool = False,
    admin_password: str | None = None,
    keyring: Keyring | None = None,
) -> int:
    """The whole interactive session; returns the exit status or raises a ClientError."""
    screen = Screen(color)
    keyring = keyring or Keyring()
    async with contextlib.AsyncExitStack() as stack:
        moderator = await stack.enter_async_context(Moderator(url, admin_password, timeout=timeout)) if admin else None
        typist = Typist(screen, keyring, moderator)
        rejoin = rejoiner(screen, typist, keyring)
        link = Link(url, password, timeout=timeout, reconnect_for=reconnect_for, rejoin=rejoin, keyring=keyring)
        with patch_stdout(raw=True):
            try:
                async with link.running(entrance(screen, username, keyring, moderator)):
                    await link.joined()
                    await chat(link, screen, typist)
            except Quit:
                pass
    return EXIT_OK
