"""Scripted mode (stdin is not a terminal): stdin lines become messages, events become lines.

Built for shell pipelines and test drivers. stdin is read one line at a time
while the session runs, so a driver may wait for our output before writing its
next line; every output line is flushed at once. At end of input we send
``leave`` and wait for the tracker's ``bye``, which it sends only after
everything we sent was logged and delivered: piped messages are never lost.
That wait is bounded: if nothing at all arrives for ``--timeout`` seconds after
the ``leave`` (an echo, an event, the ``bye``), the tracker is taken to be gone.

A lost connection is got back by ``link`` (resume, resend, leave again if we were
leaving). Meanwhile stdin is simply not read further: lines wait in the pipe, so
nothing piped is refused or lost however long the tracker is away. The client's own
notices (``connection lost; reconnecting...``) go to stderr: stdout stays one line
per room event (with ``--json``, one frame, ``resumed`` included).

With ``--admin``, a line that starts with a moderation command (``/kick``, ``/mute``,
``/ban``, ``/unban``, ``/bans``, ``/announce``) is carried out through the tracker's
``/admin`` API instead of being sent, and its result goes to stderr too
(``chat-client: * kicked alpha``, ``chat-client: ! wrong admin password``); the
moderation events it causes arrive on stdout like every other event. Without
``--admin`` such a line is a message, as every other line is.

The room commands (``/join``, ``/part``, ``/rooms``, ``/invite``, ``/remove``, ``/msg``) are carried
out as in interactive mode; a refusal the client makes itself goes to stderr, the
tracker's answers arrive on stdout. The lines after a ``/join`` or a ``/part`` are read
only once its answer (``entered``, ``parted`` or an ``error``) is in, so they go to the
room it made current.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from typing import TextIO

from chat_protocol import Entered, Error, Parted, ServerMessage, room_key

from .commands import Action, Command, parse_moderation, parse_room_command
from .connection import Connection, Incoming
from .errors import EXIT_OK, TrackerGone
from .items import Item, Notice
from .link import Enter, Link, Rejoin
from .moderator import Moderator
from .render import Fragments, error, event_line, plain
from .room_actions import ROOM_ACTIONS, carry_out
from .room_view import RoomView
from .signin import Keyring, sign_in

END = None  # what the line queue holds at end of input


class ScriptedOutput:
    """Writes one line per event: the tracker's own JSON, or the documented text form."""

    def __init__(self, out: TextIO, as_json: bool, err: TextIO | None = None) -> None:
        self._out = out
        self._err = err if err is not None else sys.stderr
        self._as_json = as_json

    def event(self, incoming: Item, view: RoomView | None = None) -> None:
        """One event (rendered for the rooms as ``view`` has them) on stdout; a notice on stderr."""
        if isinstance(incoming, Notice):
            self._err.write(f"chat-client: {incoming.text}\n")
            self._err.flush()
            return
        if self._as_json:
            # The frame as the tracker sent it (compact JSON never contains a newline), less any device token.
            self._write(without_device_token(incoming.frame))
            return
        line = event_line(incoming.message, seconds=True, view=view)
        if line is not None:
            self._write(plain(line))

    def said(self, lines: list[Fragments]) -> None:
        """The client's own lines (a moderation command's result) on stderr, ``chat-client: `` first."""
        for line in lines:
            self._err.write(f"chat-client: {plain(line)}\n")
        self._err.flush()

    def _write(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()  # a driver waits for this line before writing its next one


def without_device_token(frame: str) -> str:
    """``frame`` without its ``device_token``: a password for this device, kept in its file, never printed."""
    if '"device_token"' not in frame:
        return frame
    body = json.loads(frame)
    body.pop("device_token", None)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def start_line_reader(fd: int, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Read file descriptor ``fd`` line by line in a daemon thread; the queue gets each line, then END.

    A thread, because stdin may be a pipe, a file or /dev/null (asyncio cannot watch
    regular files), and a daemon one, so a blocked read never delays our exit. It
    uses ``os.read``, not ``sys.stdin``: a daemon thread blocked inside a buffered
    reader holds its lock, and Python aborts at exit when it cannot take it.
    """
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(item: str | None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def pump() -> None:
        pending = b""
        for chunk in iter(lambda: _read(fd), b""):
            *complete, pending = (pending + chunk).split(b"\n")
            for raw in complete:
                put(_decode(raw))
        if pending:  # a last line without a newline is still a line
            put(_decode(pending))
        put(END)

    threading.Thread(target=pump, name="stdin-reader", daemon=True).start()
    return queue


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # stdin closed under us: same as end of input
        return b""


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


def stop_on_signals(queue: asyncio.Queue[str | None], loop: asyncio.AbstractEventLoop) -> None:
    """SIGINT or SIGTERM ends the input as EOF does: leave cleanly, exit 0.

    A second signal gets Python's default behaviour, so a stuck client can still be stopped.
    """

    def stop(signum: int) -> None:
        for each in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(each)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        queue.put_nowait(END)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)


async def send_lines(
    link: Link,
    lines: asyncio.Queue[str | None],
    leaving: asyncio.Event,
    moderation: Moderation | None = None,
    rooms: RoomLines | None = None,
) -> None:
    """Send every non-blank line as a message to the current room (paced, and held while reconnecting),
    then ``leave``; set ``leaving``.

    With ``moderation``, moderation commands are carried out instead, one at a time, in
    their place among the lines; room commands always are.
    """
    rooms = rooms or RoomLines(link, answer_within=math.inf)
    while (line := await lines.get()) is not END:
        if not line.strip():
            continue  # the tracker refuses blank messages; skipping them is kinder
        if moderation is not None and await moderation.handled(line):
            continue
        if await rooms.handled(line):
            continue
        if (reason := link.unsendable(line)) is not None:
            _complain(reason)
            continue
        await link.say(line, link.view.current)
    await link.leave()
    leaving.set()


def _complain(text: str) -> None:
    print(f"chat-client: {text}", file=sys.stderr, flush=True)


class RoomLines:
    """The room commands among the stdin lines; a ``/join`` or ``/part`` holds the next line until answered.

    ``answered`` is fed every event shown: the ``entered`` or ``parted`` of the room asked
    for, or an ``error``, ends the wait (or ``answer_within`` seconds of silence: the tracker
    may never answer a request lost with its connection).
    """

    def __init__(self, link: Link, answer_within: float) -> None:
        self._link = link
        self._answer_within = answer_within
        self._answer: asyncio.Future[None] | None = None
        self._room = ""  # the room_key of the room whose answer is awaited

    def answered(self, message: ServerMessage) -> None:
        if self._answer is None or self._answer.done():
            return
        if isinstance(message, Error) or (
            isinstance(message, Entered | Parted) and room_key(message.room) == self._room
        ):
            self._answer.set_result(None)

    async def handled(self, line: str) -> bool:
        """Carry ``line`` out if it is a room command (True); False for a line to send as it is."""
        command = parse_room_command(line)
        if command is None:
            return False
        if command.action is Action.USAGE:
            _complain(plain(error(command.text)))
        elif command.action is Action.MSG:
            if (reason := self._link.unsendable(command.text)) is not None:
                _complain(reason)
            else:
                await self._link.say(command.text, to=command.name)
        elif command.action in ROOM_ACTIONS:
            await self._request(command)
        return True

    async def _request(self, command: Command) -> None:
        waits = command.action in (Action.JOIN, Action.PART)
        self._answer = asyncio.get_running_loop().create_future() if waits else None
        self._room = room_key(command.room or self._link.view.current or "")
        refusal = await carry_out(self._link, command, wait=True)
        if refusal is not None:
            _complain(plain(error(refusal)))
        elif self._answer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answer, timeout=self._answer_within)
        self._answer = None


class Moderation:
    """``--admin`` in scripted mode: moderation commands among the stdin lines, results on stderr."""

    def __init__(self, moderator: Moderator, output: ScriptedOutput) -> None:
        self._moderator = moderator
        self._output = output

    async def handled(self, line: str) -> bool:
        """Carry ``line`` out if it is a moderation command (True); False for a line to send."""
        command = parse_moderation(line)
        if command is None:
            return False
        if command.action is Action.MODERATE and command.request is not None:
            self._output.said(await self._moderator.perform(command.request))
        else:
            self._output.said([error(command.text)])
        return True


async def relay_events(
    link: Link, output: ScriptedOutput, leaving: asyncio.Event, bye_timeout: float, rooms: RoomLines | None = None
) -> None:
    """Print events until the tracker closes normally; raises if it closes otherwise.

    Once we have sent ``leave``, each event must come within ``bye_timeout`` seconds
    of the one before: a tracker still acknowledging a long script is waited for,
    one that accepted the ``leave`` and then went silent is not.
    """
    while (item := await _next_event(link, leaving, bye_timeout)) is not None:
        if isinstance(item, Notice):
            output.event(item)
            continue
        link.view.take(item.message)
        output.event(item, link.view)
        link.seen(item.message)
        if rooms is not None:
            rooms.answered(item.message)


async def _next_event(link: Link, leaving: asyncio.Event, bye_timeout: float) -> Item | None:
    receiving = asyncio.ensure_future(link.receive())
    try:
        if not leaving.is_set():
            left = asyncio.ensure_future(leaving.wait())
            try:
                await asyncio.wait({receiving, left}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                left.cancel()
        while not receiving.done():
            await asyncio.wait({receiving}, timeout=bye_timeout)
            if not receiving.done() and _silent_since_leaving(link, bye_timeout):
                raise TrackerGone(None, f"no answer from the tracker within {bye_timeout:g} s of leaving")
        return receiving.result()
    finally:
        receiving.cancel()


def _silent_since_leaving(link: Link, bye_timeout: float) -> bool:
    """Silence counts only on a connection that has been up all along: reconnecting has its own limit."""
    return not link.reconnecting and time.monotonic() - link.attached_at >= bye_timeout


async def converse(
    link: Link,
    lines: asyncio.Queue[str | None],
    output: ScriptedOutput,
    bye_timeout: float,
    moderation: Moderation | None = None,
) -> None:
    """Run sending and receiving together until the tracker closes the session."""
    leaving = asyncio.Event()
    rooms = RoomLines(link, answer_within=bye_timeout)
    sender = asyncio.create_task(send_lines(link, lines, leaving, moderation, rooms))
    try:
        await relay_events(link, output, leaving, bye_timeout, rooms)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


def joiner(name: str, output: ScriptedOutput, keyring: Keyring) -> Enter:
    """The first join: ``name`` (a registered one with the passphrase given) or nothing
    (a refusal is exit 1), its welcome printed first."""

    async def enter(connection: Connection) -> Incoming:
        incoming = await sign_in(connection, name, keyring, ask=None)
        output.event(incoming)
        return incoming

    return enter


def rejoiner(keyring: Keyring) -> Rejoin:
    """A fresh join after a refused resume: the same name (and passphrase), or exit 1 (nobody to ask)."""

    async def rejoin(connection: Connection, name: str) -> Incoming:
        return await sign_in(connection, name, keyring, ask=None)

    return rejoin


async def run(
    url: str,
    password: str,
    username: str,
    *,
    as_json: bool,
    timeout: float,
    reconnect_for: float,
    admin_password: str | None = None,
    keyring: Keyring | None = None,
) -> int:
    """The whole scripted session (moderating too with an ``admin_password``); returns the exit status."""
    output = ScriptedOutput(sys.stdout, as_json)
    keyring = keyring or Keyring()
    link = Link(url, password, timeout=timeout, reconnect_for=reconnect_for, rejoin=rejoiner(keyring), keyring=keyring)
    async with contextlib.AsyncExitStack() as stack:
        moderation = None
        if admin_password is not None:
            moderator = await stack.enter_async_context(Moderator(url, admin_password, timeout=timeout))
            moderation = Moderation(moderator, output)
        async with link.running(joiner(username, output, keyring)):
            await link.joined()
            loop = asyncio.get_running_loop()
            lines = start_line_reader(sys.stdin.fileno(), loop)
            stop_on_signals(lines, loop)
            await converse(link, lines, output, bye_timeout=timeout, moderation=moderation)
    return EXIT_OK
