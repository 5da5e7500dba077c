"""chat-client comes back by itself: a real tracker killed, restarted with SIGTERM, or down while lines are piped.

The tracker is restarted on the same port and data dir, as a supervisor would.
Talkers are the test's own JSON members (websockets, sync), so the room keeps
talking across the restart; every check compares the client's output with chat.log.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Callable, Iterator
from typing import Any

from websockets.sync.client import connect
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL
from support.clients import Client, StartClient
from support.process import LineReader
from support.timing import UNIT
from support.tracker import PASSWORD

GRACE = ("--resume-grace", "60")  # the test tracker's default is 0: a lost member leaves at once
LOST = "chat-client: connection lost; reconnecting..."


@contextlib.contextmanager
def talker(url: str, name: str) -> Iterator[Callable[[str], None]]:
    """A JSON member ``name``; yields ``say(text)``, which returns once the tracker echoed (so logged) it."""
    ws = connect(
        url,
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        additional_headers={"Authorization": f"Bearer {PASSWORD}"},
        open_timeout=2 * UNIT,
        close_timeout=UNIT / 5,
    )

    def next_frame(kind: str, **fields: Any) -> None:
        while True:
            body = json.loads(ws.recv(2 * UNIT))
            if body["type"] == kind and all(body.get(k) == v for k, v in fields.items()):
                return

    def say(text: str) -> None:
        ws.send(json.dumps({"type": "message", "text": text}))
        next_frame("message", name=name, text=text)

    with ws:
        next_frame("hello")
        ws.send(json.dumps({"type": "join", "name": name}))
        next_frame("welcome")
        yield say
        ws.send(json.dumps({"type": "leave"}))
        with contextlib.suppress(Exception):
            next_frame("bye")


def client_with_stderr(clients: StartClient, url: str, *args: str) -> tuple[Client, LineReader]:
    """A --json client named alpha, in the room; and a reader of its stderr lines (the notices)."""
    alpha = clients("--json", "--username", "alpha", *args, url)
    alpha.event("welcome", name="alpha")
    return alpha, alpha.stderr


def restart(start_tracker: Any, old: Any, *args: str, **kwargs: Any) -> Any:
    """A new tracker on the old one's port and data dir."""
    return start_tracker("--port", str(old.port), *args, data_dir=old.data_dir, **kwargs)


def logged_messages(tracker: Any, after: int) -> list[tuple[int, str, str]]:
    """chat.log's messages after seq ``after``, as (seq, name, text)."""
    fields = [line.split(" ", 4) for line in tracker.log_lines()]
    return [(int(f[0]), f[3], f[4]) for f in fields if f[2] == "msg" and int(f[0]) > after]


def received_messages(client: Client) -> list[tuple[int, str, str]]:
    return [(e["seq"], e["name"], e["text"]) for e in client.events() if e["type"] == "message"]


def finish_cleanly(alpha: Client, errors: LineReader) -> list[str]:
    """End of input: the client leaves and exits 0; returns its stderr lines."""
    assert alpha.process.poll() is None  # it never exited while the tracker was away
    alpha.close_stdin()
    status, _, _ = alpha.finish()
    stderr = errors.rest(UNIT)
    assert status == 0, stderr
    return stderr


def room_keeps_talking_across(stop: Callable[[Any], None], start_tracker: Any, clients: StartClient) -> None:
    """Talk, ``stop`` the tracker, restart it, talk: the client shows each message once, in chat.log order."""
    first = start_tracker(*GRACE)
    alpha, errors = client_with_stderr(clients, first.url)
    joined_at = alpha.events()[0]["seq"]
    with talker(first.url, "beta") as beta:
        for index in range(5):
            beta(f"before {index}")
    alpha.event("message", text="before 4")
    stop(first)
    errors.wait_for(lambda line: line == LOST, 2 * UNIT)
    second = restart(start_tracker, first, *GRACE)
    with talker(second.url, "gamma") as gamma:
        for index in range(5):
            gamma(f"after {index}")
    alpha.event("message", text="after 4", timeout=4 * UNIT)
    stderr = finish_cleanly(alpha, errors)
    assert any(line.startswith("chat-client: reconnected") for line in stderr), stderr
    received = received_messages(alpha)
    assert received == logged_messages(second, joined_at)
    assert [text for _, _, text in received] == [f"before {i}" for i in range(5)] + [f"after {i}" for i in range(5)]


