"""Interactive mode as a person uses it: chat-client in a real terminal (tmux), against a real tracker.

Each test types with ``tmux send-keys`` and asserts on what ``tmux capture-pane``
shows, polling until the expected text appears or a deadline passes.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import pytest

from chat_protocol import Error, Limits, Resumed
from support.clients import Client
from support.fake_tracker import FakeTracker, Handler, Peer
from support.terminal import Terminal, client_command, prompt
from support.timing import UNIT

pytestmark = pytest.mark.tmux


def log_lines(tracker: Any) -> list[list[str]]:
    return [line.split(" ", 4) for line in tracker.log_lines()]


def login(terminal: Terminal, tracker: Any, name: str) -> None:
    terminal.start(client_command(tracker.url))
    terminal.wait_for("Enter server password:")
    terminal.type_text(tracker.password)
    terminal.type("Enter")
    terminal.wait_for("Enter your username:")
    terminal.type_text(name)
    terminal.type("Enter")
    terminal.wait_for(prompt(name))


def test_chat_session(terminal: Terminal, tracker: Any, clients: Callable[..., Client]) -> None:
    """Password, name, welcome, a peer's message above a half-typed line, /who, exit."""
    terminal.start(client_command(tracker.url))
    terminal.wait_for("Enter server password:")
    terminal.type_text(tracker.password)
    terminal.type("Enter")
    screen = terminal.wait_for("Enter your username:")
    assert tracker.password not in screen  # typed hidden

    beta = clients("--json", "--username", "beta", tracker.url)
    beta.event("welcome")
    terminal.type_text("alpha")
    terminal.type("Enter")
    terminal.wait_for(re.compile(r"Online now \(2\): (alpha, beta|beta, alpha)"))

    terminal.type_text("half typed li")
    terminal.wait_for("alpha> half typed li")
    beta.send("And I am beta")
    screen = terminal.wait_for(re.compile(r"\[\d\d:\d\d\] beta: And I am beta"))
    assert terminal.prompt_line() == "alpha> half typed li"  # the peer's line went above it
    colored = terminal.screen(escapes=True)
    assert re.search(r"\x1b\[[0-9;]*m(\x1b\[[0-9;]*m)*beta", colored)  # the name is coloured

    terminal.type_text("ne, and I will exit later")
    terminal.type("Enter")
    terminal.wait_for("alpha: half typed line, and I will exit later")  # "exit" inside a line is a message
    terminal.type_text("/who")
    terminal.type("Enter")
    terminal.wait_for(re.compile(r"online now \(2\): (alpha, beta|beta, alpha)"))

    terminal.type_text("exit")
    terminal.type("Enter")
    assert terminal.exit_status() == 0
    screen = terminal.screen()
    assert "Exiting..." in screen and "Bye, alpha." in screen
    beta.event("left", name="alpha", reason="exit")
    logged = [fields[2:] for fields in log_lines(tracker) if fields[2] in ("msg", "leave")]
    assert logged[-2:] == [["msg", "alpha", "half typed line, and I will exit later"], ["leave", "alpha", "exit"]]


def test_wrong_password_said_at_once(terminal: Terminal, tracker: Any) -> None:
    """A wrong password is reported before any username prompt, and the status is 1."""
    terminal.start(client_command(tracker.url))
    terminal.wait_for("Enter server password:")
    terminal.type_text("not the password")
    terminal.type("Enter")
    assert terminal.exit_status() == 1
    screen = terminal.screen()
    assert "chat-client: wrong password" in screen
    assert "Enter your username" not in screen and "Traceback" not in screen


def test_refused_names_prompt_again(terminal: Terminal, tracker: Any, clients: Callable[..., Client]) -> None:
    """A taken or invalid name gets its reason and a new prompt on the same connection."""
    holder = clients("--json", "--username", "alpha", tracker.url)
    holder.event("welcome")
    terminal.start(client_command(tracker.url, TRACKER_PASSWORD=tracker.password))
    for attempt, refused in enumerate(("ALPHA", "no spaces"), 1):
        # The attempt-th prompt: the earlier one stays on screen, so waiting for the text alone
        # would let the next name be typed before the client asks for it.
        terminal.wait_for(re.compile(f"(?s)(Enter your username:.*){{{attempt}}}"))
        terminal.type_text(refused)
        terminal.type("Enter")
    terminal.wait_for("Name refused: invalid name")
    screen = terminal.wait_for(re.compile("(?s)(Enter your username:.*){3}"))  # the reason, then the prompt
    assert "Name refused:" in screen.split("ALPHA", 1)[1]  # the taken name's reason came first
    assert screen.count("Enter your username:") == 3
    terminal.type_text("gamma")
    terminal.type("Enter")
    terminal.wait_for(prompt("gamma"))
    holder.event("joined", name="gamma")


