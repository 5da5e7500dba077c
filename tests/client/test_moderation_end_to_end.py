"""``chat-client --admin`` and moderated members, end to end: real tracker, real clients, tmux for the terminal.

The moderator is an interactive ``chat-client --admin`` in a tmux pane, or a scripted one
(a bot) reading commands from its stdin; the members are scripted ``chat-client``
processes. Every wait polls for the expected output until a deadline.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Any

import httpx

from support.admin import ADMIN, ADMIN_ENV
from support.clients import Client, StartClient
from support.terminal import Terminal, client_command, prompt
from support.timing import UNIT

KICKED = "chat-client: the tracker closed the session: you were removed by a moderator: spamming (close code 4011)\n"
BAN_USAGE = "usage: /ban NAME|ADDRESS [SECONDS] [reason]"
BANNED = "chat-client: the tracker closed the session: you are banned by a moderator: trolling (close code 4012)\n"


def joins(tracker: Any, name: str) -> int:
    """How many times ``name`` joined, by chat.log."""
    return sum(1 for line in tracker.log_lines() if line.split(" ", 4)[2:4] == ["join", name])


def ban(tracker: Any, **body: Any) -> None:
    """Ban through the tracker's REST API directly (the moderator is not the subject here)."""
    made = httpx.post(
        tracker.http_url + "/admin/ban", json=body, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=UNIT
    )
    assert made.status_code == 200, made.text


def member(clients: StartClient, tracker: Any, name: str, *args: str, env: dict[str, str] | None = None) -> Client:
    """A scripted member (text lines unless ``--json`` is in ``args``), in the room."""
    client = clients(*args, "--username", name, tracker.url, env=env)
    client.stdout.wait_for(lambda line: f"welcome {name}" in line or f'"name":"{name}"' in line, 2 * UNIT)
    return client


def moderator_login(terminal: Terminal, tracker: Any, name: str = "alpha") -> None:
    """``chat-client --admin`` in the pane: server password, admin password (both hidden), name."""
    terminal.start(client_command(tracker.url) + " --admin")
    terminal.wait_for("Enter server password:")
    terminal.type_text(tracker.password)
    terminal.type("Enter")
    terminal.wait_for("Enter admin password:")
    terminal.type_text(ADMIN)
    terminal.type("Enter")
    terminal.wait_for("Enter your username:")
    terminal.type_text(name)
    terminal.type("Enter")
    terminal.wait_for(prompt(name))


def command(terminal: Terminal, line: str, *expected: str | re.Pattern[str]) -> str:
    """Type ``line`` and Enter; wait for each of ``expected`` in turn; the screen."""
    terminal.type_text(line)
    terminal.type("Enter")
    screen = ""
    for text in expected:
        screen = terminal.wait_for(text)
    return screen


def test_kick_from_the_terminal(terminal: Terminal, start_tracker: Any, clients: StartClient) -> None:
    """``/kick beta spamming`` in ``chat-client --admin``: beta's client exits 4 saying why, and never returns."""
    tracker = start_tracker(env=ADMIN_ENV)
    beta = member(clients, tracker, "beta")
    moderator_login(terminal, tracker)
    screen = command(terminal, "/help", "/kick NAME [reason]", "/announce TEXT")
    assert ADMIN not in screen and tracker.password not in screen  # both typed hidden
    command(terminal, "/kick beta spamming", "* kicked beta", "* beta was removed by a moderator: spamming")
    status, lines, stderr = beta.finish()
    assert status == 4
    assert stderr == KICKED  # and no "reconnecting..." before it
    assert lines[-2].endswith("] * beta was removed by a moderator: spamming")
    assert lines[-1].endswith("] * you were removed by a moderator: spamming")  # the bye
    terminal.wait_for("* beta left (removed by a moderator)")
    assert joins(tracker, "beta") == 1


