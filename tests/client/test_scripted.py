"""Scripted mode end to end: real chat-client processes, piped, against a real tracker."""

from __future__ import annotations

import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

from support.clients import Client, StartClient
from support.timing import UNIT


def log_events(tracker: Any) -> list[tuple[int, str, str, str]]:
    """chat.log as (seq, kind, name, text) tuples."""
    fields = [[*line.split(" ", 4), ""] for line in tracker.log_lines()]
    return [(int(f[0]), f[2], f[3], f[4]) for f in fields]


def join_json(clients: StartClient, tracker: Any, name: str) -> Client:
    client = clients("--json", "--username", name, tracker.url)
    client.event("welcome", name=name)
    return client


def test_several_piped_clients_lose_nothing(tracker: Any, clients: StartClient) -> None:
    """Every piped message is delivered to every member, in chat.log's order, and each client leaves at EOF."""
    names = ["alpha", "beta", "gamma"]
    members = {name: join_json(clients, tracker, name) for name in names}
    members["alpha"].event("joined", name="gamma")  # everyone is in before anyone speaks
    for name, client in members.items():
        client.send(*(f"{name} says {index}" for index in range(15)))
    for client in members.values():
        client.close_stdin()
    results = {name: client.finish() for name, client in members.items()}

    log = log_events(tracker)
    logged_messages = [(seq, name, text) for seq, kind, name, text in log if kind == "msg"]
    assert len(logged_messages) == 45
    for name, (status, _, stderr) in results.items():
        assert status == 0, stderr
        assert stderr == ""
        events = members[name].events()
        assert events[-1] == {"type": "bye", "reason": "left", "message": f"Bye, {name}."}
        received = [(e["seq"], e["name"], e["text"]) for e in events if e["type"] == "message"]
        # Exactly the log's messages between this member's join and leave, in the same order.
        joined = next(seq for seq, kind, who, _ in log if kind == "join" and who == name)
        left = next(seq for seq, kind, who, _ in log if kind == "leave" and who == name)
        assert received == [m for m in logged_messages if joined < m[0] < left]
        assert [text for _, who, text in received if who == name] == [f"{name} says {i}" for i in range(15)]
    assert [(kind, who, text) for _, kind, who, text in log if kind == "leave"] == [
        ("leave", name, "exit")
        for name in sorted(names, key=lambda n: next(seq for seq, kind, who, _ in log if kind == "leave" and who == n))
    ]


def test_plain_output_lines(tracker: Any, clients: StartClient) -> None:
    """Without --json each event is one documented line: ``[HH:MM:SS] name: text`` or ``* notice``."""
    watcher = join_json(clients, tracker, "watcher")
    talker = clients("--username", "beta", tracker.url)
    watcher.event("joined", name="beta")
    talker.send("And I am beta", "evil \x1b[2J text")
    talker.close_stdin()
    status, lines, stderr = talker.finish()
    assert (status, stderr) == (0, "")
    stamp = r"\[\d\d:\d\d:\d\d\] "
    patterns = [
        stamp + r"\* welcome beta; online now \(2\): (watcher, beta|beta, watcher)",
        stamp + r"beta: And I am beta",
        stamp + r"beta: evil \\x1b\[2J text",
        stamp + r"\* Bye, beta\.",
    ]
    assert len(lines) == len(patterns), lines
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)


def test_driver_can_wait_for_each_event(tracker: Any, clients: StartClient) -> None:
    """stdin is read line by line while connected, and each event is flushed at once."""
    alpha = join_json(clients, tracker, "alpha")
    for index in range(3):
        alpha.send(f"ping {index}")
        alpha.event("message", name="alpha", text=f"ping {index}")  # answered before the next line exists
    alpha.close_stdin()
    assert alpha.finish()[0] == 0


def test_pacing_avoids_the_rate_limit(start_tracker: Any, clients: StartClient) -> None:
    """A long script faster than the rate limit is paced by the client: nothing refused, nothing lost."""
    tracker = start_tracker("--rate", "20", "--burst", "4", "--flood-tolerance", "3")
    alpha = join_json(clients, tracker, "alpha")
    alpha.send(*(f"line {index}" for index in range(40)))
    alpha.close_stdin()
    status, _, stderr = alpha.finish(timeout=6 * UNIT)
    assert (status, stderr) == (0, "")
    assert not [event for event in alpha.events() if event["type"] == "error"]
    assert [text for _, kind, _, text in log_events(tracker) if kind == "msg"] == [f"line {i}" for i in range(40)]


def test_blank_lines_are_not_sent(tracker: Any, clients: StartClient) -> None:
    """Blank lines are skipped rather than refused by the tracker."""
    alpha = join_json(clients, tracker, "alpha")
    alpha.send("", "   ", "real")
    alpha.close_stdin()
    status, _, _ = alpha.finish()
    assert status == 0
    assert [e["type"] for e in alpha.events()] == ["welcome", "message", "bye"]


def test_wrong_password(tracker: Any, clients: StartClient) -> None:
    """A wrong password is one line on stderr and exit status 1; nothing is joined."""
    client = clients("--json", "--username", "alpha", tracker.url, password="wrong")
    status, lines, stderr = client.finish()
    assert (status, lines, stderr) == (1, [], "chat-client: wrong password\n")
    assert [kind for _, kind, _, _ in log_events(tracker)] == ["start"]


def test_password_file(tracker: Any, clients: StartClient, tmp_path: Path) -> None:
    """--password-file is read instead of TRACKER_PASSWORD."""
    path = tmp_path / "password"
    path.write_text("alphonso\n", encoding="utf-8")
    client = clients("--json", "--username", "alpha", "--password-file", str(path), tracker.url, password="wrong")
    client.close_stdin()
    assert client.finish()[0] == 0


