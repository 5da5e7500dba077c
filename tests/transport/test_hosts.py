"""--allowed-hosts: a request whose Host the tracker does not answer to gets 400 (DNS rebinding)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest

from chat_tracker.core.hosts import AllowedHosts
from support.rawhttp import head, status_of
from support.timing import UNIT
from support.tracker import RunningTracker

REBOUND = "evil.example"  # a name that an attacker's DNS points at 127.0.0.1 after the page loaded


def upgrade(host: str, origin: str | None = None) -> dict[str, str]:
    """The headers of a browser's WebSocket handshake from a page on ``origin``."""
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    return headers | ({"Origin": origin} if origin else {})


def answer(tracker: RunningTracker, path: str, host: str, headers: dict[str, str] | None = None) -> int | None:
    return status_of(tracker.port, head("GET", path, host, headers or {}), timeout=2 * UNIT)


@pytest.mark.parametrize("adapter", ["native", "deflate"])
def test_a_rebound_host_is_refused_everywhere(start_tracker: Callable[..., RunningTracker], adapter: str) -> None:
    """On loopback (the default, auto): Host evil.example gets 400 on REST, the page and /ws, Origin or not."""
    tracker = start_tracker(*(["--ws-deflate"] if adapter == "deflate" else []))
    evil = f"{REBOUND}:{tracker.port}"
    assert answer(tracker, "/healthz", evil) == 400
    assert answer(tracker, "/", evil) == 400
    assert answer(tracker, "/web/app.js", evil) == 400
    assert answer(tracker, "/ws", evil, upgrade(evil, f"http://{evil}")) == 400  # the rebinding page: was 101
    assert answer(tracker, "/ws", evil, upgrade(evil)) == 400
    for name in ("localhost", "127.0.0.1", "[::1]", "LocalHost"):
        own = f"{name}:{tracker.port}"
        assert answer(tracker, "/healthz", own) == 200, name
        assert answer(tracker, "/ws", own, upgrade(own, f"http://{own}")) == 101, name  # `self`, as before
    assert answer(tracker, "/healthz", "localhost") == 200  # any port: a proxy may publish another
    # The test password is short (its own warning, tests/tracker/test_throttle.py); nothing else is said.
    said = [line for line in tracker.output if "WARNING" in line or "ERROR" in line]
    assert not [line for line in said if "shorter than 12 characters" not in line], said


def test_listed_hosts_and_patterns(start_tracker: Callable[..., RunningTracker]) -> None:
    """--allowed-hosts chat.example.org,*.example.net: those names (any subdomain of the pattern), nothing else."""
    tracker = start_tracker("--allowed-hosts", "chat.example.org,*.example.net")
    for host, status in (
        ("chat.example.org", 200),
        ("CHAT.example.org:443", 200),
        ("a.example.net", 200),
        ("b.a.example.net:8000", 200),
        ("example.net", 400),  # *.example.net is its subdomains, as in Starlette
        ("notexample.net", 400),
        ("example.org", 400),
        (f"127.0.0.1:{tracker.port}", 200),  # loopback names always: the health check asks 127.0.0.1
        ("localhost", 200),
        ("chat.example.org:notaport", 400),
    ):
        assert answer(tracker, "/healthz", host) == status, host
    own = "chat.example.org"
    assert answer(tracker, "/ws", own, upgrade(own, "https://chat.example.org")) == 101  # `self` behind TLS
    assert answer(tracker, "/ws", own, upgrade(own, "https://a.example.net")) == 403  # allowed host, other origin


def test_any_host_is_answered_with_a_star(start_tracker: Callable[..., RunningTracker]) -> None:
    """--allowed-hosts '*': every Host, the rebinding one included (the operator asked for it)."""
    tracker = start_tracker("--allowed-hosts", "*")
    assert answer(tracker, "/healthz", REBOUND) == 200


def test_listening_beyond_loopback_with_any_host_warns(start_tracker: Callable[..., RunningTracker]) -> None:
    """The start-up warning names the flag when the tracker answers any Host beyond loopback.

    192.0.2.1 (TEST-NET-1) is on no interface here: the tracker warns while building the server,
    then fails to bind and exits 1, without ever listening beyond loopback in this test.
    """
    for hosts, warned in (("auto", True), ("*", True), ("chat.example.org", False)):
        with pytest.raises(AssertionError) as never_listened:  # its output is in the message
            start_tracker("--host", "192.0.2.1", "--allowed-hosts", hosts)
        output = str(never_listened.value).splitlines()
        assert any("192.0.2.1" in line and "ERROR" in line for line in output), output  # it did try to bind
        warning = [line for line in output if "WARNING" in line and "--allowed-hosts" in line]
        assert bool(warning) == warned, (hosts, output)
        if warned:
            assert "DNS rebinding" in warning[0] and "TRACKER_ALLOWED_HOSTS" in warning[0]


@pytest.mark.parametrize(
    ("setting", "listen", "host", "allowed"),
    [
        ("auto", "127.0.0.1", "localhost:1", True),
        ("auto", "127.0.0.1", "127.0.0.5", True),
        ("auto", "::1", "[::1]:8000", True),
        ("auto", "localhost", "evil.example", False),
        ("auto", "127.0.0.1", "", False),
        ("auto", "127.0.0.1", "evil.example@localhost", False),
        ("auto", "127.0.0.1", "localhost/x", False),
        ("auto", "0.0.0.0", "evil.example", True),
        ("*", "127.0.0.1", "evil.example", True),
        ("chat.example.org", "0.0.0.0", "chat.example.org.", False),
        ("chat.example.org", "0.0.0.0", "127.0.0.1:8000", True),
        ("*.example.org", "0.0.0.0", "a.example.org", True),
        ("[::1]", "0.0.0.0", "[::1]:80", True),
    ],
)
def test_allowed_hosts_rules(setting: str, listen: str, host: str, allowed: bool) -> None:
    assert AllowedHosts.parse(setting).resolve(listen).allows(host or None) is allowed


@pytest.mark.parametrize("bad", ["", " , ", "evil*.example", "a/b"])
def test_allowed_hosts_refuses_nonsense(bad: str) -> None:
    with pytest.raises(ValueError, match="host name"):
        AllowedHosts.parse(bad)
