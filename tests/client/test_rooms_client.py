"""Rooms and direct messages end to end: real chat-client processes against a real tracker.

Piped members (``--json``) check what reaches whom: a line in ``#dev`` reaches its members
and nobody else, a ``/msg`` exactly two, ``/rooms`` lists the room with its members. In a
tmux pane, the prompt follows ``/join`` and ``/part`` and counts what the other room says.
A registered member who quit while ``#dev`` talked is back in it at her next sign-in and
reads what she missed there, in that room's order, without leaving the default room.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from support.bots import open_bot
from support.clients import Client, StartClient
from support.signin import PASSPHRASE, register
from support.terminal import Terminal, client_command, prompt
from support.timing import UNIT
from support.tracker import PASSWORD, RunningTracker, StartTracker

MISSED = [f"missed in dev {index}" for index in range(3)]
WHILE_AWAY = "a word for you alone"
STILL_IN_GENERAL = re.compile(r"\[\d\d:\d\d:\d\d\] alpha: still in general")


def member(clients: StartClient, tracker: RunningTracker, name: str, **env: str) -> Client:
    client = clients("--json", "--username", name, tracker.url, env=env or None)
    client.event("welcome", name=name)
    return client


def enter(client: Client, room: str) -> dict[str, Any]:
    client.send(f"/join {room}")
    return client.event("entered", room=room)


def texts(client: Client) -> list[tuple[str | None, str | None, str]]:
    """Every message a piped client printed: (room, to, text)."""
    return [(e.get("room"), e.get("to"), e["text"]) for e in client.events() if e["type"] == "message"]


def test_a_room_and_a_direct_message_reach_exactly_their_members(tracker: RunningTracker, clients: StartClient) -> None:
    alpha, bob, carol = (member(clients, tracker, name) for name in ("alpha", "bob", "carol"))
    entered = enter(alpha, "#dev")
    assert entered["members"] == ["alpha"]
    assert sorted(enter(bob, "#dev")["members"]) == ["alpha", "bob"]
    alpha.event("joined", name="bob", room="#dev")

    alpha.send("in dev", "/msg carol just you", "/rooms")
    bob.event("message", text="in dev", room="#dev", name="alpha")
    carol.event("message", text="just you", to="carol", name="alpha")
    listing = alpha.event("room_list")
    rooms = {info["room"]: info for info in listing["rooms"]}
    assert listing["rooms"][0]["joined"] and rooms["#dev"]["members"] == 2 and rooms["#dev"]["joined"]

    alpha.send("/part", "back in general")  # /part in #dev leaves #dev; the next line goes to the default room
    alpha.event("parted", room="#dev")
    for client in (bob, carol):
        client.event("message", text="back in general", name="alpha")
    for client in (alpha, bob, carol):
        client.close_stdin()
        status, _, stderr = client.finish()
        assert status == 0, stderr
    assert ("#dev", None, "in dev") in texts(bob)
    assert ("#dev", None, "in dev") not in texts(carol) and (None, "carol", "just you") not in texts(bob)
    assert (None, None, "in dev") not in texts(carol)
    assert texts(alpha)[-1] == (None, None, "back in general")


@pytest.mark.tmux
def test_the_prompt_follows_join_and_part_and_counts_the_other_room(
    terminal: Terminal, tracker: RunningTracker, clients: StartClient
) -> None:
    bob = member(clients, tracker, "bob")
    terminal.start(client_command(tracker.url, TRACKER_PASSWORD=PASSWORD, CHAT_USERNAME="alpha"))
    terminal.wait_for(prompt("alpha"))
    terminal.type_text("/join #dev")
    terminal.type("Enter")
    terminal.wait_for("* You are in #dev now (1): alpha; your lines go there (/join #general goes back)")
    terminal.wait_for(prompt("alpha #dev"))
    terminal.type_text("only dev hears this")
    terminal.type("Enter")
    terminal.wait_for(re.compile(r"\] alpha: only dev hears this"))
    bob.send("lunch?", "anyone?")
    terminal.wait_for(re.compile(r"\] \[#general\] bob: anyone\?"))
    terminal.wait_for(prompt("alpha #dev (#general 2)"))
    bob.send("/msg alpha psst")
    terminal.wait_for(re.compile(r"\] \[bob\] psst"))
    terminal.type_text("/part")
    terminal.type("Enter")
    terminal.wait_for("* You left #dev; your lines go to #general")
    terminal.wait_for(prompt("alpha"))
    assert terminal.prompt_line() == "alpha>"
    terminal.type_text("/quit")
    terminal.type("Enter")
    assert terminal.exit_status() == 0
    bob.close_stdin()
    bob.finish()
    assert ("#dev", None, "only dev hears this") not in texts(bob)


def test_a_registered_member_is_back_in_her_room_and_reads_what_she_missed_there(
    tmp_path: Path, tracker: RunningTracker, clients: StartClient
) -> None:
    """She quit while #dev talked and bob wrote to her; signing in again: entered #dev, its unread header,
    the missed lines in order, and bob's direct message."""
    assert asyncio.run(register(tracker, "alpha"))["type"] == "registered"
    env = {"CHAT_PASSPHRASE": PASSPHRASE}
    alpha = member(clients, tracker, "alpha", **env)
    enter(alpha, "#dev")
    alpha.close_stdin()
    assert alpha.finish()[0] == 0

    async def talk_in_dev() -> None:
        bob = await open_bot(tracker.url, PASSWORD, "bob")
        await bob.ws.send(json.dumps({"type": "join", "room": "#dev"}))
        await bob.expect("entered", 2 * UNIT)
        for text in MISSED:
            await bob.ws.send(json.dumps({"type": "message", "room": "#dev", "text": text}))
            while (await bob.expect("message", 2 * UNIT))["text"] != text:
                pass
        await bob.ws.send(json.dumps({"type": "message", "to": "alpha", "text": WHILE_AWAY}))
        while (await bob.expect("message", 2 * UNIT))["text"] != WHILE_AWAY:
            pass  # its echo: the tracker keeps it for her
        await bob.ws.close()

    asyncio.run(talk_in_dev())
    again = clients("--username", "alpha", tracker.url, env=env)
    again.stdout.wait_for(lambda line: line.endswith(f"[#dev] bob: {MISSED[-1]}"), 4 * UNIT)
    again.send("still in general")  # the default room: no prefix
    again.stdout.wait_for(lambda line: STILL_IN_GENERAL.fullmatch(line) is not None, 2 * UNIT)
    again.close_stdin()
    status, lines, stderr = again.finish()
    assert status == 0, stderr
    unread_in_dev = len(MISSED) + len(("joined", "left"))  # bob's coming and going are events of #dev too
    assert f"--- {unread_in_dev} unread in #dev since you were last here ---" in stderr
    shown = [line for line in lines if "[#dev] bob: missed" in line]
    assert [line.split("] bob: ", 1)[1] for line in shown] == MISSED
    assert any(line.endswith(f"] [bob] {WHILE_AWAY}") for line in lines)  # the direct message, on her return

    # What she was shown of #dev went back as her read position there: nothing is unread in it now.
    third = clients("--username", "alpha", tracker.url, env=env)
    third.stdout.wait_for(lambda line: "You are in #dev now" in line, 2 * UNIT)
    third.close_stdin()
    status, _, stderr = third.finish()
    assert status == 0, stderr
    assert "unread in #dev" not in stderr


