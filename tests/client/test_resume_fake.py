"""Reconnecting against a scripted fake tracker: each resume answer and each refusal.

The fake (``support.fake_tracker``) records every frame the client sends, so a test can check
that a message was sent again, with the same id, or not at all. The real tracker's
restarts are in test_reconnect.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from chat_protocol import ChatMessage, Error, Limits, Resumed
from support.clients import StartClient
from support.fake_tracker import TS, FakeTracker, Handler, Peer

StartFake = Callable[[list[Handler]], FakeTracker]


def first_logs_two_echoes_one(peer: Peer) -> None:
    """Join at seq 1; log "one" (2) and "two" (3) but echo only "one"; then restart (1012)."""
    assert peer.hello()["type"] == "join"
    peer.welcome(1)
    first, second = peer.recv(), peer.recv()
    peer.send(ChatMessage(2, TS, "alpha", first["text"], first["id"]))
    assert second["type"] == "message"
    peer.ws.close(1012, "restarting")


def resumes_with_replay(peer: Peer) -> None:
    """Resume after 2: replay "two" from chat.log (no id) and beta's line, then echo as usual."""
    request = peer.hello()
    assert (request["type"], request["token"], request["epoch"], request["after"]) == ("resume", "t1", "e1", 2)
    resumed = Resumed(
        4, "alpha", "e1", "t2", recovered=True, replayed=2, messages=2, members=["alpha"], limits=Limits()
    )
    peer.send(resumed)
    peer.send(ChatMessage(3, TS, "alpha", "two"))
    peer.send(ChatMessage(4, TS, "beta", "said while you were away"))
    peer.echo_until_leave(4)


def refuses_resume(peer: Peer) -> None:
    """The resume is refused (expired); the fresh join that follows gets seq 10."""
    assert peer.hello()["type"] == "resume"
    peer.send(Error("resume_expired", "the session expired"))
    assert peer.recv() == {"type": "join", "name": "alpha"}
    peer.welcome(10)
    peer.echo_until_leave(10)


def test_resume_replays_and_does_not_resend_what_was_logged(fake: StartFake, clients: StartClient) -> None:
    """After a 1012: resume after the last seq; the replay shows what was missed once and acknowledges "two"."""
    tracker = fake([first_logs_two_echoes_one, resumes_with_replay])
    alpha = clients("--json", "--username", "alpha", tracker.url)
    alpha.event("welcome")
    alpha.send("one", "two")
    alpha.event("message", text="said while you were away")
    alpha.send("three")
    alpha.event("message", text="three")
    alpha.close_stdin()
    status, lines, stderr = alpha.finish()
    assert status == 0, stderr
    assert [json.loads(line)["type"] for line in lines] == [
        "welcome",
        "message",
        "resumed",
        "message",
        "message",
        "message",
        "bye",
    ]
    assert [e.get("text") for e in alpha.events() if e["type"] == "message"] == [
        "one",
        "two",
        "said while you were away",
        "three",
    ]
    assert [text for text, _ in tracker.messages()] == ["one", "two", "three"]  # "two" was not sent again
    assert stderr.splitlines() == [
        "chat-client: connection lost; reconnecting...",
        "chat-client: reconnected; 2 missed messages follow",
    ]


def test_refused_resume_joins_again_and_resends_with_the_same_id(fake: StartFake, clients: StartClient) -> None:
    """resume_expired: a fresh join on the same connection, a notice of what was missed, "two" sent again, same id."""
    tracker = fake([first_logs_two_echoes_one, refuses_resume])
    alpha = clients("--json", "--username", "alpha", tracker.url)
    alpha.event("welcome")
    alpha.send("one", "two")
    alpha.event("welcome", seq=10)
    alpha.event("message", text="two")
    alpha.close_stdin()
    status, _, stderr = alpha.finish()
    assert status == 0, stderr
    sent = tracker.messages()
    assert [text for text, _ in sent] == ["one", "two", "two"]
    assert sent[1][1] == sent[2][1] and sent[0][1] != sent[1][1]
    assert stderr.splitlines() == [
        "chat-client: connection lost; reconnecting...",
        (
            "chat-client: could not resume (the session expired); joined again as alpha; "
            "what was said after seq 2 until now was missed"
        ),
    ]


def lost_after_join(peer: Peer) -> None:
    """Join at seq 1, then a close 1011 (an internal error: worth reconnecting after)."""
    assert peer.hello()["type"] == "join"
    peer.welcome(1)
    peer.ws.close(1011, "oops")


