"""The catch-up against a scripted fake tracker: a connection lost in the middle of it, resumed, and the paging goes on.

The fake (``support.fake_tracker``) records every frame the client sends, so the test sees the
``history`` asked for again on the new connection and the ``read`` sent when leaving.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chat_client.catchup import UNREAD_PAGE, unread_header
from chat_protocol import ChatMessage, HistoryPage, Limits, Resumed, Welcome
from support.clients import StartClient
from support.fake_tracker import TS, FakeTracker, Handler, Peer

StartFake = Callable[[list[Handler]], FakeTracker]
MISSED = [f"missed {seq}" for seq in range(5, 10)]  # seqs 5-9: alpha read up to 4, her welcome is 10


def missed(seq: int) -> dict[str, Any]:
    return {"type": "message", "seq": seq, "ts": TS, "name": "beta", "text": f"missed {seq}"}


def welcomes_then_restarts_before_the_page(peer: Peer) -> None:
    """A returning member's welcome (read 4, five unread); a live line; then a restart (1012) before any page."""
    assert peer.hello()["type"] == "join"
    unread = len(MISSED)
    peer.send(Welcome(10, TS, "alpha", "hi", ["alpha"], Limits(), "e1", "t1", registered=True, read=4, unread=unread))
    assert peer.recv() == {"type": "history", "after": 4, "limit": UNREAD_PAGE}
    peer.send(ChatMessage(11, TS, "beta", "live during the catch-up"))
    peer.ws.close(1012, "restarting")


def resumes_then_answers_the_page(peer: Peer) -> None:
    """The resume replays one line; the page asked for again comes; then echoes until the leave."""
    request = peer.hello()
    assert (request["type"], request["after"]) == ("resume", 11)
    peer.send(
        Resumed(12, "alpha", "e1", "t2", recovered=True, replayed=1, messages=1, members=["alpha"], limits=Limits())
    )
    peer.send(ChatMessage(12, TS, "beta", "replayed"))
    assert peer.recv() == {"type": "history", "after": 4, "limit": UNREAD_PAGE}
    peer.send(HistoryPage(first=5, last=9, more=False, events=[missed(seq) for seq in range(5, 10)]))
    peer.echo_until_leave(12)


def test_a_catch_up_cut_by_a_lost_connection_goes_on_after_the_resume(fake: StartFake, clients: StartClient) -> None:
    tracker = fake([welcomes_then_restarts_before_the_page, resumes_then_answers_the_page])
    alpha = clients("--json", "--username", "alpha", tracker.url, env={"CHAT_PASSPHRASE": "correct horse battery"})
    alpha.event("message", text="replayed")
    alpha.close_stdin()
    status, lines, stderr = alpha.finish()
    assert status == 0, stderr
    assert unread_header(len(MISSED)) in stderr
    said = [json.loads(line).get("text") for line in lines if json.loads(line)["type"] == "message"]
    assert said == [*MISSED, "live during the catch-up", "replayed"]
    reads = [frame["seq"] for frame in tracker.sent if frame["type"] == "read"]
    assert reads and reads[-1] == 12 and reads == sorted(reads), tracker.sent
    kinds = [frame["type"] for frame in tracker.sent]
    assert kinds.index("leave") > max(index for index, kind in enumerate(kinds) if kind == "read")
