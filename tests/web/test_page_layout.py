"""The page at desktop and phone width, light and dark: no horizontal overflow; the README's screenshots.

The screenshots go to the test's own temporary directory, so a test run leaves the tracked
``docs/images`` alone. ``scripts/screenshots`` remakes the README's copies: it runs this test with
``SCREENSHOTS_DIR`` naming the directory to write them to.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from support.tracker import RunningTracker
from support.web import (
    DESKTOP,
    PHONE,
    WAIT_MS,
    Browser,
    PlainMember,
    TerminalMember,
    enter_password,
    field,
    join,
    lines_with,
    online,
    open_page,
    type_line,
)

OVERFLOW = "() => document.scrollingElement.scrollWidth"
BACKGROUND = "() => getComputedStyle(document.body).backgroundColor"


def _fits(page: Page, width: int) -> None:
    assert page.evaluate(OVERFLOW) <= width, f"the page is wider than {width} px"


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (bytes 16 to 24, after the signature and chunk header)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _screenshot(page: Page, path: Path, viewport: dict[str, int]) -> None:
    page.screenshot(path=str(path))
    assert _png_size(path) == (viewport["width"], viewport["height"]), f"{path} is not the viewport's size"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the screenshots go: the test's temporary directory unless SCREENSHOTS_DIR names another."""
    chosen = os.environ.get("SCREENSHOTS_DIR")
    directory = Path(chosen) if chosen else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_desktop_and_phone_layouts(browser: Browser, tracker: RunningTracker, screenshots: Path) -> None:
    """At 360 px nothing overflows sideways, on every step; the screenshots are taken from this conversation."""
    phone = open_page(browser(viewport=PHONE, color_scheme="dark"), tracker)
    _fits(phone, PHONE["width"])
    enter_password(phone, tracker.password)
    expect(field(phone, "Name")).to_be_visible(timeout=WAIT_MS)
    _fits(phone, PHONE["width"])
    desktop = open_page(browser(viewport=DESKTOP, color_scheme="light"), tracker)
    join(desktop, tracker, "webby")
    field(phone, "Name").fill("phoebe")
    field(phone, "Name").press("Enter")
    expect(online(phone)).to_contain_text("phoebe", timeout=WAIT_MS)

    terminal = TerminalMember(tracker, "termi")
    plain = PlainMember(tracker, "plainy")
    try:
        terminal.say("Morning! I'm in the terminal client.")
        plain.say("And I'm on websocat, plain text.")
        type_line(desktop, "Hi both, this is the browser. @phoebe are you on your phone?")
        type_line(phone, "Yes, at 360 px. Long words wrap: " + "supercalifragilistic" * 5)
        terminal.say("<b>markup</b> stays text: <img src=x onerror=alert(1)>")
        for page in (desktop, phone):
            expect(lines_with(page, "<b>markup</b> stays text")).to_have_count(1, timeout=WAIT_MS)
        expect(desktop.locator("li.mention")).to_have_count(0)
        expect(phone.locator("li.mention")).to_have_count(1)  # phoebe was mentioned: highlighted for her

        _fits(phone, PHONE["width"])
        assert desktop.evaluate(BACKGROUND) != phone.evaluate(BACKGROUND)  # light and dark follow the system
        _screenshot(desktop, screenshots / "web-desktop.png", DESKTOP)
        _screenshot(phone, screenshots / "web-phone.png", PHONE)
        longest = PlainMember(tracker, "Thirty-two-characters-long.name0")  # the longest name there is
        longest.say("x" * 300)
        expect(lines_with(phone, "x" * 300)).to_have_count(1, timeout=WAIT_MS)
        _fits(phone, PHONE["width"])
        longest.close()
        assert phone.errors == [] and desktop.errors == []  # type: ignore[attr-defined]
    finally:
        terminal.kill()
        plain.close()
