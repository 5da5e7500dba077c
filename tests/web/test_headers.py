"""What the tracker serves at / and which pages may open /ws: headers, CSP, the Origin allow-list."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin as WsOrigin

from chat_tracker.core.origins import AllowedOrigins, origin_list
from support.timing import UNIT
from support.tracker import RunningTracker, StartTracker


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []  # event-handler attributes (onclick=...) and inline script bodies
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inline += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def test_the_page_is_served_with_a_strict_policy(tracker: RunningTracker) -> None:
    """/ and its files: a CSP of 'self' only, nosniff, no-referrer; the page has no inline script."""
    answer = httpx.get(tracker.http_url + "/", timeout=UNIT)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    policy = dict(
        [*directive.split(" ", 1), ""][:2] for directive in answer.headers["content-security-policy"].split("; ")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'none'"
    assert policy["require-trusted-types-for"] == "'script'"
    sources = " ".join(policy.values())
    assert "unsafe" not in sources and "http" not in sources and "*" not in sources  # no inline, no other origin
    parsed = _Scripts()
    parsed.feed(answer.text)
    assert parsed.inline == []
    assert [script.get("src") for script in parsed.scripts] == ["/web/app.js"]
    assert "http://" not in answer.text and "https://" not in answer.text  # nothing from elsewhere
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("icon.svg", "image/svg+xml")):
        part = httpx.get(f"{tracker.http_url}/web/{name}", timeout=UNIT)
        assert part.status_code == 200 and part.headers["content-type"].startswith(kind)
        assert part.headers["x-content-type-options"] == "nosniff"
        assert part.headers["content-security-policy"] == answer.headers["content-security-policy"]
        again = httpx.get(f"{tracker.http_url}/web/{name}", headers={"If-None-Match": part.headers["etag"]})
        assert again.status_code == 304
    for missing in ("/web/nope.js", "/web/..%2Fweb.py", "/web/%2e%2e/app.py"):
        assert httpx.get(tracker.http_url + missing, timeout=UNIT).status_code == 404
    schema = httpx.get(tracker.http_url + "/openapi.json", timeout=UNIT).json()
    assert "/" not in schema["paths"]  # the page is not part of the REST API


def _hello(tracker: RunningTracker, origin: str | None) -> str:
    with connect(
        tracker.url,
        origin=WsOrigin(origin) if origin is not None else None,
        subprotocols=["groupchat.v1"],  # type: ignore[list-item]
        open_timeout=4 * UNIT,
    ) as ws:
        return str(json.loads(ws.recv(timeout=4 * UNIT))["type"])


def test_a_foreign_origin_is_refused_at_the_handshake(tracker: RunningTracker) -> None:
    """Another site's page gets HTTP 403 before any WebSocket; no Origin and the tracker's own origin get in."""
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{tracker.port + 1}", "https://127.0.0.1"):
        with pytest.raises(InvalidStatus) as refused:
            _hello(tracker, origin)
        assert refused.value.response.status_code == 403, origin
    assert _hello(tracker, None) == "hello"  # chat-client, wscat: no Origin
    assert _hello(tracker, f"http://127.0.0.1:{tracker.port}") == "hello"
    tracker.wait_for_output(r"Refused a WebSocket from 127\.0\.0\.1: origin 'http://evil\.example' is not allowed")


def test_allowed_origins_lists_other_pages(start_tracker: StartTracker) -> None:
    """--allowed-origins names the pages that may connect; 'self' is then only there if listed."""
    tracker = start_tracker("--allowed-origins", "https://chat.example.org")
    assert _hello(tracker, "https://chat.example.org") == "hello"
    assert _hello(tracker, "https://CHAT.example.org:443") == "hello"  # the same origin, spelt otherwise
    with pytest.raises(InvalidStatus):
        _hello(tracker, f"http://127.0.0.1:{tracker.port}")
    assert _hello(tracker, None) == "hello"


@pytest.mark.parametrize(
    ("setting", "origin", "host", "allowed"),
    [
        ("self", None, "127.0.0.1:8000", True),
        ("self", "", "127.0.0.1:8000", True),
        ("self", "http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("self", "http://127.0.0.1:8001", "127.0.0.1:8000", False),
        ("self", "https://chat.example.org", "chat.example.org", True),  # behind a TLS proxy keeping the Host
        ("self", "http://chat.example.org", "chat.example.org:80", True),
        ("self", "http://[::1]:8000", "[::1]:8000", True),
        ("self", "http://evil.example", "127.0.0.1:8000", False),
        ("self", "null", "127.0.0.1:8000", False),
        ("self", "http://127.0.0.1:8000", None, False),
        ("self", "http://127.0.0.1:8000", "127.0.0.1:port", False),
        ("none", "http://127.0.0.1:8000", "127.0.0.1:8000", False),
        ("none", None, "127.0.0.1:8000", True),
        ("*", "http://anything.example", "127.0.0.1:8000", True),
        ("self,https://b.example", "https://b.example", "127.0.0.1:8000", True),
        ("https://b.example", "http://127.0.0.1:8000", "127.0.0.1:8000", False),
    ],
)
def test_allowed_origins_rules(setting: str, origin: str | None, host: str | None, allowed: bool) -> None:
    """The allow-list's rules, one handshake's headers at a time."""
    assert AllowedOrigins.parse(setting).allows(origin, host) is allowed


def test_allowed_origins_parses_and_prints() -> None:
    """The default is 'self'; a malformed origin is refused with its text."""
    assert origin_list("self") == AllowedOrigins()
    assert str(AllowedOrigins()) == "self"
    assert str(origin_list("self, https://b.example")) == "self,https://b.example:443"
    for bad in ("b.example", "ftp://b.example", "https://b.example/path", "https://user@b.example"):
        with pytest.raises(ValueError, match=re.escape(bad)):
            origin_list(bad)