def refuses_resume_and_name(peer: Peer) -> None:
    assert peer.hello()["type"] == "resume"
    peer.send(Error("resume_bad_token", "unknown token"))
    assert peer.recv()["type"] == "join"
    peer.send(Error("name_taken", "the name 'alpha' is taken"))
    peer.recv()


def wrong_password(peer: Peer) -> None:
    peer.send(Error("bad_password", "wrong password"))
    peer.ws.close(4001, "bad password")


def replaced(peer: Peer) -> None:
    """The session was resumed elsewhere: 4010 is final."""
    assert peer.hello()["type"] == "join"
    peer.welcome(1)
    peer.ws.close(4010, "replaced")


@pytest.mark.parametrize(
    ("handlers", "status", "stderr"),
    [
        ([lost_after_join, refuses_resume_and_name], 1, "chat-client: username refused: the name 'alpha' is taken\n"),
        ([lost_after_join, wrong_password], 1, "chat-client: wrong password\n"),
        (
            [replaced],
            4,
            (
                "chat-client: the tracker closed the session: this session was resumed on another connection "
                "(close code 4010)\n"
            ),
        ),
    ],
    ids=["name-taken-on-rejoin", "wrong-password-on-reconnect", "replaced-4010"],
)
def test_final_refusals(
    fake: StartFake, clients: StartClient, handlers: list[Handler], status: int, stderr: str
) -> None:
    """A refused name or password on reconnecting is exit 1, a 4010 close exit 4: no more attempts."""
    tracker = fake(handlers)
    alpha = clients("--json", "--username", "alpha", tracker.url)
    alpha.event("welcome")
    got_status, _, got_stderr = alpha.finish()
    assert got_status == status
    assert got_stderr.splitlines()[-1] == stderr.rstrip("\n")
    assert tracker.connections == len(handlers)


def restarts_on_leave(peer: Peer) -> None:
    """Take the messages and the ``leave`` without a word, then restart (1012): nothing was acknowledged."""
    assert peer.hello()["type"] == "join"
    peer.welcome(1)
    while peer.recv()["type"] != "leave":
        pass
    peer.ws.close(1012, "restarting")


def resumes_nothing_missed(peer: Peer) -> None:
    assert peer.hello()["type"] == "resume"
    peer.send(Resumed(1, "alpha", "e1", "t2", True, 0, 0, ["alpha"], Limits()))
    peer.echo_until_leave(1)


def test_loss_while_leaving_resends_and_leaves_again(fake: StartFake, clients: StartClient) -> None:
    """End of input, then the connection lost before the bye: resume, send the unacknowledged again, leave again."""
    tracker = fake([restarts_on_leave, resumes_nothing_missed])
    alpha = clients("--json", "--username", "alpha", tracker.url)
    alpha.event("welcome")
    alpha.send("last", "words")
    alpha.close_stdin()
    status, _, stderr = alpha.finish()
    assert status == 0, stderr
    assert [e.get("text") for e in alpha.events() if e["type"] == "message"] == ["last", "words"]
    assert alpha.events()[-1]["type"] == "bye"
    kinds = [frame["type"] for frame in tracker.sent]
    assert kinds == ["join", "message", "message", "leave", "resume", "message", "message", "leave"]


def test_too_many_joins_waits_the_retry_time_then_resumes(fake: StartFake, clients: StartClient) -> None:
    """A reconnection refused with too_many_joins (retry_after 1.5, close 4014): the client says so, waits at
    least that long (not its usual backoff), then resumes."""
    refused_at: list[float] = []

    def too_many_joins(peer: Peer) -> None:
        assert peer.hello()["type"] == "resume"
        peer.send(Error("too_many_joins", "too many joins and resumes from your address; retry in 2 s", None, 1.5))
        refused_at.append(time.monotonic())
        peer.ws.close(4014, "too_many_joins")

    def resumes_after_the_wait(peer: Peer) -> None:
        waited = time.monotonic() - refused_at[0]
        assert waited >= 1.4, f"came back after {waited:.2f} s, not the 1.5 s asked for"
        resumes_nothing_missed(peer)

    tracker = fake([lost_after_join, too_many_joins, resumes_after_the_wait])
    alpha = clients("--json", "--username", "alpha", tracker.url)
    alpha.event("welcome")
    alpha.event("resumed")
    alpha.close_stdin()
    status, _, stderr = alpha.finish()
    assert status == 0, stderr
    assert tracker.connections == 3
    assert (
        "chat-client: too many joins and resumes from your address; retry in 2 s; reconnecting in 1.5 s..."
        in stderr.splitlines()
    ), stderr