def test_tracker_killed_and_restarted(start_tracker: Any, clients: StartClient) -> None:
    """SIGKILL, then the tracker back on the same port: the client resumes, every message exactly once, in order."""
    room_keeps_talking_across(lambda tracker: tracker.kill(), start_tracker, clients)


def test_tracker_restarted_with_sigterm(start_tracker: Any, clients: StartClient) -> None:
    """SIGTERM (close 1012, bye restart): the client prints the bye, resumes, and misses nothing."""
    room_keeps_talking_across(lambda tracker: tracker.stop(signal.SIGTERM), start_tracker, clients)


def test_lines_piped_while_the_tracker_is_down(start_tracker: Any, clients: StartClient) -> None:
    """Lines piped while the tracker is away (and one sent just as it died) are logged exactly once when it is back."""
    first = start_tracker(*GRACE)
    alpha, errors = client_with_stderr(clients, first.url)
    alpha.send("said before")
    alpha.event("message", text="said before")
    alpha.send("just as it died")
    first.kill()
    errors.wait_for(lambda line: line == LOST, 2 * UNIT)
    waiting = [f"while down {index}" for index in range(5)]
    alpha.send(*waiting)
    second = restart(start_tracker, first, *GRACE)
    alpha.event("message", text="while down 4", timeout=4 * UNIT)
    finish_cleanly(alpha, errors)
    texts = [text for _, name, text in logged_messages(second, 0) if name == "alpha"]
    assert texts == ["said before", "just as it died", *waiting]
    assert [text for _, name, text in received_messages(alpha) if name == "alpha"] == texts


def test_resume_refused_joins_again(start_tracker: Any, clients: StartClient) -> None:
    """Resume grace 0: the restarted tracker has forgotten alpha; the client joins afresh and says what was missed."""
    first = start_tracker()
    alpha, errors = client_with_stderr(clients, first.url)
    first.kill()
    errors.wait_for(lambda line: line == LOST, 2 * UNIT)
    second = restart(start_tracker, first)
    notice = errors.wait_for(lambda line: "joined again as alpha" in line, 4 * UNIT)
    assert notice.startswith("chat-client: could not resume (")
    assert "what was said after seq" in notice
    alpha.event("welcome", name="alpha")  # the fresh join's welcome, on stdout like the first
    alpha.send("back again")
    alpha.event("message", text="back again")
    finish_cleanly(alpha, errors)
    assert [text for _, _, text in logged_messages(second, 0)] == ["back again"]


def test_wrong_password_after_restart(start_tracker: Any, clients: StartClient) -> None:
    """The tracker came back with another password: exit 1, ``wrong password``, no more attempts."""
    first = start_tracker(*GRACE)
    alpha, errors = client_with_stderr(clients, first.url)
    first.kill()
    errors.wait_for(lambda line: line == LOST, 2 * UNIT)
    restart(start_tracker, first, *GRACE, password="another one")
    status, _, _ = alpha.finish()
    assert status == 1
    assert errors.rest(UNIT)[-1] == "chat-client: wrong password"


def test_two_restarts_in_a_row_resume_with_the_token_of_the_first_resume(
    start_tracker: Any, clients: StartClient
) -> None:
    """Tokens are single-use: the second resume only works with the token the first ``resumed`` carried."""
    first = start_tracker(*GRACE)
    alpha, errors = client_with_stderr(clients, first.url)
    tracker = first
    for round_ in range(2):
        tracker.kill()
        errors.wait_for(lambda line: line == LOST, 2 * UNIT)
        tracker = restart(start_tracker, tracker, *GRACE)
        errors.wait_for(lambda line: line.startswith("chat-client: reconnected"), 4 * UNIT)
        alpha.send(f"after restart {round_}")
        alpha.event("message", text=f"after restart {round_}", timeout=2 * UNIT)
    stderr = finish_cleanly(alpha, errors)
    assert not any("could not resume" in line for line in stderr), stderr
    fields = [line.split(" ", 4) for line in tracker.log_lines()]
    assert [f[3] for f in fields if f[2] == "join"] == ["alpha"]  # resumed both times: never joined again
    assert [f[4] for f in fields if f[2] == "msg"] == ["after restart 0", "after restart 1"]