def test_mute_ban_bans_unban_announce_from_the_terminal(
    terminal: Terminal, start_tracker: Any, clients: StartClient
) -> None:
    """Every moderation command in the pane, its answer there, and its effect on the member."""
    tracker = start_tracker(env=ADMIN_ENV)
    beta = member(clients, tracker, "beta", "--json")
    terminal.start(client_command(tracker.url, TRACKER_PASSWORD=tracker.password, **ADMIN_ENV) + " --admin")
    terminal.wait_for("Enter your username:")  # the admin password came from the environment: not asked
    assert "Enter admin password" not in terminal.screen()
    terminal.type_text("alpha")
    terminal.type("Enter")
    terminal.wait_for(prompt("alpha"))

    command(terminal, "/mute beta", "! usage: /mute NAME SECONDS [reason]")
    command(terminal, "/mute nobody 5", "! no member named 'nobody' is in the room")
    command(
        terminal,
        "/mute beta 60 cool off",
        re.compile(r"\* muted beta for 60 s \(until [0-9: -]+\)"),
        re.compile(r"\* beta is muted for 60 s \(until [0-9: -]+\): cool off"),
    )
    beta.event("moderation", action="mute", name="beta", seconds=60.0)
    beta.send("can anyone hear me")
    refused = beta.event("error", code="muted")
    assert "until" in refused["message"] and refused["id"]
    command(terminal, "/mute beta 0", "* unmuted beta", "* beta may speak again")
    beta.send("back")
    beta.event("message", name="beta", text="back")

    command(terminal, "/announce maintenance at noon", "* announced", "* Announcement: maintenance at noon")
    beta.event("announcement", text="maintenance at noon")

    screen = command(terminal, "/ban beta 3600 trolling", "* beta is banned for 3600 s (ban ")
    ban_id = re.search(r"\* ban (\w+): beta, until [0-9: -]+: trolling", terminal.wait_for("* ban b"))
    assert ban_id is not None, screen
    status, _, stderr = beta.finish()
    assert (status, stderr) == (4, BANNED)
    screen = command(terminal, "/bans", "* bans in force (1):", f"*   ban {ban_id[1]}: beta, until ")
    command(terminal, f"/unban {ban_id[1]}", f"* ban {ban_id[1]} lifted", f"* ban {ban_id[1]} was lifted")
    command(terminal, "/bans", "* no bans in force")
    command(terminal, f"/unban {ban_id[1]}", f"! no ban '{ban_id[1]}' is in force")
    assert joins(tracker, "beta") == 1
    kinds = [line.split(" ", 4)[2] for line in tracker.log_lines()]
    assert {"mute", "announce", "ban", "unban"} <= set(kinds)
    assert "can anyone hear me" not in "\n".join(tracker.log_lines())


def test_scripted_admin_needs_the_admin_password(clients: StartClient) -> None:
    """Scripted ``--admin`` cannot ask for the admin password: without TRACKER_ADMIN_PASSWORD, exit 2."""
    bot = clients("--admin", "--username", "bot", "ws://127.0.0.1:9/ws")
    status, _, stderr = bot.finish()
    assert status == 2
    assert stderr == "chat-client: --admin: no admin password: set TRACKER_ADMIN_PASSWORD\n"


