"""What the browser tests share: the browser, joining from the page, and the other kinds of member.

The browser is the system's ``/usr/bin/chromium`` (``CHROMIUM`` overrides it), driven by
Playwright's Python package through ``executable_path``: nothing is downloaded at test
time, and each context gets a fresh profile directory.

``join`` drives the page as a person does (labels, Enter). The page's peers are real
clients of the tracker: the terminal client in scripted ``--json`` mode
(``TerminalMember``), a plain-text WebSocket client (``PlainMember``), and a JSON
member on the ``websockets`` sync client (``JsonMember``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from chat_protocol import SUBPROTOCOL
from support.environment import program
from support.process import Process
from support.timing import UNIT
from support.tracker import RunningTracker

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",  # root in CI, where chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
# Playwright's waits, in milliseconds: an action's, a navigation's and an expect()'s (the web conftest makes
# it expect's default too). Generous, since each returns as soon as what it waits for holds.
WAIT_MS = int(4 * UNIT * 1000)


def launch_chromium(driver: Any, profile: Path, viewport: dict[str, int] | None = None, **options: Any) -> Any:
    """Debian's chromium with a fresh profile in ``profile``: a BrowserContext."""
    context = driver.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS, viewport=viewport or DESKTOP, **options
    )
    context.set_default_timeout(WAIT_MS)  # every action and navigation, in the suite's unit
    return context


Browser = Callable[..., Any]  # browser(viewport=...) -> a BrowserContext with a fresh profile


def field(page: Page, label: str) -> Locator:
    return page.get_by_label(label, exact=True)


def log(page: Page) -> Locator:
    return page.get_by_role("log")


def online(page: Page) -> Locator:
    return page.get_by_role("list", name="Online", exact=True)


def open_page(context: Any, tracker: RunningTracker) -> Page:
    page: Page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(tracker.http_url + "/")
    page.errors = errors  # type: ignore[attr-defined]  # read by the tests: no script error may happen
    return page


def enter_password(page: Page, password: str) -> None:
    field(page, "Password").fill(password)
    field(page, "Password").press("Enter")


def enter_name(page: Page, name: str) -> None:
    field(page, "Name").fill(name)
    field(page, "Name").press("Enter")


def join(page: Page, tracker: RunningTracker, name: str) -> None:
    """Password, then name, as a person types them; return once the room is shown."""
    enter_password(page, tracker.password)
    enter_name(page, name)
    expect(field(page, "Message")).to_be_visible(timeout=WAIT_MS)
    expect(online(page)).to_contain_text(name, timeout=WAIT_MS)


def type_line(page: Page, line: str) -> None:
    field(page, "Message").fill(line)
    field(page, "Message").press("Enter")


def lines_with(page: Page, text: str) -> Locator:
    """The log's lines whose text is exactly ``text`` (after the name)."""
    return log(page).locator("li.message").filter(has=page.locator("bdi.text", has_text=text))


class JsonMember:
    """A groupchat.v1 member on the websockets sync client (password in the header)."""

    def __init__(self, tracker: RunningTracker, name: str, **kwargs: Any) -> None:
        self.name = name
        self.ws: ClientConnection = connect(
            tracker.url,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            additional_headers={"Authorization": f"Bearer {tracker.password}"},
            open_timeout=4 * UNIT,
            **kwargs,
        ).__enter__()  # entered: websockets 17.1+ warns about a connection used outside a with block
        assert self.recv()["type"] == "hello"
        self.send({"type": "join", "name": name})
        self.welcome = self.expect("welcome")

    def send(self, frame: dict[str, Any]) -> None:
        self.ws.send(json.dumps(frame))

    def say(self, text: str) -> None:
        self.send({"type": "message", "text": text})
        self.expect("message", text=text)

    def recv(self, timeout: float = 4 * UNIT) -> dict[str, Any]:
        frame = self.ws.recv(timeout=timeout)
        assert isinstance(frame, str)
        body: dict[str, Any] = json.loads(frame)
        return body

    def expect(self, kind: str, timeout: float = 4 * UNIT, **fields: Any) -> dict[str, Any]:
        """Skip frames until one of type ``kind`` with these field values."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv(max(0.01, deadline - time.monotonic()))
            if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                return frame

    def vanish(self) -> None:
        """Drop the TCP connection without a close frame: to the tracker, a lost connection."""
        self.ws.socket.close()

    def close(self) -> None:
        self.ws.close()


class PlainMember:
    """A plain-text member (no subprotocol), as websocat or wscat would be."""

    def __init__(self, tracker: RunningTracker, name: str) -> None:
        self.ws = connect(tracker.url, open_timeout=4 * UNIT).__enter__()
        assert self.ws.recv(timeout=4 * UNIT) == "Enter server password..."
        self.ws.send(tracker.password)
        self.until("Enter your username...")
        self.ws.send(name)
        self.until(f"Hi {name}, You have been added to the server.")

    def until(self, line: str, timeout: float = 4 * UNIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            if frame == line:
                return frame

    def say(self, text: str) -> None:
        self.ws.send(text)

    def close(self) -> None:
        self.ws.close()


class TerminalMember:
    """The real chat-client, scripted with ``--json``: stdin lines go out, each event is a stdout line."""

    def __init__(self, tracker: RunningTracker, name: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKER_", "CHAT_"))}
        env["TRACKER_PASSWORD"] = tracker.password
        command = [program("chat-client"), "--json", "--username", name, tracker.url]
        self.process = Process(command, stdin=True, stderr="stdout", env=env)
        self.expect("welcome")

    def say(self, text: str) -> None:
        self.process.send(text)

    def expect(self, kind: str, timeout: float = 4 * UNIT, **fields: Any) -> dict[str, Any]:
        def matches(line: str) -> bool:
            try:
                frame: dict[str, Any] = json.loads(line)
            except ValueError:
                return False  # a notice of the client's own, not an event
            return frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items())

        try:
            return dict(json.loads(self.process.out.wait_for(matches, timeout)))
        except (TimeoutError, AssertionError):
            raise AssertionError(f"chat-client never printed a {kind} {fields}") from None

    def leave(self) -> int:
        """End its input: it leaves once everything it sent is acknowledged; its exit status."""
        self.process.close_stdin()
        return self.process.wait(timeout=4 * UNIT)

    def kill(self) -> None:
        self.process.end()
