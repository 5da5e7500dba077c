"""The page at desktop and phone width, light and dark: no horizontal overflow; the README's screenshots."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect
from web_support import (
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

from chat_testing import RunningTracker

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
OVERFLOW = "() => document.scrollingElement.scrollWidth"
BACKGROUND = "() => getComputedStyle(document.body).backgroundColor"


def _fits(page: Page, width: int) -> None:
    assert page.evaluate(OVERFLOW) <= width, f"the page is wider than {width} px"


def test_desktop_and_phone_layouts(browser: Browser, tracker: RunningTracker) -> None:
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
        IMAGES.mkdir(parents=True, exist_ok=True)
        desktop.screenshot(path=str(IMAGES / "web-desktop.png"))
        phone.screenshot(path=str(IMAGES / "web-phone.png"))
        longest = PlainMember(tracker, "Thirty-two-characters-long.name0")  # the longest name there is
        longest.say("x" * 300)
        expect(lines_with(phone, "x" * 300)).to_have_count(1, timeout=WAIT_MS)
        _fits(phone, PHONE["width"])
        longest.close()
        assert phone.errors == [] and desktop.errors == []  # type: ignore[attr-defined]
    finally:
        terminal.kill()
        plain.close()
