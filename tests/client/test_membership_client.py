"""A registered member comes back to chat-client after a tracker restart and reads everything she missed, once.

Real tracker, real ``chat-client`` in a tmux pane, other members as JSON bots. alpha signs in,
sees the room, quits (offline, still a member); the room talks; the tracker dies (SIGKILL) or
restarts (SIGTERM) on its data dir; the room talks again; alpha signs in again and her screen
shows the unread header, every missed message in order and once, then a live one. Her read
position, sent back by the client as it printed, leaves nothing unread for her next sign-in.
Piped (``--json``), hundreds of missed events come in several history pages, mostly from chat.log,
while another member keeps talking: every event once, in seq order, the live ones after the missed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.bots import Bot, open_bot
from support.clients import Client, StartClient
from support.signin import PASSPHRASE, joined, register
from support.terminal import Terminal, client_command, prompt
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, StartTracker

UNREAD = re.compile(r"--- (\d+) unread since you were last here ---")
# What the room says while alpha is away: before the tracker goes down, and after it is back.
BEFORE = [f"before the restart {index}" for index in range(4)]
AFTER = [f"after the restart {index}" for index in range(3)]
LIVE = "and this one live"


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[list[Terminal]]:
    """tmux panes, one per chat-client session (a pane's client cannot be started twice); all killed at the end."""
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        subprocess.run(["tmux", "-S", str(terminal.socket), "kill-server"], capture_output=True, check=False)


def sign_in(terminals: list[Terminal], tmp_path: Path, tracker: RunningTracker) -> Terminal:
    """chat-client as alpha (password and passphrase from the environment), at its prompt."""
    terminal = Terminal(tmp_path / f"session{len(terminals)}.sock")
    terminals.append(terminal)
    command = client_command(tracker.url, TRACKER_PASSWORD=PASSWORD, CHAT_USERNAME="alpha", CHAT_PASSPHRASE=PASSPHRASE)
    terminal.start(command)
    terminal.wait_for(prompt("alpha"))
    return terminal


def scrollback(terminal: Terminal) -> list[str]:
    """Every line the pane has shown, scrolled off or not."""
    return terminal.tmux("capture-pane", "-p", "-S", "-", "-t", "chat").splitlines()


async def say(bot: Bot, *texts: str) -> None:
    """Say each text, returning once its echo came back (so the tracker logged it)."""
    for text in texts:
        await bot.say(text)
        while (await bot.expect("message", 2 * UNIT))["text"] != text:
            pass


async def talk(tracker: RunningTracker, *texts: str) -> None:
    bot = await open_bot(tracker.url, PASSWORD, "bob")
    try:
        await say(bot, *texts)
    finally:
        await bot.ws.close()


def logged_seq(tracker: RunningTracker, text: str) -> int:
    """The seq chat.log gave bob's message ``text``."""
    for line in tracker.log_lines():
        fields = line.split(" ", 4)
        if fields[2] == "msg" and fields[3] == "bob" and fields[4] == text:
            return int(fields[0])
    raise AssertionError(f"{text!r} is not in chat.log")


@pytest.mark.tmux
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_returning_member_reads_what_she_missed_across_a_restart_once_and_in_order(
    start_tracker: StartTracker, terminals: list[Terminal], tmp_path: Path, stop: signal.Signals
) -> None:
    tracker = start_tracker()
    assert asyncio.run(register(tracker, "alpha"))["type"] == "registered"
    first = sign_in(terminals, tmp_path, tracker)
    asyncio.run(talk(tracker, "seen before leaving"))
    first.wait_for("bob: seen before leaving")
    first.type_text("exit")
    first.type("Enter")
    assert first.exit_status() == 0  # offline: still a member, her read position kept

    asyncio.run(talk(tracker, *BEFORE))
    tracker.stop(stop, timeout=4 * UNIT)
    tracker = start_tracker("--port", str(tracker.port), data_dir=tracker.data_dir)
    asyncio.run(talk(tracker, *AFTER))

    again = sign_in(terminals, tmp_path, tracker)
    again.wait_for(f"bob: {AFTER[-1]}", timeout=4 * UNIT)

    asyncio.run(talk(tracker, LIVE))
    again.wait_for(re.compile(f"bob: {LIVE}\n.*bob left"))  # the last event, before she leaves
    lines = scrollback(again)
    headers = [index for index, line in enumerate(lines) if UNREAD.search(line)]
    assert len(headers) == 1, "\n".join(lines)
    said = [line.split("bob: ", 1)[1] for line in lines[headers[0] :] if "bob: " in line]
    assert said == [*BEFORE, *AFTER, LIVE], "\n".join(lines)
    assert not any("seen before leaving" in line for line in lines[headers[0] :])
    again.type_text("exit")
    again.type("Enter")
    assert again.exit_status() == 0

    # What she saw went back as her read position: nothing is unread now.
    async def welcome_now() -> dict[str, object]:
        bot, welcome = await joined(tracker, "alpha", PASSPHRASE)
        await bot.ws.close()
        return welcome

    welcome = asyncio.run(welcome_now())
    assert welcome["type"] == "welcome", json.dumps(welcome)
    read = welcome["read"]
    assert isinstance(read, int) and read >= logged_seq(tracker, LIVE) and welcome["unread"] == 0, welcome


async def part_seen_by_bob(tracker: RunningTracker, terminal: Terminal) -> dict[str, object]:
    """Type ``/part`` while bob is in the room; the ``left`` event bob gets."""
    bob = await open_bot(tracker.url, PASSWORD, "bob")
    try:
        terminal.type_text("/part")
        terminal.type("Enter")
        return await bob.expect("left", 2 * UNIT)
    finally:
        await bob.ws.close()


@pytest.mark.tmux
def test_who_shows_offline_members_and_part_ends_the_membership(
    start_tracker: StartTracker, terminals: list[Terminal], tmp_path: Path
) -> None:
    tracker = start_tracker()
    for name in ("alpha", "gamma"):  # gamma registers and goes: offline, still a member
        assert asyncio.run(register(tracker, name))["type"] == "registered"
    terminal = sign_in(terminals, tmp_path, tracker)
    assert "exit goes offline (you stay a member), /part leaves for good." in terminal.screen()
    terminal.type_text("/who")
    terminal.type("Enter")
    terminal.wait_for(re.compile(r"online now \(1\): alpha; offline members \(1\): gamma \(last seen \d\d:\d\d\)"))
    left = asyncio.run(part_seen_by_bob(tracker, terminal))
    assert left["name"] == "alpha" and left["reason"] == "part", left
    assert terminal.exit_status() == 0
    assert "Leaving for good..." in terminal.screen()


@pytest.mark.tmux
def test_part_is_exit_for_a_guest(tracker: RunningTracker, terminal: Terminal) -> None:
    terminal.start(client_command(tracker.url, TRACKER_PASSWORD=PASSWORD, CHAT_USERNAME="carol"))
    terminal.wait_for(prompt("carol"))
    left = asyncio.run(part_seen_by_bob(tracker, terminal))
    assert left["name"] == "carol" and left["reason"] == "exit", left
    assert terminal.exit_status() == 0
    assert "Bye, carol." in terminal.screen()


# More than two of the client's history pages, most of them past the tracker's memory (--history-size).
MISSED = 450
FAST_ROOM = ("--rate", "1000", "--burst", "1000", "--history-size", "100")


async def flood(tracker: RunningTracker, name: str, prefix: str, count: int) -> None:
    """``count`` messages from ``name`` as fast as the room takes them; returns once the last was logged."""
    bot = await open_bot(tracker.url, PASSWORD, name)
    try:
        await talk_fast(bot, prefix, count)
    finally:
        await bot.ws.close()


async def talk_fast(bot: Bot, prefix: str, count: int) -> None:
    for index in range(count):
        await bot.say(f"{prefix} {index}")
    last = f"{prefix} {count - 1}"
    while (await bot.expect("message", 4 * UNIT))["text"] != last:
        pass


def test_a_piped_client_pages_through_hundreds_of_missed_events_and_holds_live_ones_back(
    start_tracker: StartTracker, clients: StartClient
) -> None:
    tracker = start_tracker(*FAST_ROOM)
    assert asyncio.run(register(tracker, "alpha"))["type"] == "registered"  # she joined, then went offline
    asyncio.run(flood(tracker, "bob", "before", MISSED))
    tracker.stop(signal.SIGKILL, timeout=4 * UNIT)
    tracker = start_tracker("--port", str(tracker.port), *FAST_ROOM, data_dir=tracker.data_dir)
    asyncio.run(flood(tracker, "bob", "after", MISSED // 10))

    async def back_while_carol_talks() -> Client:
        carol = await open_bot(tracker.url, PASSWORD, "carol")
        heard = asyncio.Event()
        talking = asyncio.create_task(talk_until(carol, heard))
        try:
            alpha = clients("--json", "--username", "alpha", tracker.url, env={"CHAT_PASSPHRASE": PASSPHRASE})
            # carol talks all through alpha's catch-up, until alpha shows one of carol's lines.
            await asyncio.to_thread(alpha.event, "message", 8 * UNIT, name="carol")
            heard.set()
            await talking
            return alpha
        finally:
            talking.cancel()
            await carol.ws.close()

    alpha = asyncio.run(back_while_carol_talks())
    alpha.event("left", name="carol", timeout=8 * UNIT)
    alpha.close_stdin()
    status, lines, stderr = alpha.finish()
    assert status == 0, stderr
    events = [json.loads(line) for line in lines]
    welcome = events[0]
    assert welcome["type"] == "welcome" and welcome["unread"] >= MISSED, welcome
    assert f"--- {welcome['unread']} unread since you were last here ---" in stderr
    seqs = [event["seq"] for event in events[1:] if "seq" in event]
    assert seqs == sorted(set(seqs)), "an event shown twice or out of order"
    said = [(event["name"], event["text"]) for event in events if event["type"] == "message"]
    logged = [(name, text) for seq, name, text in logged_messages(tracker) if seq > welcome["read"]]
    assert said == logged and len(said) > MISSED + MISSED // 10


async def talk_until(bot: Bot, heard: asyncio.Event) -> None:
    """Say numbered lines one after another (each logged before the next) until ``heard`` is set."""
    for index in itertools.count():
        if heard.is_set():
            return
        await say(bot, f"live {index}")


def logged_messages(tracker: RunningTracker) -> list[tuple[int, str, str]]:
    """chat.log's messages as (seq, name, text)."""
    fields = [line.split(" ", 4) for line in tracker.log_lines()]
    return [(int(f[0]), f[3], f[4]) for f in fields if f[2] == "msg"]
