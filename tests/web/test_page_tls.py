"""The page served over https by a tracker with ``--tls-cert``: it opens its WebSocket as wss:// and chats.

The certificate comes from a CA made at test time (``support.tls``); chromium is told to
accept it (``ignore_https_errors``), as a person would after checking it. A page that
opened ``ws://`` from an https page would be blocked by the browser as mixed content,
so a working chat is the page's proof; the WebSocket's URL is checked too.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from support.tls import make_certificates, start_tls_tracker
from support.tracker import StartTracker
from support.web import WAIT_MS, Browser, JsonMember, join, lines_with, open_page, type_line


def test_page_over_https_joins_and_chats_over_wss(
    browser: Browser, start_tracker: StartTracker, tmp_path: Path
) -> None:
    certificates = make_certificates(tmp_path / "tls")
    tracker = start_tls_tracker(start_tracker, certificates)
    member = JsonMember(tracker, "termi", ssl=certificates.client_context())
    context = browser(ignore_https_errors=True)
    sockets: list[str] = []
    page = open_page(context, tracker)
    page.on("websocket", lambda ws: sockets.append(ws.url))  # the page opens it once the password is typed
    try:
        assert page.url.startswith("https://127.0.0.1:")
        join(page, tracker, "webby")
        member.expect("joined", name="webby")
        member.say("hello from a wss member")
        expect(lines_with(page, "hello from a wss member")).to_have_count(1, timeout=WAIT_MS)
        type_line(page, "hello over https")
        member.expect("message", name="webby", text="hello over https")
        assert sockets and all(url == f"wss://127.0.0.1:{tracker.port}/ws" for url in sockets), sockets
        assert getattr(page, "errors", []) == []
    finally:
        member.close()