def test_taken_name(tracker: Any, clients: StartClient) -> None:
    """A name taken (even in a lookalike spelling) is refused: one line on stderr, exit 1."""
    holder = join_json(clients, tracker, "alpha")
    client = clients("--json", "--username", "A1pha", tracker.url)
    status, lines, stderr = client.finish()
    assert status == 1
    assert lines == []
    assert stderr.startswith("chat-client: username refused: ") and stderr.count("\n") == 1
    holder.close_stdin()
    assert holder.finish()[0] == 0


def test_tracker_shutdown_mid_session(tracker: Any, clients: StartClient) -> None:
    """Ctrl+C to the tracker (close 1001, bye shutdown): the chat is over, no reconnecting; stderr says so, exit 3."""
    alpha = join_json(clients, tracker, "alpha")
    assert tracker.stop(signal.SIGINT) == 0
    status, _, stderr = alpha.finish()
    assert status == 3
    assert alpha.events()[-1]["type"] == "bye" and alpha.events()[-1]["reason"] == "shutdown"
    assert stderr.startswith("chat-client: the tracker went away") and stderr.count("\n") == 1


def test_connection_lost_mid_session(tracker: Any, clients: StartClient) -> None:
    """With --reconnect-for 0, a tracker killed outright: connection lost, one line on stderr, exit 3 at once."""
    alpha = clients("--json", "--reconnect-for", "0", "--username", "alpha", tracker.url)
    alpha.event("welcome", name="alpha")
    tracker.stop(signal.SIGKILL)
    status, _, stderr = alpha.finish()
    assert status == 3
    assert stderr == "chat-client: the tracker went away: connection to the tracker lost\n"


def test_reconnecting_gives_up_after_reconnect_for(tracker: Any, clients: StartClient) -> None:
    """A tracker killed and never back: the client retries for --reconnect-for seconds, then exits 3 saying why."""
    alpha = clients("--json", "--reconnect-for", "1", "--username", "alpha", tracker.url)
    alpha.event("welcome", name="alpha")
    started = time.monotonic()
    tracker.stop(signal.SIGKILL)
    status, lines, stderr = alpha.finish()
    assert status == 3
    assert 1 <= time.monotonic() - started < 1 + UNIT
    assert len(lines) == 1  # the welcome: notices go to stderr, stdout stays one line per event
    lost, gave_up = stderr.splitlines()
    assert lost == "chat-client: connection lost; reconnecting..."
    reason = f"(cannot reach the tracker at {tracker.url}: "
    assert gave_up.startswith("chat-client: the tracker went away: could not reconnect within 1 s " + reason)
    assert gave_up.endswith(")")


def test_unreachable_tracker(clients: StartClient) -> None:
    """Nothing listening: one clear line on stderr and exit 1."""
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = clients("--json", "--username", "alpha", f"127.0.0.1:{port}")
    status, lines, stderr = client.finish()
    assert (status, lines) == (1, [])
    assert stderr.startswith(f"chat-client: cannot reach the tracker at ws://127.0.0.1:{port}/ws")
    assert stderr.count("\n") == 1


def test_not_a_tracker(tracker: Any, clients: StartClient) -> None:
    """An HTTP server that does not upgrade to WebSocket is reported, exit 1."""
    client = clients("--json", "--username", "alpha", tracker.http_url + "/members")
    status, _, stderr = client.finish()
    assert status == 1
    assert "is not a chat tracker" in stderr


def test_sigterm_leaves_cleanly(tracker: Any, clients: StartClient) -> None:
    """SIGTERM (docker stop) ends input like EOF: the client leaves and exits 0."""
    alpha = join_json(clients, tracker, "alpha")
    alpha.send("last words")
    alpha.event("message", text="last words")
    alpha.process.send_signal(signal.SIGTERM)
    status, _, stderr = alpha.finish()
    assert (status, stderr) == (0, "")
    assert log_events(tracker)[-1][1:] == ("leave", "alpha", "exit")


def test_usage_errors(clients: StartClient, tmp_path: Path) -> None:
    """Missing username or password, a bad URL or an unreadable password file: exit 2, one line."""
    cases = [
        (["--json", "ws://127.0.0.1:1/ws"], {}, "no username"),
        (["--json", "--username", "alpha"], {"password": None}, "no password"),
        (["--json", "--username", "admin"], {}, "reserved"),
        (["--json", "--username", "alpha", "ws://127.0.0.1:1/ws?password=x"], {}, "query string"),
        (["--json", "--username", "alpha", "--password-file", str(tmp_path / "nope")], {}, "cannot read"),
        (["--timeout", "-1"], {}, "must be more than 0"),
        (["--reconnect-for", "-1"], {}, "must be 0 or more"),
    ]
    for args, kwargs, expected in cases:
        status, lines, stderr = clients(*args, **kwargs).finish()
        assert status == 2, (args, stderr)
        assert lines == []
        assert expected in stderr, (args, stderr)
        assert "Traceback" not in stderr


def test_help_documents_exit_statuses(clients: StartClient) -> None:
    """--help lists every flag, the environment variables and the exit statuses."""
    status, lines, _ = clients("--help").finish()
    text = "\n".join(lines)
    assert status == 0
    for needle in (
        "--password-file",
        "--username",
        "--json",
        "--no-color",
        "--timeout",
        "--reconnect-for",
        "--version",
        "TRACKER_URL",
        "TRACKER_PASSWORD",
        "CHAT_USERNAME",
        "NO_COLOR",
    ):
        assert needle in text
    for status_line in ("  0  ", "  1  ", "  2  ", "  3  ", "  4  "):
        assert status_line in text