def test_after_a_restart_the_resumed_clients_are_in_their_room_again(
    start_tracker: StartTracker, clients: StartClient
) -> None:
    """SIGTERM (1012) and the tracker back: each client resumes and enters its rooms again; #dev goes on."""
    grace = ("--resume-grace", "60")  # the test tracker's default is 0: a lost member leaves at once
    first = start_tracker(*grace)
    alpha, bob = (member(clients, first, name) for name in ("alpha", "bob"))
    for client in (alpha, bob):
        enter(client, "#dev")
    first.stop(signal.SIGTERM)
    start_tracker("--port", str(first.port), *grace, data_dir=first.data_dir)
    for client in (alpha, bob):
        client.event("resumed", timeout=4 * UNIT)
        client.event("entered", room="#dev", timeout=4 * UNIT)
    alpha.send("after the restart")  # still written in #dev
    bob.event("message", text="after the restart", room="#dev")
    for client in (alpha, bob):
        client.close_stdin()
        status, _, stderr = client.finish()
        assert status == 0, stderr
    assert not [event for event in alpha.events() if event["type"] == "error"]  # no not_in_room


def test_a_private_room_lets_in_whom_its_owner_invites_and_not_whom_she_removes(
    tracker: RunningTracker, clients: StartClient
) -> None:
    alpha, bob = (member(clients, tracker, name) for name in ("alpha", "bob"))
    alpha.send("/join #secret private")
    assert alpha.event("entered", room="#secret")["private"] is True
    bob.send("/join #secret")
    assert bob.event("error")["code"] == "no_such_room"
    alpha.send("/invite bob")  # the room alpha writes in
    alpha.event("invited", room="#secret", name="bob", by="alpha")
    enter(bob, "#secret")
    alpha.send("/remove bob")
    bob.event("parted", room="#secret", reason="removed")
    alpha.event("left", room="#secret", name="bob", reason="removed")
    bob.send("/join #secret", "in general")  # refused again; the next line goes to the default room
    assert bob.event("error")["code"] == "no_such_room"
    alpha.event("message", name="bob", text="in general")
    for client in (alpha, bob):
        client.close_stdin()
        status, _, stderr = client.finish()
        assert status == 0, stderr
    assert [e["room"] for e in bob.events() if e["type"] == "entered"] == ["#secret"]
