"""Request bodies are bounded before anything reads them: size (413), time (408), /admin's password (401)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from support.process import rss_kib
from support.rawhttp import chunked, head, stream_body, zeros
from support.timing import UNIT
from support.tracker import RunningTracker

ADMIN = "moderators-only-secret"
BIG = 300_000_000  # 300 MB: never held in the test's memory, made as it is sent
MIB = 1024


def kick(port: int, headers: dict[str, str]) -> bytes:
    return head("POST", "/admin/kick", f"127.0.0.1:{port}", {"Content-Type": "application/json", **headers})


@contextmanager
def peak_growth(tracker: RunningTracker) -> Iterator[Callable[[], int]]:
    """The tracker's largest resident-set growth (KiB) while the block runs, sampled and from VmHWM."""
    pid = tracker.process.pid
    before, high_before = rss_kib(pid), rss_kib(pid, "VmHWM")
    peak, stop = [before], threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak.append(rss_kib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: max(max(peak) - before, rss_kib(pid, "VmHWM") - high_before)
    finally:
        stop.set()
        sampler.join()


def no_errors(tracker: RunningTracker) -> None:
    assert not [line for line in tracker.output if " ERROR " in line or "Traceback" in line]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_300_mb_body_without_credentials_costs_nothing(
    start_tracker: Callable[..., RunningTracker], framing: str
) -> None:
    """300 MB to /admin/kick with no password: answered (413, or 401) within a second, under 5 MB of memory."""
    tracker = start_tracker(env={"TRACKER_ADMIN_PASSWORD": ADMIN})
    if framing == "chunked":
        request, body = kick(tracker.port, {"Transfer-Encoding": "chunked"}), chunked(zeros(BIG))
    else:
        request, body = kick(tracker.port, {"Content-Length": str(BIG)}), zeros(BIG)
    with peak_growth(tracker) as growth:
        answer = stream_body(tracker.port, request, body, timeout=4 * UNIT)
    assert answer.status in (401, 413), answer
    assert answer.seconds < UNIT / 5, answer  # one second, scaled
    assert answer.closed and answer.sent < BIG // 10
    assert growth() < 5 * MIB, f"the tracker grew by {growth()} KiB"
    no_errors(tracker)


def test_a_declared_length_over_the_limit_is_refused_unread(start_tracker: Callable[..., RunningTracker]) -> None:
    """Content-Length one over --max-body-bytes: 413 before any of the body is sent; at the limit: read."""
    tracker = start_tracker("--max-body-bytes", "1000", env={"TRACKER_ADMIN_PASSWORD": ADMIN})
    auth = {"Authorization": f"Bearer {ADMIN}"}
    over = stream_body(tracker.port, kick(tracker.port, {**auth, "Content-Length": "1001"}), [], timeout=UNIT)
    assert over.status == 413 and over.closed and over.seconds < UNIT / 5, over
    fitting = json.dumps({"name": "nobody"}).encode().ljust(1000)  # whitespace is valid JSON padding
    at_limit = stream_body(
        tracker.port, kick(tracker.port, {**auth, "Content-Length": "1000"}), [fitting], timeout=UNIT
    )
    assert at_limit.status == 404, at_limit  # read and understood: there is no member "nobody"
    no_errors(tracker)


def test_a_chunked_body_is_counted_as_it_streams(start_tracker: Callable[..., RunningTracker]) -> None:
    """With the admin password, a chunked body is stopped with 413 once past the limit; under it, it is read."""
    tracker = start_tracker("--max-body-bytes", "1000", env={"TRACKER_ADMIN_PASSWORD": ADMIN})
    request = kick(tracker.port, {"Authorization": f"Bearer {ADMIN}", "Transfer-Encoding": "chunked"})
    endless = chunked(zeros(BIG, piece=300))
    over = stream_body(tracker.port, request, endless, timeout=2 * UNIT)
    assert over.status == 413 and over.closed, over
    assert over.sent < 64 * 1024 * 1024, over  # stopped long before the end
    small = chunked([b'{"name": ', b'"nobody"}'])
    assert stream_body(tracker.port, request, small, timeout=UNIT).status == 404
    no_errors(tracker)


def test_a_slow_body_gets_408_within_the_body_timeout(start_tracker: Callable[..., RunningTracker]) -> None:
    """A body that stops half-way is answered 408 and closed after --body-timeout, not kept open."""
    tracker = start_tracker("--body-timeout", "1", "--header-timeout", "30", env={"TRACKER_ADMIN_PASSWORD": ADMIN})
    request = kick(tracker.port, {"Authorization": f"Bearer {ADMIN}", "Content-Length": "100"})
    answer = stream_body(tracker.port, request, [b'{"name": '], timeout=4 * UNIT)
    assert answer.status == 408 and answer.closed, answer
    assert 0.9 <= answer.seconds < 1 + UNIT / 2, answer
    no_errors(tracker)


def test_the_admin_password_is_checked_before_the_body(start_tracker: Callable[..., RunningTracker]) -> None:
    """No or a wrong password: 401 while the body has not even been sent, and the connection closes."""
    tracker = start_tracker(env={"TRACKER_ADMIN_PASSWORD": ADMIN})
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        request = kick(tracker.port, {**headers, "Content-Length": "60000"})
        answer = stream_body(tracker.port, request, [], timeout=2 * UNIT)
        assert answer.status == 401 and answer.closed, answer
        assert "www-authenticate: bearer" in answer.head.lower()
    no_errors(tracker)


def test_admin_is_not_there_when_moderation_is_off(tracker: RunningTracker) -> None:
    """No admin password: /admin answers 404 at once, body unread or refused, memory untouched."""
    unread = stream_body(tracker.port, kick(tracker.port, {"Content-Length": "60000"}), [], timeout=2 * UNIT)
    assert unread.status == 404 and unread.closed, unread
    with peak_growth(tracker) as growth:
        big = stream_body(
            tracker.port, kick(tracker.port, {"Transfer-Encoding": "chunked"}), chunked(zeros(BIG)), timeout=2 * UNIT
        )
    assert big.status in (404, 413) and big.seconds < UNIT / 5, big
    assert growth() < 5 * MIB
    small = json.dumps({"name": "x"}).encode()
    plain = stream_body(tracker.port, kick(tracker.port, {"Content-Length": str(len(small))}), [small], timeout=UNIT)
    assert plain.status == 404
    no_errors(tracker)


def test_bodies_within_bounds_work_as_before(start_tracker: Callable[..., RunningTracker]) -> None:
    """A normal admin request on a kept-alive connection is read and answered; GETs are untouched."""
    import httpx

    tracker = start_tracker(env={"TRACKER_ADMIN_PASSWORD": ADMIN})
    with httpx.Client(base_url=tracker.http_url, timeout=UNIT) as client:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        announced: Any = client.post("/admin/announce", json={"text": "x" * 2000}, headers=auth)
        assert announced.status_code == 200 and announced.json()["text"] == "x" * 2000
        assert client.get("/healthz").status_code == 200  # same connection, kept alive
        assert client.post("/admin/kick", json={"name": "nobody"}, headers=auth).status_code == 404
    no_errors(tracker)
