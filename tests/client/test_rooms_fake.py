"""Scripted mode's room commands against a scripted fake tracker: every frame the client sends is checked.

The fake answers as docs/protocol.md's "Rooms and direct messages" says the tracker does
(``entered``, ``parted``, ``room_list``, echoes with ``room`` or ``to``), so these tests pin
the client's side of the dialogue whatever the real tracker's progress.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from chat_protocol import Bye, ChatMessage, ClientMessage, Entered, Error, Join, Parted, RoomInfo, RoomList, encode
from support.clients import StartClient
from support.fake_tracker import TS, FakeTracker, Handler, Peer
from support.terminal import Terminal, client_command, prompt
from support.timing import UNIT

StartFake = Callable[[list[Handler]], FakeTracker]


class RoomsFake:
    """Answers join, part, rooms and messages as the tracker does, for alpha; counts seqs per order."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.seqs: dict[str, int] = {"": 1}

    def next_seq(self, order: str) -> int:
        self.seqs[order] = self.seqs.get(order, 0) + 1
        return self.seqs[order]

    def answer(self, request: dict[str, Any]) -> None:
        kind, room = str(request["type"]), str(request.get("room", ""))
        if kind == "join":
            self.peer.send(Entered(room, self.next_seq(room), TS, "alpha", ["alpha", "bob"]))
        elif kind == "part":
            self.peer.send(Parted(room))
        elif kind == "rooms":
            self.peer.send(RoomList([RoomInfo("#general", 2, 2, joined=True), RoomInfo("#dev", 2, 2, joined=True)]))
        elif kind == "invite":
            self.peer.send(Error("not_allowed", "only a room's members invite"))
        elif kind == "message":
            order = room or (f"@{request['to']}" if "to" in request else "")
            seq = self.next_seq(order)
            echo = ChatMessage(seq, TS, "alpha", request["text"], request.get("id"), room or None, request.get("to"))
            self.peer.send(echo)
            if request["text"] == "in dev":  # bob answers in the default room, where alpha does not write now
                self.peer.send(ChatMessage(self.next_seq(""), TS, "bob", "lunch?"))

    def run(self) -> None:
        assert self.peer.hello()["type"] == "join"
        self.peer.welcome(1)
        while (request := self.peer.recv())["type"] != "leave":
            self.answer(request)
        self.peer.send(Bye("left", "Bye, alpha."))
        self.peer.ws.close()


def rooms_fake(peer: Peer) -> None:
    RoomsFake(peer).run()


SCRIPT = [
    "in general",
    "/join #dev",
    "in dev",
    "/msg bob just you",
    "/rooms",
    "/part",
    "back in general",
    "/invite bob",  # the default room: refused by the client itself
    "/join #bad.name",  # refused by the client itself
    "/invite bob #dev",
]


def frame_of(message: ClientMessage) -> dict[str, Any]:
    """A request as the protocol's codec writes it (whichever default fields it leaves in)."""
    body: dict[str, Any] = json.loads(encode(message))
    return body


def sent_frames(tracker: FakeTracker) -> list[dict[str, Any]]:
    """What the client sent after its join, less the ids (random per process) and its leave."""
    return [{k: v for k, v in frame.items() if k != "id"} for frame in tracker.sent[1:] if frame["type"] != "leave"]


def test_scripted_room_commands_send_the_protocols_frames(fake: StartFake, clients: StartClient) -> None:
    tracker = fake([rooms_fake])
    alpha = clients("--json", "--username", "alpha", tracker.url)
    alpha.event("welcome")
    alpha.send(*SCRIPT)
    alpha.close_stdin()
    status, _, stderr = alpha.finish()
    assert status == 0, stderr
    assert sent_frames(tracker) == [
        {"type": "message", "text": "in general"},
        frame_of(Join("", room="#dev")),
        {"type": "message", "text": "in dev", "room": "#dev"},
        {"type": "message", "text": "just you", "to": "bob"},
        {"type": "rooms"},
        {"type": "part", "room": "#dev"},
        {"type": "message", "text": "back in general"},
        {"type": "invite", "room": "#dev", "name": "bob"},
    ]
    assert "chat-client: ! everyone is in #general: /invite NAME #room names another room" in stderr
    assert "chat-client: ! a room's name is '#' and 1-32 characters" in stderr


def test_scripted_lines_show_the_room_they_come_from(fake: StartFake, clients: StartClient) -> None:
    """Plain output: the current room's lines as before, other rooms' with ``[#name] ``, direct messages bracketed."""
    tracker = fake([rooms_fake])
    alpha = clients("--username", "alpha", tracker.url)
    alpha.stdout.wait_for(lambda line: "welcome alpha" in line, 2 * UNIT)
    alpha.send(*SCRIPT[:7])
    alpha.close_stdin()
    status, lines, stderr = alpha.finish()
    assert status == 0, stderr
    shown = [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", line) for line in lines]
    assert shown[1:] == [
        "alpha: in general",
        "* You are in #dev now (2): alpha, bob; your lines go there (/join #general goes back)",
        "alpha: in dev",
        "[#general] bob: lunch?",
        "[alpha -> bob] just you",
        "* rooms (2); /join #name enters one:",
        "  #general  2 members, 2 online  (yours)",
        "  #dev  2 members, 2 online  (yours, writing here)",
        "* You left #dev; your lines go to #general",
        "alpha: back in general",
        "* Bye, alpha.",
    ]


@pytest.mark.tmux
def test_the_prompt_shows_the_room_and_the_unread_elsewhere(terminal: Terminal, fake: StartFake) -> None:
    """/join switches the prompt's room; a line from the default room meanwhile is prefixed and counted."""
    tracker = fake([rooms_fake])
    terminal.start(client_command(tracker.url, TRACKER_PASSWORD="pw", CHAT_USERNAME="alpha"))
    terminal.wait_for(prompt("alpha"))
    terminal.type_text("/join #dev")
    terminal.type("Enter")
    terminal.wait_for("* You are in #dev now (2): alpha, bob; your lines go there (/join #general goes back)")
    terminal.wait_for(prompt("alpha #dev"))
    terminal.type_text("in dev")
    terminal.type("Enter")
    terminal.wait_for(re.compile(r"\] alpha: in dev\n.*\] \[#general\] bob: lunch\?"))
    terminal.wait_for(prompt("alpha #dev (#general 1)"))
    terminal.type_text("/join #general")
    terminal.type("Enter")
    terminal.wait_for(prompt("alpha #general"))
    terminal.type_text("/msg bob just you")
    terminal.type("Enter")
    terminal.wait_for("] [alpha -> bob] just you")
    terminal.type_text("/part")  # in the default room: leaves for good (a guest: as exit)
    terminal.type("Enter")
    assert terminal.exit_status() == 0
    assert sent_frames(tracker)[-2:] == [
        frame_of(Join("", room="#general")),
        {"type": "message", "text": "just you", "to": "bob"},
    ]
