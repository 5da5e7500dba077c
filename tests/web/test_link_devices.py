"""The page's Link (link.js) with device tokens, on fake WebSockets in chromium: which join it sends, what it keeps.

The terminal client keeps no device token, so these have no Python twin to agree with (as
test_link_parity.py has): each scenario states the frames sent and the tokens kept itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from support.tracker import launch_tracker
from support.web import launch_chromium, open_page

NAME = "webby"
PASSPHRASE = "correct horse battery"
LABEL = "browser: Test 1 on Nowhere"
LIMITS = {"max_message_chars": 2000, "max_frame_bytes": 65536, "rate_per_second": 100, "rate_burst": 50}

# Steps: {frame}: the tracker sends it; {close: code}: the connection ends (a Link waiting to
# reconnect does so at once); {accept: true}: a new connection's hello, already authenticated;
# {join: [name, passphrase]}: the person. After each step: the frames sent during it, the tokens
# kept, the view's calls (their names) and the Link's state.
HARNESS = """
async ({ steps, kept, label }) => {
  const { Link } = await import("/web/link.js");
  const logic = await import("/web/logic.js");
  const sent = [];
  const sockets = [];
  class FakeSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    constructor() {
      this.readyState = FakeSocket.OPEN;
      sockets.push(this);
    }
    send(text) {
      sent.push(JSON.parse(text));
    }
    close() {
      this.readyState = FakeSocket.CLOSED;
    }
  }
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, String(v)) };
  const tokens = new logic.DeviceTokens(storage);
  for (const [name, device, token] of kept) tokens.keep(name, device, token);
  const calls = [];
  const view = new Proxy({}, { get: (_, key) => (...args) => calls.push(key) });
  const socket = () => sockets[sockets.length - 1];
  const deliver = (frame) => socket().onmessage({ data: JSON.stringify(frame) });
  const realSocket = globalThis.WebSocket;
  globalThis.WebSocket = FakeSocket;
  const link = new Link("ws://tracker.invalid/ws", "secret", view, { tokens, deviceLabel: label });
  const out = [];
  try {
    link.start();
    for (const step of steps) {
      const before = sent.length;
      calls.length = 0;
      if (step.frame) deliver(step.frame);
      else if (step.accept) deliver({ type: "hello", version: 1, authenticated: true });
      else if (step.join) link.join(...step.join);
      else if (step.close) {
        socket().onclose({ code: step.close });
        if (link.state === "waiting") link.reconnectNow();
      }
      const entry = tokens.get(step.kept ?? "webby");
      out.push({ sent: sent.slice(before), token: entry && entry.token, calls: [...calls], state: link.state });
    }
    return out;
  } finally {
    link.stopTimers();
    clearTimeout(link.retryTimer);
    globalThis.WebSocket = realSocket;
  }
};
"""


@pytest.fixture(scope="module")
def page(playwright_driver: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """One page for the module: the scenarios only import the page's modules, on a tracker that serves them."""
    tracker = launch_tracker(tmp_path_factory.mktemp("data"))
    context = launch_chromium(playwright_driver, tmp_path_factory.mktemp("profile"))
    try:
        yield open_page(context, tracker)
    finally:
        context.close()
        tracker.stop()


def welcome(device_token: str | None = None, token: str = "") -> dict[str, Any]:
    """A registered member's welcome; ``token`` empty: an extra connection, which offers no resume."""
    frame: dict[str, Any] = {"type": "welcome", "seq": 10, "ts": "2026-12-06T12:00:00.000Z", "name": NAME}
    frame |= {"greeting": "hi", "members": [NAME], "limits": LIMITS, "epoch": "e1", "token": token}
    frame |= {"resume_grace": 60, "registered": True, "read": 9, "unread": 0}
    if device_token is not None:
        frame |= {"device": "d1", "device_token": device_token}
    return frame