@pytest.mark.parametrize("key", ["C-c", "C-d"])
def test_ctrl_keys_leave_gracefully(terminal: Terminal, tracker: Any, clients: Callable[..., Client], key: str) -> None:
    """Ctrl+C and Ctrl+D leave the room cleanly: the tracker announces it, the status is 0."""
    watcher = clients("--json", "--username", "watcher", tracker.url)
    watcher.event("welcome")
    login(terminal, tracker, "alpha")
    terminal.type(key)
    assert terminal.exit_status() == 0
    watcher.event("left", name="alpha", reason="exit")


def test_tracker_shutdown(terminal: Terminal, tracker: Any) -> None:
    """The tracker shutting down is said plainly, without a traceback, with status 3."""
    login(terminal, tracker, "alpha")
    terminal.type_text("unsent draft")
    tracker.stop()
    assert terminal.exit_status() == 3
    screen = terminal.screen()
    assert "chat-client: the tracker went away" in screen
    assert "Traceback" not in screen


def test_no_color(terminal: Terminal, tracker: Any, clients: Callable[..., Client]) -> None:
    """NO_COLOR turns every colour off."""
    terminal.start(client_command(tracker.url, TRACKER_PASSWORD=tracker.password, NO_COLOR="1", CHAT_USERNAME="alpha"))
    terminal.wait_for(prompt("alpha"))
    beta = clients("--json", "--username", "beta", tracker.url)
    beta.send("plain please")
    terminal.wait_for("beta: plain please")
    assert not re.search(r"\x1b\[[0-9;]*[1-9][0-9;]*m[^\n]*beta: plain", terminal.screen(escapes=True))


def test_unreachable_tracker(terminal: Terminal) -> None:
    """No tracker: one clear line and status 1, before asking for any password."""
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    terminal.start(client_command(f"127.0.0.1:{port}"))
    assert terminal.exit_status() == 1
    screen = terminal.screen()
    assert f"chat-client: cannot reach the tracker at ws://127.0.0.1:{port}/ws" in screen
    assert "password" not in screen and "Traceback" not in screen


def test_dumb_terminal(terminal: Terminal, tracker: Any) -> None:
    """TERM=dumb: the password is still hidden, nothing is coloured, and the session works."""
    terminal.start(client_command(tracker.url, TERM="dumb"))
    terminal.wait_for("Enter server password:")
    terminal.type_text(tracker.password)
    terminal.type("Enter")
    terminal.wait_for("Enter your username:")
    terminal.type_text("alpha")
    terminal.type("Enter")
    terminal.wait_for("Online now (1): alpha")
    terminal.wait_for(prompt("alpha"))  # as a person would: Ctrl+D once the input line is there
    terminal.type("C-d")
    assert terminal.exit_status() == 0
    assert tracker.password not in terminal.screen()
    assert not re.search(r"\x1b\[[0-9;]*[1-9][0-9;]*m", terminal.screen(escapes=True))


def test_reconnects_under_the_prompt(terminal: Terminal, fake: Callable[[list[Handler]], FakeTracker]) -> None:
    """A 1012 mid-chat: notices above the prompt, the half-typed line kept, a line typed meanwhile sent once back."""
    tracker_back = threading.Event()

    def drops_on_first_message(peer: Peer) -> None:
        assert peer.hello()["type"] == "join"
        peer.welcome(1)
        assert peer.recv()["text"] == "drop now"  # never echoed: the client must send it again
        peer.ws.close(1012, "restarting")

    def resumes_when_back(peer: Peer) -> None:
        assert tracker_back.wait(4 * UNIT)  # the handshake waits: the client is reconnecting meanwhile
        assert peer.hello()["type"] == "resume"
        peer.send(Resumed(1, "alpha", "e1", "t2", True, 0, 0, ["alpha"], Limits()))
        peer.echo_until_leave(1)

    tracker = fake([drops_on_first_message, resumes_when_back])
    terminal.start(client_command(tracker.url, TRACKER_PASSWORD="pw", CHAT_USERNAME="alpha"))
    terminal.wait_for(prompt("alpha"))
    terminal.type_text("drop now")
    terminal.type("Enter")
    terminal.wait_for("* connection lost; reconnecting...")
    terminal.type_text("typed while away")
    terminal.type("Enter")
    terminal.type_text("/who")
    terminal.type("Enter")
    terminal.wait_for("! not connected: /who not sent")
    terminal.type_text("half typed")
    terminal.wait_for("alpha> half typed")
    tracker_back.set()
    terminal.wait_for("* reconnected; nothing was missed")
    screen = terminal.wait_for(re.compile(r"alpha: drop now\n.*alpha: typed while away"))
    assert terminal.prompt_line() == "alpha> half typed"
    assert screen.count("alpha: drop now") == 1
    terminal.type("Enter")
    terminal.wait_for("alpha: half typed")
    terminal.type_text("/quit")
    terminal.type("Enter")
    assert terminal.exit_status() == 0
    sent = tracker.messages()
    assert [text for text, _ in sent] == ["drop now", "drop now", "typed while away", "half typed"]
    assert sent[0][1] == sent[1][1]