def test_scripted_refusals_and_plain_members(start_tracker: Any, clients: StartClient) -> None:
    """A wrong admin password, and moderation off, are ``!`` lines on stderr; without --admin a command is a message."""
    tracker = start_tracker(env=ADMIN_ENV)
    plain = member(clients, tracker, "plain")
    plain.send("/kick plain")
    plain.stdout.wait_for(lambda line: line.endswith("] plain: /kick plain"), 2 * UNIT)
    guesser = clients("--admin", "--username", "guesser", tracker.url, env={"TRACKER_ADMIN_PASSWORD": "not it"})
    guesser.send("/kick plain", "/ban plain 0", "after")
    guesser.close_stdin()
    status, lines, stderr = guesser.finish()
    assert status == 0
    assert stderr.splitlines() == [
        "chat-client: ! wrong admin password",
        "chat-client: ! SECONDS must be more than 0 (leave it out to ban for good); " + BAN_USAGE,
    ]
    assert any(line.endswith("] guesser: after") for line in lines)
    plain.close_stdin()
    assert plain.finish()[0] == 0

    untracked = start_tracker()  # no admin password: moderation is off
    bot = clients("--admin", "--username", "bot", untracked.url, env=ADMIN_ENV)
    bot.send("/bans")
    bot.close_stdin()
    status, _, stderr = bot.finish()
    assert (status, stderr) == (0, "chat-client: ! moderation is off on this tracker\n")


def test_a_bot_bans_a_member_who_exits_4_and_stays_out(start_tracker: Any, clients: StartClient) -> None:
    """A scripted ``--admin`` bot bans alpha: alpha's client exits 4 without reconnecting; /bans lists the ban."""
    tracker = start_tracker(env=ADMIN_ENV)
    alpha = member(clients, tracker, "alpha")
    bot = member(clients, tracker, "bot", "--admin", env=ADMIN_ENV)
    bot.send("/ban alpha trolling")
    status, lines, stderr = alpha.finish()
    assert (status, stderr) == (4, BANNED)
    banned = next(line for line in lines if "* alpha is banned for good (ban " in line)
    assert banned.endswith("): trolling")
    bot.send("/bans")
    bot.close_stdin()
    status, lines, stderr = bot.finish()
    assert status == 0
    ban_id = re.search(r"\(ban (\w+)\)", banned)
    assert ban_id is not None
    assert stderr.splitlines() == [
        f"chat-client: * ban {ban_id[1]}: alpha, for good: trolling",
        "chat-client: * bans in force (1):",
        f"chat-client: *   ban {ban_id[1]}: alpha, for good: trolling",
    ]
    assert any(line.endswith(f"] * alpha is banned for good (ban {ban_id[1]}): trolling") for line in lines)
    assert joins(tracker, "alpha") == 1


def test_banned_while_away_is_not_let_back_in(start_tracker: Any, clients: StartClient) -> None:
    """Banned while its connection was down: the reconnecting client is refused the name, exits 4, tries no more."""
    tracker = start_tracker("--ping-interval", "1", "--ping-timeout", "1", env=ADMIN_ENV, resume_grace=60)
    alpha = member(clients, tracker, "alpha", "--json")
    os.kill(alpha.process.pid, signal.SIGSTOP)  # a laptop lid: no packets, no answers to pings
    try:
        tracker.wait_for_output("alpha is away", timeout=4 * UNIT)
        ban(tracker, name="alpha", reason="trolling")
    finally:
        os.kill(alpha.process.pid, signal.SIGCONT)
    status, _, stderr = alpha.finish(timeout=6 * UNIT)
    assert status == 4
    assert stderr.startswith("chat-client: connection lost; reconnecting...\n")
    assert stderr.endswith(
        "chat-client: the tracker refused you: the name 'alpha' is banned by a moderator: trolling\n"
    ), stderr
    assert stderr.count("reconnecting") == 1
    assert joins(tracker, "alpha") == 1


def test_a_banned_address_is_refused_at_the_first_connection(start_tracker: Any, clients: StartClient) -> None:
    """A client from a banned address is refused at the handshake: exit 4 with the reason, before any join."""
    tracker = start_tracker(env=ADMIN_ENV)
    ban(tracker, address="127.0.0.0/8", seconds=600, reason="bots")
    alpha = clients("--username", "alpha", tracker.url)
    status, lines, stderr = alpha.finish()
    assert (status, lines) == (4, [])
    assert stderr == "chat-client: the tracker refused you: your address is banned by a moderator: bots\n"
    assert joins(tracker, "alpha") == 0