def run(page: Page, steps: list[dict[str, Any]], kept: list[list[str]] | None = None) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(HARNESS, {"steps": steps, "kept": kept or [], "label": LABEL})
    return result


def joins(step: dict[str, Any]) -> list[dict[str, Any]]:
    return [frame for frame in step["sent"] if frame["type"] == "join"]


def test_a_dropped_connection_signs_in_again_with_the_kept_token_then_with_the_passphrase(page: Page) -> None:
    """Joining afresh uses the newest kept token, keeps the next one; a refused token falls back to the passphrase."""
    result = run(
        page,
        [
            {"accept": True},
            {"join": [NAME, PASSPHRASE]},
            {"frame": welcome("T1")},
            {"close": 1006},
            {"accept": True},
            {"frame": welcome("T2")},
            {"close": 1006},
            {"accept": True},
            {"frame": {"type": "error", "code": "bad_device_token", "message": "signed out"}},
            {"frame": welcome("T3")},
        ],
    )
    assert joins(result[1]) == [{"type": "join", "name": NAME, "passphrase": PASSPHRASE, "device": LABEL}]
    assert result[2]["token"] == "T1"
    assert joins(result[4]) == [{"type": "join", "name": NAME, "device_token": "T1"}]  # no passphrase sent again
    assert result[5]["token"] == "T2"
    assert joins(result[7]) == [{"type": "join", "name": NAME, "device_token": "T2"}]
    assert joins(result[8]) == [{"type": "join", "name": NAME, "passphrase": PASSPHRASE, "device": LABEL}]
    assert result[8]["token"] is None and "nameRefused" not in result[8]["calls"]  # the spent token is gone
    assert result[9]["token"] == "T3" and result[9]["state"] == "live"


def test_a_kept_token_signs_in_without_the_passphrase_and_a_refused_one_asks_for_it(page: Page) -> None:
    """Entering, the kept token (a lookalike finds it) goes alone; refused, it is forgotten and the name asked again."""
    kept = [[NAME, "d1", "T9"]]
    signed_in = run(page, [{"accept": True}, {"join": ["WEBBY", None]}, {"frame": welcome("T10")}], kept)
    assert joins(signed_in[1]) == [{"type": "join", "name": "WEBBY", "device_token": "T9"}]
    assert signed_in[2]["token"] == "T10"
    refused = run(
        page,
        [
            {"accept": True},
            {"join": [NAME, None]},
            {"frame": {"type": "error", "code": "bad_device_token", "message": "signed out"}},
            {"join": [NAME, PASSPHRASE]},
        ],
        kept,
    )
    assert refused[2]["token"] is None and "nameRefused" in refused[2]["calls"] and refused[2]["sent"] == []
    assert joins(refused[3]) == [{"type": "join", "name": NAME, "passphrase": PASSPHRASE, "device": LABEL}]


def test_signed_out_forgets_the_token_and_does_not_reconnect(page: Page) -> None:
    """Close 4015 ends the session and forgets the token; so does a `signed_out` naming this device."""
    closed = run(page, [{"accept": True}, {"join": [NAME, PASSPHRASE]}, {"frame": welcome("T1")}, {"close": 4015}])
    assert closed[2]["token"] == "T1"
    assert closed[3]["token"] is None and closed[3]["state"] == "ended" and "ended" in closed[3]["calls"]
    assert closed[3]["sent"] == []
    signed_out = run(
        page,
        [
            {"accept": True},
            {"join": [NAME, PASSPHRASE]},
            {"frame": welcome("T1")},
            {"frame": {"type": "signed_out", "device": "d1"}},
        ],
    )
    assert signed_out[3]["token"] is None and "signedOut" in signed_out[3]["calls"]
    other = run(
        page,
        [
            {"accept": True},
            {"join": [NAME, PASSPHRASE]},
            {"frame": welcome("T1")},
            {"frame": {"type": "signed_out", "device": "d2"}},
        ],
    )
    assert other[3]["token"] == "T1"