def test_refused_name_on_rejoin_is_asked_at_the_prompt(
    terminal: Terminal, fake: Callable[[list[Handler]], FakeTracker]
) -> None:
    """Resume refused and the old name taken meanwhile: the chat prompt asks for another, and the chat goes on."""

    def lost_after_join(peer: Peer) -> None:
        assert peer.hello()["type"] == "join"
        peer.welcome(1)
        peer.ws.close(1011, "oops")

    def refuses_resume_and_name(peer: Peer) -> None:
        assert peer.hello()["type"] == "resume"
        peer.send(Error("resume_expired", "the session expired"))
        assert peer.recv() == {"type": "join", "name": "alpha"}
        peer.send(Error("name_taken", "the name 'alpha' is taken"))
        assert peer.recv() == {"type": "join", "name": "alpha2"}
        peer.welcome(7, name="alpha2")
        peer.echo_until_leave(7, name="alpha2")

    tracker = fake([lost_after_join, refuses_resume_and_name])
    terminal.start(client_command(tracker.url, TRACKER_PASSWORD="pw", CHAT_USERNAME="alpha"))
    terminal.wait_for("Name refused: the name 'alpha' is taken")
    terminal.wait_for(re.compile(r"(?m)^Enter your username:"))
    terminal.type_text("alpha2")
    terminal.type("Enter")
    terminal.wait_for("* could not resume (the session expired); joined again as alpha2;")
    terminal.wait_for(prompt("alpha2"))
    terminal.type_text("hello again")
    terminal.type("Enter")
    terminal.wait_for("alpha2: hello again")
    terminal.type("C-d")
    assert terminal.exit_status() == 0


def test_frozen_and_thawed_resumes_with_the_missed_messages_and_the_half_typed_line(
    terminal: Terminal, start_tracker: Any, clients: Callable[..., Client]
) -> None:
    """A real tracker drops alpha while its process is stopped; thawed, it resumes: notice, 3 missed, line kept."""
    tracker = start_tracker("--ping-interval", "1", "--ping-timeout", "1", resume_grace=60)
    login(terminal, tracker, "alpha")
    beta = clients("--json", "--username", "beta", tracker.url)
    beta.event("welcome")
    terminal.wait_for("beta joined")
    terminal.type_text("half typed")
    terminal.wait_for("alpha> half typed")
    shell = terminal.tmux("display-message", "-p", "-t", "chat", "#{pane_pid}").strip()
    (pid,) = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True, check=True).stdout.split()
    os.kill(int(pid), signal.SIGSTOP)  # a laptop lid: no packets, no answers to pings
    try:
        tracker.wait_for_output("alpha is away", timeout=4 * UNIT)
        for index in range(3):
            beta.send(f"while you slept {index}")
            beta.event("message", text=f"while you slept {index}")
    finally:
        os.kill(int(pid), signal.SIGCONT)
    terminal.wait_for("* connection lost; reconnecting...", timeout=4 * UNIT)
    screen = terminal.wait_for("* reconnected; 3 missed messages follow", timeout=4 * UNIT)
    screen = terminal.wait_for("beta: while you slept 2")
    assert all(screen.count(f"beta: while you slept {index}") == 1 for index in range(3))
    assert terminal.prompt_line() == "alpha> half typed"
    terminal.type("Enter")
    beta.event("message", text="half typed")
    terminal.type_text("/quit")
    terminal.type("Enter")
    assert terminal.exit_status() == 0
    alpha_lines = [fields[2:4] for fields in log_lines(tracker) if fields[3] == "alpha"]
    assert alpha_lines == [["join", "alpha"], ["msg", "alpha"], ["leave", "alpha"]], "no leave or join for the blip"
